"""Direct casts, the engine side that runs without a GPU: message validation and the shim's
state rules around `cast` / `abort-cast` / `complete` (the DirectCaster itself needs CUDA and NCCL
and is exercised on the GPU machine: test/gpu/node_agents.py issue11)."""

import base64

import pytest

from seedcast_engine import errors
from seedcast_engine.copy import BytesCopier
from seedcast_engine.direct import checksum_string
from seedcast_engine.errors import SeedcastError, ValidationError
from seedcast_engine.plan import BucketPlan, sum32x2
from seedcast_engine.protocol import AGENT_TO_ENGINE, ENGINE_TO_AGENT, message, validate
from seedcast_engine.shim import Shim, table_entry

UID = base64.b64encode(bytes(range(128))).decode()


def cast_msg(**over):
    m = message("cast", id=7, role="receive", uniqueId=UID, commRank=1, nranks=2, initTimeoutMs=1000, timeoutMs=5000)
    m.update(over)
    return m


def test_cast_messages_validate_both_ways():
    assert validate(cast_msg(), AGENT_TO_ENGINE)["role"] == "receive"
    assert validate(message("abort-cast", id=3), AGENT_TO_ENGINE)
    done = message("cast-done", id=7, bytes=10, checksums=["10:00000000deadbeef"], stats={"initMs": 1.5})
    assert validate(done, ENGINE_TO_AGENT)
    with pytest.raises(ValidationError, match="role"):
        validate(cast_msg(role="both"), AGENT_TO_ENGINE)
    with pytest.raises(ValidationError, match="checksums"):
        validate(message("cast-done", id=7, bytes=10, checksums=["nope"]), ENGINE_TO_AGENT)
    with pytest.raises(ValidationError, match="stats.initMs"):
        validate(message("cast-done", id=7, bytes=10, checksums=[], stats={"initMs": "x"}), ENGINE_TO_AGENT)
    with pytest.raises(ValidationError, match="unexpected"):
        validate(cast_msg(), ENGINE_TO_AGENT)  # only the agent asks for casts


def test_checksum_string_matches_sum32x2_format():
    data = bytes(range(1, 8))
    ref = sum32x2(data)
    a, c = int(ref.split(":")[1][:8], 16), int(ref.split(":")[1][8:], 16)
    assert checksum_string(len(data), a + (1 << 32), c - (1 << 32)) == ref  # reduced mod 2^32


class FakeCaster:
    def __init__(self):
        self.calls, self.aborted = [], 0

    def cast(self, **kw):
        self.calls.append(kw)
        plan = kw["plan"]
        return {"bytes": plan.total_bytes, "checksums": ["1:0000000000000000"] * plan.buckets, "stats": {"castMs": 1.0}}

    def abort(self):
        self.aborted += 1


def shim(state, caster, memory="cuda"):
    table = [table_entry("w", "uint8", [10], 10), table_entry("b", "uint8", [6], 6)]
    inputs = {"engine": "t", "engineVersion": "1", "model": "m", "revision": "r", "tensorParallel": 1,
              "pipelineParallel": 1, "rank": 0, "dtype": "uint8", "quantization": "none"}
    s = Shim(table, inputs, BytesCopier([bytearray(10), bytearray(6)]), memory=memory, device=0 if memory == "cuda" else None,
             state=state, caster=caster)
    s.plan = BucketPlan([10, 6], 8)
    s.slots = {0: object(), 1: object()}
    return s


def test_hello_offers_direct_only_with_a_caster_on_cuda():
    assert shim("empty", FakeCaster()).hello()["direct"] == {"transport": "nccl"}
    assert "direct" not in shim("empty", None).hello()
    assert "direct" not in shim("empty", FakeCaster(), memory="host").hello()


def test_receive_cast_then_complete_verified_loads_the_engine():
    caster = FakeCaster()
    s = shim("empty", caster)
    reply = s._handle(cast_msg())
    assert reply["type"] == "cast-done" and reply["bytes"] == 16 and len(reply["checksums"]) == 2
    assert caster.calls[0]["role"] == "receive" and caster.calls[0]["comm_rank"] == 1
    assert caster.calls[0]["timeout"] == 5.0 and caster.calls[0]["init_timeout"] == 1.0
    assert s.state == "empty"  # unverified until the agent says so
    s._handle(message("complete", id=8, outcome="verified"))
    assert s.state == "loaded"


def test_failed_complete_after_a_cast_keeps_the_engine_empty():
    s = shim("empty", FakeCaster())
    s._handle(cast_msg())
    s._handle(message("complete", id=8, outcome="failed", message="checksum"))
    assert s.state == "empty"
    with pytest.raises(SeedcastError, match="not drained"):
        s._handle(message("complete", id=9, outcome="verified"))


def test_cast_state_and_rank_rules():
    with pytest.raises(SeedcastError, match="state empty"):
        shim("empty", FakeCaster())._handle(cast_msg(role="send", commRank=0))
    with pytest.raises(SeedcastError, match="already holds verified weights"):
        shim("loaded", FakeCaster())._handle(cast_msg())
    with pytest.raises(SeedcastError, match="does not fit role"):
        shim("loaded", FakeCaster())._handle(cast_msg(role="send", commRank=1))
    with pytest.raises(SeedcastError) as exc:
        shim("empty", None)._handle(cast_msg())
    assert exc.value.code == errors.INVALID and "did not offer direct casts" in exc.value.message


def test_abort_cast_reaches_the_caster_and_a_lost_agent_aborts_too():
    caster = FakeCaster()
    s = shim("loaded", caster)
    assert s._handle(message("abort-cast", id=4))["type"] == "ack"
    s._on_close(SeedcastError(errors.PEER_LOST, "gone"))
    assert caster.aborted == 2


def test_cast_steps_split_the_first_and_last_bucket_only():
    from seedcast_engine.direct import RAMP_PIECES, cast_steps

    mib = 1 << 20
    plan = BucketPlan([1200 * mib, 5, 2800 * mib + 3], 1024 * mib)  # 4 buckets, the last one 928 MiB
    steps = cast_steps(plan)
    by_bucket = {}
    for st in steps:
        by_bucket.setdefault(st.bucket, []).append(st)
    assert len(by_bucket[0]) == RAMP_PIECES and len(by_bucket[1]) == 1 and len(by_bucket[2]) == 1
    last = by_bucket[plan.buckets - 1]
    assert sum(st.length for st in last) == plan.bucket_length(plan.buckets - 1)
    assert [st.first for st in last] == [True] + [False] * (len(last) - 1)
    assert [st.last for st in last] == [False] * (len(last) - 1) + [True]
    # every byte once, in order, and each piece's own plan segments cover exactly its range
    pos = 0
    for st in steps:
        lo, _ = plan.bucket_range(st.bucket)
        assert lo + st.offset == pos
        assert sum(seg.length for seg in st.plan.segments(st.k)) == st.length
        pos += st.length
    assert pos == plan.total_bytes
    small = BucketPlan([10, 20], 8)  # tiny buckets are never split
    assert all(st.offset == 0 for st in cast_steps(small))
    mid = BucketPlan([1000 * mib], 256 * mib)  # 256 MiB buckets stay whole (they measured slower split)
    assert len(cast_steps(mid)) == mid.buckets
    short_tail = BucketPlan([1100 * mib], 1024 * mib)  # a 76 MiB last bucket is not split either
    assert [st.bucket for st in cast_steps(short_tail)] == [0] * RAMP_PIECES + [1]


def test_bucket_checksums_combine_pieces_into_the_whole_buckets_sum32x2():
    import random

    from seedcast_engine import direct

    rnd = random.Random(7)
    old = direct.RAMP_MIN_BYTES
    direct.RAMP_MIN_BYTES = 1
    try:
        sizes = [37, 1000, 3, 2050]
        data = bytes(rnd.randrange(256) for _ in range(sum(sizes)))
        plan = BucketPlan(sizes, 1024)
        steps = direct.cast_steps(plan)
        assert len(steps) > plan.buckets  # pieces happened
        values = []
        for st in steps:
            lo, _ = plan.bucket_range(st.bucket)
            piece = data[lo + st.offset : lo + st.offset + st.length]
            ac = sum32x2(piece).split(":")[1]
            values.append([int(ac[:8], 16), int(ac[8:], 16)])
        want = [sum32x2(data[slice(*plan.bucket_range(k))]) for k in range(plan.buckets)]
        assert direct.bucket_checksums(plan, steps, values) == want
    finally:
        direct.RAMP_MIN_BYTES = old
