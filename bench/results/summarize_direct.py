"""Summarize the issue-11 direct-cast GPU runs (bench/results/gpu-direct-h200x2-run*): per run and
mode, the span of the bucketed broadcast as a ratio to torch's flat broadcast measured in the same
call, transfer-written → receiver-verified, the kill → seed-failed time, correctness, and memory.

    python3 bench/results/summarize_direct.py
"""

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

for base in sorted(glob.glob(os.path.join(HERE, "gpu-direct-h200x2-run*"))):
    try:
        flat = json.load(open(os.path.join(base, "nccl-baseline.json")))["rank0"]["flat_GBps_best"]
    except FileNotFoundError:
        continue
    print(f"{os.path.basename(base)}: torch flat {flat:.1f} GB/s")
    for f in sorted(glob.glob(os.path.join(base, "i11-*", "*issue11*.json"))):
        r = json.load(open(f))["issue11"]
        g = r.get("agent_broadcast_span_GBps") or 0
        cast = (r.get("receiver_cast") or {}).get("stats") or {}
        print(
            f"  {os.path.basename(os.path.dirname(f)):18} {g:6.1f} GB/s = {g / flat:.3f}"
            f"  written->verified {r['wall_transfer_written_to_verified_s']:.2f} s"
            f"  kill->seed failed {r['kill'].get('kill_to_seed_failed_s', float('nan')):.2f} s"
            f"  tokens/logits/weights equal {r['tokens_equal']}/{r['logits_equal']}/{r['weights_equal']}"
            f"  init {(r['seed_nccl'] or {}).get('initMs', 0):.0f} ms"
            f"  agent GPU MiB {max(v['agent'] or 0 for v in r['gpu_MiB_max'].values())}"
            + (f"  engine cast init {cast.get('initMs', 0):.0f} ms" if cast else "")
        )
    for role in ("seed", "receiver"):
        p = os.path.join(base, "pair-direct", f"direct-pair-{role}.json")
        if os.path.exists(p):
            d = json.load(open(p))
            runs = d.get("runs") or [{"bucket_mib": 256, "casts": d.get("casts", [])}]
            for run in runs:
                gb = [c.get("GBps_gpu") or c.get("stats", {}).get("GBps_gpu") or 0 for c in run["casts"]]
                print(f"  pair {role:8} {run['bucket_mib']:5} MiB: " + " ".join(f"{x / flat:.3f}" for x in gb))
