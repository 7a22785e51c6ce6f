"""The shim against the reference agent side (seedcast_engine.testing.agent), host staging,
pure-Python byte buffers: the whole bridge session without torch or a GPU."""

import json
import os
import random
import struct
import threading

import pytest

from seedcast_engine import errors
from seedcast_engine.copy import BytesCopier
from seedcast_engine.errors import SeedcastError
from seedcast_engine.protocol import message
from seedcast_engine.shim import Shim, table_entry
from seedcast_engine.testing.agent import AgentEndpoint, relay

INPUTS = {"engine": "test", "engineVersion": "1", "model": "tiny", "revision": "r1", "tensorParallel": 1,
          "pipelineParallel": 1, "rank": 0, "dtype": "bfloat16", "quantization": "none"}
SIZES = [(f"layer.{i}.weight", "bfloat16", [s // 2]) for i, s in enumerate([1000, 2, 0, 4096, 6, 777 * 2, 64])]


def model(fill=None, sizes=SIZES):
    rng = random.Random(fill)
    bufs = [bytearray(rng.randrange(256) for _ in range(sh[0] * 2)) if fill is not None else bytearray(sh[0] * 2)
            for _, _, sh in sizes]
    table = [table_entry(n, d, sh, len(b)) for (n, d, sh), b in zip(sizes, bufs)]
    return table, bufs


@pytest.fixture
def agents(tmp_path):
    made = []

    def make(name, **kw):
        a = AgentEndpoint(str(tmp_path), name, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


def start(shim):
    """connect in a thread (the endpoint must accept and handshake concurrently)."""
    box = {}

    def run():
        try:
            box["welcome"] = shim.connect(timeout=10)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, box


def register(agent, shim):
    t, box = start(shim)
    agent.accept(10)
    try:
        agent.handshake(timeout=10)
    finally:
        t.join(10)
    if "error" in box:
        raise box["error"]
    return box["welcome"]


def test_seed_to_receiver_through_two_agents(agents):
    table, seed_bufs = model(fill=7)
    _, recv_bufs = model()
    sa, ra = agents("seed", bucket_bytes=1000), agents("recv", bucket_bytes=1000)
    seed = Shim(table, INPUTS, BytesCopier(seed_bufs), state="loaded", socket=sa.path)
    recv = Shim(table, INPUTS, BytesCopier(recv_bufs), state="empty", socket=ra.path)
    w = register(sa, seed)
    assert w["buckets"] == -(-sum(t["bytes"] for t in table) // 1000)
    ra.expect = sa.fingerprint
    register(ra, recv)
    stats = relay(sa, ra)
    recv.wait_ready(timeout=10)
    assert recv.state == "loaded"
    assert recv_bufs == seed_bufs
    assert stats["bytes"] == sum(t["bytes"] for t in table)
    assert recv.copier.stats.drains == w["buckets"] and seed.copier.stats.fills == w["buckets"]
    # staging files live in the agent's directory and were mapped by the shim
    assert all(os.path.exists(b.path) for b in sa.buffers)
    seed.close()
    recv.close()


def test_mismatched_fingerprint_is_refused_before_any_byte_moves(agents):
    table, seed_bufs = model(fill=1)
    other_sizes = SIZES[:-1] + [("layer.6.weight", "bfloat16", [33])]
    other_table, recv_bufs = model(sizes=other_sizes)
    sa, ra = agents("seed", bucket_bytes=512), agents("recv", bucket_bytes=512)
    seed = Shim(table, INPUTS, BytesCopier(seed_bufs), state="loaded", socket=sa.path)
    register(sa, seed)
    ra.expect = sa.fingerprint
    recv = Shim(other_table, INPUTS, BytesCopier(recv_bufs), state="empty", socket=ra.path)
    with pytest.raises(SeedcastError) as e:
        register(ra, recv)
    assert e.value.code == errors.FINGERPRINT_MISMATCH
    assert ra.buffers == [] and not any(f.startswith("recv-") for f in os.listdir(ra.dir))
    assert all(b == bytearray(len(b)) for b in recv_bufs)  # untouched
    assert seed.copier.stats.fills == 0
    seed.close()


def test_refusal_followed_by_close_keeps_the_refusal_code(agents):
    for _ in range(20):  # the agent answers and closes at once: the error must win over EOF
        table, bufs = model(fill=2)
        a = agents("a")
        a.expect = "0" * 64
        shim = Shim(table, INPUTS, BytesCopier(bufs), socket=a.path)
        t, box = start(shim)
        a.accept(10)
        with pytest.raises(SeedcastError):
            a.handshake(timeout=10)
        a.close()
        t.join(10)
        assert box["error"].code == errors.FINGERPRINT_MISMATCH, box["error"]


def test_engine_detects_agent_computing_another_fingerprint(agents, monkeypatch):
    table, bufs = model(fill=2)
    a = agents("a")
    shim = Shim(table, INPUTS, BytesCopier(bufs), socket=a.path)
    t, box = start(shim)
    a.accept(10)
    hello = a.recv()
    a.send(message("welcome", id=hello["id"], fingerprint="f" * 64, bucketBytes=64, buckets=1, totalBytes=64,
                   slots=[{"slot": 0, "kind": "host", "path": "/nonexistent", "bytes": 64}]))
    t.join(10)
    assert box["error"].code == errors.FINGERPRINT_MISMATCH


def test_cold_load_then_seed(agents):
    table, bufs = model()
    _, real = model(fill=3)
    a = agents("a", bucket_bytes=256)

    def cold_load():
        for b, r in zip(bufs, real):
            b[:] = r

    shim = Shim(table, INPUTS, BytesCopier(bufs), state="empty", cold_load=cold_load, socket=a.path)
    register(a, shim)
    # an empty engine cannot seed
    r = a.request("fill", bucket=0, slot=0)
    assert r["type"] == "error" and r["code"] == errors.INVALID
    assert a.request("load", source="storage")["type"] == "loaded"
    shim.wait_ready(timeout=5)
    got = bytearray()
    a.fill_all(lambda k, data: got.extend(data))
    assert bytes(got) == b"".join(real)
    shim.close()


def test_failed_transfer_keeps_dummy_weights_and_allows_retry(agents):
    table, bufs = model()
    _, real = model(fill=4)
    a = agents("a", bucket_bytes=4096)
    shim = Shim(table, INPUTS, BytesCopier(bufs), state="empty", socket=a.path)
    register(a, shim)
    a.drain(0, b"".join(real)[:4096])
    assert a.complete("failed", "seed lost")["type"] == "ack"
    with pytest.raises(SeedcastError) as e:
        shim.wait_ready(timeout=2)
    assert "seed lost" in e.value.message
    assert shim.state == "empty"
    # a retry: the same connection, every bucket again
    stream = b"".join(real)
    for k in range(a.plan.buckets):
        a.drain(k, stream[k * 4096:(k + 1) * 4096], slot=k % 2)
    assert a.complete("verified")["type"] == "ack"
    shim.wait_ready(timeout=2)
    assert bufs == real
    shim.close()


def test_complete_verified_with_missing_buckets_is_rejected(agents):
    table, bufs = model()
    a = agents("a", bucket_bytes=1024)
    shim = Shim(table, INPUTS, BytesCopier(bufs), socket=a.path)
    register(a, shim)
    r = a.complete("verified")
    assert r["type"] == "error" and r["code"] == errors.PROTOCOL
    assert shim.state == "empty"
    shim.close()


def test_bad_requests_get_errors_and_the_connection_stays_open(agents):
    table, bufs = model(fill=5)
    a = agents("a", bucket_bytes=1024)
    shim = Shim(table, INPUTS, BytesCopier(bufs), state="loaded", socket=a.path)
    register(a, shim)
    r = a.request("fill", bucket=99, slot=0)
    assert r["type"] == "error" and r["code"] == errors.INVALID and "bucket" in r["message"]
    r = a.request("fill", bucket=0, slot=7)
    assert r["type"] == "error" and "slot" in r["message"]
    a.send({"v": 1, "type": "fill", "id": 77, "bucket": "zero", "slot": 0})  # fails validation
    r = a.recv()
    assert r == {**r, "type": "error", "id": 77, "code": errors.INVALID} and "bucket" in r["message"]
    a.send({"v": 1, "type": "frobnicate", "id": 78})
    r = a.recv()
    assert r["type"] == "error" and r["id"] == 78
    body = b"{not json"
    a.send_raw(struct.pack(">I", len(body)) + body)
    r = a.recv()
    assert r["type"] == "error" and "id" not in r
    assert a.request("ping")["type"] == "pong"
    assert a.request("drain", bucket=0, slot=0)["code"] == errors.INVALID  # a seed refuses drains
    assert not shim.conn.closed
    shim.close()


def test_framing_error_closes_the_connection(agents):
    table, bufs = model(fill=6)
    a = agents("a")
    shim = Shim(table, INPUTS, BytesCopier(bufs), socket=a.path)
    register(a, shim)
    a.send_raw(struct.pack(">I", 0))
    r = a.recv()
    assert r["type"] == "error" and r["code"] == errors.PROTOCOL
    assert shim.conn.wait_closed(5)
    with pytest.raises(SeedcastError) as e:
        shim.wait_ready(timeout=2)
    assert e.value.code == errors.PROTOCOL
    shim.close()


def test_engine_ping_and_agent_error_frames(agents):
    table, bufs = model(fill=8)
    a = agents("a")
    shim = Shim(table, INPUTS, BytesCopier(bufs), socket=a.path)
    register(a, shim)
    t = threading.Thread(target=shim.conn.ping)
    t.start()
    # the endpoint answers pings inside recv(); send something to make it read
    a.send(message("error", code="SEEDCAST_ERR_PEER_LOST", message="seed went away"))
    assert a.request("ping")["type"] == "pong"
    t.join(5)
    assert not t.is_alive()
    assert shim.conn.errors and shim.conn.errors[0]["code"] == "SEEDCAST_ERR_PEER_LOST"
    shim.close()


def test_agent_disconnect_fails_waiters(agents):
    table, bufs = model()
    a = agents("a")
    shim = Shim(table, INPUTS, BytesCopier(bufs), socket=a.path)
    register(a, shim)
    a.sock.close()
    with pytest.raises(SeedcastError) as e:
        shim.wait_ready(timeout=5)
    assert e.value.code == errors.PEER_LOST
    shim.close()


def test_connect_without_agent_is_a_clear_error(tmp_path):
    table, bufs = model()
    shim = Shim(table, INPUTS, BytesCopier(bufs), socket=str(tmp_path / "none.sock"))
    with pytest.raises(SeedcastError) as e:
        shim.connect(timeout=1)
    assert e.value.code == errors.PEER_LOST and "none.sock" in e.value.message


def test_hello_too_large_for_a_frame_is_reported(monkeypatch):
    # The real limit (64 MiB) takes ~500k tensors; a smaller one shows the same check.
    import seedcast_engine.shim as shim_module

    monkeypatch.setattr(shim_module, "MAX_FRAME", 1_048_576)
    table = [table_entry(f"model.layers.{i}.mlp.experts.{j}.w", "bfloat16", [4096, 1024], 8388608)
             for i in range(100) for j in range(128)]
    shim = Shim(table, INPUTS, BytesCopier([]))
    with pytest.raises(SeedcastError) as e:
        shim.hello()
    assert "frame limit" in e.value.message


def test_socket_env(monkeypatch):
    from seedcast_engine.client import socket_path

    monkeypatch.setenv("SEEDCAST_SOCKET", "/x/y.sock")
    assert socket_path() == "/x/y.sock"
    assert socket_path("/a.sock") == "/a.sock"
    monkeypatch.delenv("SEEDCAST_SOCKET")
    assert socket_path() == "/run/seedcast/agent.sock"
