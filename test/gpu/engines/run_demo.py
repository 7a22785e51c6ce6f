"""GPU demo of the engine shim (one GPU): seed and receiver processes, each with a real
transformers model (~1.6-1.8 GB of bf16 parameters, random weights with a fixed seed), moving
the weights through agent staging (`cuda` slots, CUDA IPC) and a loopback TCP hop.

    python3 test/gpu/engines/run_demo.py --out $OUT [--arch llama --arch qwen-moe] [--agent reference]

--agent reference: the Python reference agent (seedcast_engine.testing.agent) plays both agents.
The Node agent with `cuda` staging (src/agent + native addon) replaces it once it can be started
from the command line; until then this run proves the shim, not the Node agent.

For each architecture: start the agent pair, start the seed (registers `loaded`, generates the
reference tokens/logits), start a receiver with a different config (must be refused by
fingerprint before any byte moves), start the real receiver (dummy weights -> verified weights
-> same greedy tokens and logits). Writes $OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SRC = os.path.join(REPO, "engines", "seedcast-engine", "src")


def lines(proc, q, tag):
    for line in iter(proc.stdout.readline, ""):
        sys.stdout.write(f"[{tag}] {line}")
        sys.stdout.flush()
        try:
            q.put(json.loads(line))
        except ValueError:
            pass


def expect(q, pred, what, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        try:
            ev = q.get(timeout=1)
        except queue.Empty:
            continue
        if pred(ev):
            return ev
    raise TimeoutError(what)


class GpuMemory(threading.Thread):
    """Max used GPU memory per pid (nvidia-smi), sampled every 0.25 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.max: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                for row in out.strip().splitlines():
                    pid, mib = [x.strip() for x in row.split(",")]
                    self.max[int(pid)] = max(self.max.get(int(pid), 0), int(mib))
            except Exception:  # noqa: BLE001
                pass
            self.stop.wait(0.25)


def run_arch(arch, out, bucket_mib, env):
    d = tempfile.mkdtemp(prefix=f"seedcast-{arch}-")
    py = sys.executable
    mem = GpuMemory()
    mem.start()
    aq: queue.Queue = queue.Queue()
    agent = subprocess.Popen([py, "-m", "seedcast_engine.testing.agent", "relay", "--dir", d, "--bucket-mib", str(bucket_mib)],
                             stdout=subprocess.PIPE, text=True, env=env)
    threading.Thread(target=lines, args=(agent, aq, "agent"), daemon=True).start()
    expect(aq, lambda e: e.get("event") == "listening", "agent listening", 60)
    eng = [py, os.path.join(HERE, "engine_proc.py")]
    sq: queue.Queue = queue.Queue()
    seed = subprocess.Popen(eng + ["seed", "--arch", arch, "--socket", os.path.join(d, "seed.sock"), "--out", out],
                            stdout=subprocess.PIPE, text=True, env=env)
    threading.Thread(target=lines, args=(seed, sq, "seed"), daemon=True).start()
    expect(aq, lambda e: e.get("event") == "seed-registered", "seed registered")
    t0 = time.time()
    mm = subprocess.run(eng + ["mismatch", "--arch", arch, "--socket", os.path.join(d, "receiver.sock"), "--out", out],
                        capture_output=True, text=True, env=env, timeout=300)
    sys.stdout.write(f"[mismatch] {mm.stdout}{mm.stderr[-2000:] if mm.returncode else ''}")
    expect(aq, lambda e: e.get("event") == "listening", "agent listening again", 60)
    rq: queue.Queue = queue.Queue()
    recv = subprocess.Popen(eng + ["receiver", "--arch", arch, "--socket", os.path.join(d, "receiver.sock"), "--out", out],
                            stdout=subprocess.PIPE, text=True, env=env)
    threading.Thread(target=lines, args=(recv, rq, "receiver"), daemon=True).start()
    relayed = expect(aq, lambda e: e.get("event") == "relayed", "relay", 600)
    rc = recv.wait(600)
    agent.wait(120)
    seed.wait(120)
    mem.stop.set()
    mem.join(2)
    r = {k: json.load(open(os.path.join(out, f"{arch}-{k}.json"))) for k in ("seed", "receiver", "mismatch")}
    s, v, m = r["seed"], r["receiver"], r["mismatch"]
    copy_s = s["copy"]["seconds"] + v["copy"]["seconds"]
    summary = {
        "arch": arch,
        "param_GB": s["param_bytes"] / 1e9,
        "moved_GB": relayed["bytes"] / 1e9,
        "tensors": s["tensors"],
        "buckets": s["buckets"],
        "bucket_MiB": s["bucket_bytes"] >> 20,
        "mismatch_refused": m.get("refused", False),
        "mismatch_code": m.get("code"),
        "mismatch_fills_on_seed": "none (seed copy stats counted after serving)",
        "weights_equal": s["weights_sha256"] == v["weights_sha256"],
        "tokens_equal": s["tokens"] == v["tokens"],
        "logits_equal": v["logits_equal"],
        "logits_max_abs_diff": v["logits_max_abs_diff"],
        "tokens": v["tokens"][:8],
        "transfer_s": relayed["seconds"],
        "transfer_GBps": relayed["GBps"],
        "shim_fill_s": s["copy"]["seconds"],
        "shim_drain_s": v["copy"]["seconds"],
        "shim_fill_GBps": s["copy"]["GBps"],
        "shim_drain_GBps": v["copy"]["GBps"],
        "shim_copy_share": copy_s / relayed["seconds"] if relayed["seconds"] else None,
        "receiver_wait_s": v["wait_s"],
        "gpu_MiB_max": {"agent": mem.max.get(agent.pid), "seed": mem.max.get(s["pid"]), "receiver": mem.max.get(v["pid"])},
        "engine_torch_extra_bytes": {
            "seed_after_connect": s["torch_allocated_after_connect"] - s["torch_allocated_before"],
            "receiver_after_connect": v["torch_allocated_after_connect"] - v["torch_allocated_before"],
            "receiver_peak_minus_model": v["torch_max_allocated"] - v["torch_allocated_before"],
        },
        "agent_slot_bytes_per_side": s["mapped_slot_bytes"],
        "receiver_rc": rc,
        "wall_s": time.time() - t0,
    }
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/seedcast-out"))
    ap.add_argument("--arch", action="append")
    ap.add_argument("--bucket-mib", type=int, default=256)
    ap.add_argument("--agent", default="reference", choices=["reference"])
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1",
               CUBLAS_WORKSPACE_CONFIG=":4096:8")
    results = []
    for arch in args.arch or ["llama", "qwen-moe"]:
        try:
            results.append(run_arch(arch, args.out, args.bucket_mib, env))
        except Exception as exc:  # noqa: BLE001
            results.append({"arch": arch, "error": repr(exc)})
        print(json.dumps(results[-1], indent=1), flush=True)
    json.dump(results, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    ok = all(r.get("tokens_equal") and r.get("logits_equal") and r.get("mismatch_refused") for r in results)
    print("DEMO", "PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
