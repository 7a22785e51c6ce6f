"""PyTorch references for the agent's NCCL broadcast (issue 11), GPU 0 → GPU 1, one process per GPU:
  flat:      torch.distributed.broadcast of one uint8 buffer of the model's total size (the ceiling)
  sliced:    the same buffer broadcast in bucket-sized slices (what bucketing costs by itself)
  per-tensor: one broadcast per tensor of the model's table (the naive lower reference)
Sizes come from the model config on the meta device (no memory, no weights).

  python3 test/gpu/nccl_baseline.py OUT.json [--arch llama-10g] [--bucket-mib 256]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "engines"))


def sizes_for(arch):
    import torch
    import transformers

    from engine_proc import build_config

    cfg = build_config(arch)
    with torch.device("meta"):
        m = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    return [p.numel() * p.element_size() for p in m.parameters()] + [b.numel() * b.element_size() for b in m.buffers()]


def worker(rank, port, sizes, bucket, q):
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    t0 = time.perf_counter()
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, device_id=dev)
    total = sum(sizes)
    flat = torch.empty(total, dtype=torch.uint8, device=dev)
    if rank == 0:
        flat.random_(0, 255)
    dist.broadcast(flat[: 1 << 20], 0)
    torch.cuda.synchronize()
    init_s = time.perf_counter() - t0
    out = {"init_s": init_s, "total_bytes": total, "tensors": len(sizes)}

    def timed(fn, reps):
        ts = []
        for _ in range(reps):
            dist.barrier()
            torch.cuda.synchronize()
            a = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - a)
        return ts

    ts = timed(lambda: dist.broadcast(flat, 0), 4)
    out["flat_s"] = ts
    out["flat_GBps_best"] = total / min(ts[1:]) / 1e9
    out["flat_GBps_median"] = total / statistics.median(ts[1:]) / 1e9

    def sliced():
        for off in range(0, total, bucket):
            dist.broadcast(flat[off : off + bucket], 0)

    ts = timed(sliced, 3)
    out["sliced_s"] = ts
    out["sliced_GBps_best"] = total / min(ts[1:]) / 1e9
    views, off = [], 0
    for n in sizes:
        views.append(flat[off : off + n])
        off += n

    def per_tensor():
        for v in views:
            dist.broadcast(v, 0)

    ts = timed(per_tensor, 3)
    out["per_tensor_s"] = ts
    out["per_tensor_GBps_best"] = total / min(ts[1:]) / 1e9
    # correctness of the flat copy
    s = flat[: 1 << 24].to(torch.int64).sum()
    dist.broadcast(s, 0) if False else None
    out["mem_allocated"] = torch.cuda.max_memory_allocated()
    q.put((rank, out, int(s)))
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="llama-10g")
    ap.add_argument("--bucket-mib", type=int, default=256)
    args = ap.parse_args()
    import socket

    import torch.multiprocessing as mp

    sizes = sizes_for(args.arch)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=worker, args=(r, port, sizes, args.bucket_mib << 20, q)) for r in range(2)]
    for p in ps:
        p.start()
    got = {}
    for _ in range(2):
        r, o, sm = q.get(timeout=240)
        got[r] = (o, sm)
    for p in ps:
        p.join(30)
    res = {"arch": args.arch, "bucket_bytes": args.bucket_mib << 20, "rank0": got[0][0], "rank1": got[1][0],
           "flat_prefix_equal": got[0][1] == got[1][1]}
    json.dump(res, open(args.out, "w"), indent=1)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
