import random

import pytest

from seedcast_engine.plan import BucketPlan


def reassemble(sizes, bucket_bytes):
    """Serialise tensors through the plan and back: every byte must land where it came from."""
    rng = random.Random(sum(sizes) * 31 + bucket_bytes)
    tensors = [bytes(rng.randrange(256) for _ in range(s)) for s in sizes]
    p = BucketPlan(sizes, bucket_bytes)
    stream = b"".join(tensors)
    out = [bytearray(s) for s in sizes]
    for k in range(p.buckets):
        lo, hi = p.bucket_range(k)
        slot = bytearray(bucket_bytes)
        covered = 0
        for seg in p.segments(k):
            assert seg.slot_offset == covered  # contiguous, starting at slot offset 0
            slot[seg.slot_offset : seg.slot_offset + seg.length] = tensors[seg.tensor][seg.tensor_offset : seg.tensor_offset + seg.length]
            covered += seg.length
        assert covered == hi - lo
        assert bytes(slot[:covered]) == stream[lo:hi]
        for seg in p.segments(k):
            out[seg.tensor][seg.tensor_offset : seg.tensor_offset + seg.length] = slot[seg.slot_offset : seg.slot_offset + seg.length]
    assert [bytes(o) for o in out] == tensors


@pytest.mark.parametrize("seed", range(25))
def test_random_plans_roundtrip(seed):
    rng = random.Random(seed)
    sizes = [rng.choice([0, 1, 2, 3, 7, 64, 100, 513]) for _ in range(rng.randrange(0, 12))]
    reassemble(sizes, rng.choice([1, 2, 5, 64, 1000]))


def test_last_bucket_of():
    p = BucketPlan([10, 0, 6], 8)
    assert [p.last_bucket_of(i) for i in range(3)] == [1, -1, 1]


def test_bad_inputs():
    with pytest.raises(ValueError):
        BucketPlan([1], 0)
    with pytest.raises(ValueError):
        BucketPlan([-1], 4)
    with pytest.raises(IndexError):
        BucketPlan([4], 4).segments(1)
