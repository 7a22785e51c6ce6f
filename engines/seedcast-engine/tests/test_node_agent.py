"""Conformance against the Node agent's bridge implementation (src/agent/bridge).

Runs `node_bridge_relay.ts` (the agent's BridgeServer and host staging, two sockets) with two
Python shims, a seed and a receiver, and checks the receiver ends with the seed's bytes; then
that a mismatched table is refused. Skips, saying why, when Node 24 or the agent sources are
not there yet."""

import json
import os
import random
import subprocess
import threading

import pytest

from seedcast_engine.copy import BytesCopier
from seedcast_engine.errors import SeedcastError
from seedcast_engine.shim import Shim, table_entry

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
NODE = os.path.join(REPO, "node_modules", ".bin", "node")
SERVER = os.path.join(REPO, "src", "agent", "bridge", "server.ts")

INPUTS = {"engine": "test", "engineVersion": "1", "model": "tiny", "revision": "r1", "tensorParallel": 1,
          "pipelineParallel": 1, "rank": 0, "dtype": "bfloat16", "quantization": "none"}


def need_agent():
    if not os.path.exists(NODE):
        pytest.skip("Node 24 not installed (npm ci puts it in node_modules/.bin)")
    if not os.path.exists(SERVER):
        pytest.skip("the Node agent's bridge (src/agent/bridge/server.ts) has not landed yet")


def tensors(seed, shapes):
    rng = random.Random(seed)
    bufs = [bytearray(rng.randrange(256) for _ in range(n * 2)) if seed is not None else bytearray(n * 2) for n in shapes]
    return [table_entry(f"t{i}", "bfloat16", [n], n * 2) for i, n in enumerate(shapes)], bufs


def run_relay(tmp_path, seed_shapes, recv_shapes, bucket=4096):
    proc = subprocess.Popen([NODE, os.path.join(HERE, "node_bridge_relay.ts"), str(tmp_path), str(bucket)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    events = []
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read()
        proc.wait(10)
        pytest.skip(f"the Node agent bridge did not start (in-progress sources?): {err[-500:]}")
    events.append(json.loads(line))
    st, sb = tensors(1, seed_shapes)
    rt, rb = tensors(None, recv_shapes)
    seed = Shim(st, INPUTS, BytesCopier(sb), state="loaded", socket=str(tmp_path / "seed.sock"))
    recv = Shim(rt, INPUTS, BytesCopier(rb), state="empty", socket=str(tmp_path / "receiver.sock"))
    seed.connect(timeout=20)
    recv.connect(timeout=20)
    outcome = {}

    def wait():
        try:
            recv.wait_ready(timeout=30)
            outcome["ok"] = True
        except SeedcastError as exc:
            outcome["error"] = exc

    t = threading.Thread(target=wait)
    t.start()
    # the agent's server closes only once the engines disconnect: read until "done" first
    reader = threading.Thread(target=lambda: events.extend(
        json.loads(x) for x in iter(proc.stdout.readline, "") if x.strip() and not events_done(events)))
    reader.start()
    t.join(40)
    for _ in range(400):
        if events_done(events):
            break
        threading.Event().wait(0.05)
    seed.close()
    recv.close()
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    err = proc.stderr.read()
    assert proc.returncode == 0, err[-2000:]
    return events, outcome, sb, rb


def events_done(events):
    return any(e.get("event") == "done" for e in events)


def test_shim_against_node_agent_bridge(tmp_path):
    need_agent()
    shapes = [500, 1, 3000, 7, 2048, 333]
    events, outcome, sb, rb = run_relay(tmp_path, shapes, shapes)
    kinds = [e["event"] for e in events]
    assert "relayed" in kinds, events
    assert outcome.get("ok"), outcome
    assert rb == sb
    assert events[-1]["invalid"] == []  # the agent found nothing to complain about


def test_node_agent_mismatch_refused_before_any_byte(tmp_path):
    need_agent()
    events, outcome, sb, rb = run_relay(tmp_path, [500, 1, 64], [500, 1, 65])
    assert any(e["event"] == "refused" for e in events), events
    assert "error" in outcome and "fingerprint" in outcome["error"].message
    assert all(b == bytearray(len(b)) for b in rb)
