"""The engine shim's TorchCopier on a GPU (issue 11): batched fills/drains against the byte-exact
per-segment path, and their speed, on a model-shaped tensor list.

  python3 test/gpu/copier_check.py OUT.json [--tensors 3893] [--total-gib 10] [--bucket-mib 256]

Correctness: tensors of mixed dtypes and odd sizes (some non-contiguous, some tiny, some larger
than a bucket) are filled bucket by bucket into a CUDA slot by the batched copier, drained into
zeroed tensors by another batched copier, and must equal the originals byte for byte; the slot
bytes of every bucket must equal what the per-segment copier writes. Speed: the whole model
filled (seed side) and drained (receiver side), batched vs per-segment (`batched = False`), in
the same run; the figure that matters is GB/s against the agent's broadcast (~300 GB/s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "engines", "seedcast-engine", "src"))
from seedcast_engine.copy import TorchCopier  # noqa: E402
from seedcast_engine.plan import BucketPlan  # noqa: E402


class Slot:
    def __init__(self, nbytes: int, device: str):
        self.t = torch.empty(nbytes, dtype=torch.uint8, device=device)

    def tensor(self, pin: bool = False):
        return self.t


def odd_model(device: str) -> list[torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(7)
    out: list[torch.Tensor] = []
    shapes = [(3,), (1,), (17, 5), (4097,), (64, 64), (1000, 33), (5 << 20,), (3, 1 << 22), (129, 257)]
    for i in range(60):
        shape = shapes[i % len(shapes)]
        dtype = (torch.bfloat16, torch.float32, torch.int8, torch.float16)[i % 4]
        t = torch.randn(shape, generator=g).to(dtype) if dtype != torch.int8 else torch.randint(-100, 100, shape, generator=g, dtype=torch.int8)
        t = t.to(device)
        if i % 7 == 3 and t.dim() == 2:
            t = t.t()  # non-contiguous
        out.append(t)
    return out


def model_like(n: int, total: int, device: str) -> list[torch.Tensor]:
    """n bf16 tensors summing to ~total bytes, sized like a transformer's (few large, many small)."""
    g = torch.Generator(device="cpu").manual_seed(11)
    weights = torch.rand(n, generator=g) ** 4 + 1e-4
    sizes = (weights / weights.sum() * total / 2).long().clamp(min=1).tolist()
    return [torch.empty(s, dtype=torch.bfloat16, device=device).normal_() for s in sizes]


def nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def check_correct(device: str, bucket: int) -> dict:
    src = odd_model(device)
    plan = BucketPlan([nbytes(t) for t in src], bucket)
    slot, ref_slot = Slot(bucket, device), Slot(bucket, device)
    dst = [torch.zeros_like(t) for t in src]
    seed, receiver, ref = TorchCopier(src, device), TorchCopier(dst, device), TorchCopier(src, device)
    ref.batched = False
    slots_equal = True
    for k in range(plan.buckets):
        seed.fill(plan, k, slot)
        ref.fill(plan, k, ref_slot)
        n = plan.bucket_length(k)
        slots_equal &= bool(torch.equal(slot.t[:n], ref_slot.t[:n]))
        receiver.drain(plan, k, slot)
    torch.cuda.synchronize()
    equal = all(torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)) for a, b in zip(src, dst))
    return {"tensors": len(src), "buckets": plan.buckets, "slots_equal_per_segment": slots_equal, "weights_equal": equal, "batched": seed.batched}


def timed(copier: TorchCopier, plan: BucketPlan, slots: list[Slot], fill: bool) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for k in range(plan.buckets):
        (copier.fill if fill else copier.drain)(plan, k, slots[k % 2])
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tensors", type=int, default=3893)
    ap.add_argument("--total-gib", type=float, default=10.0)
    ap.add_argument("--bucket-mib", type=int, default=256)
    a = ap.parse_args()
    device = "cuda:0"
    res: dict = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    res["correct"] = check_correct(device, 1 << 20)
    res["correct_big_bucket"] = check_correct(device, 64 << 20)
    bucket = a.bucket_mib << 20
    src = model_like(a.tensors, int(a.total_gib * (1 << 30)), device)
    dst = [torch.empty_like(t) for t in src]
    plan = BucketPlan([nbytes(t) for t in src], bucket)
    slots = [Slot(bucket, device), Slot(bucket, device)]
    total = plan.total_bytes
    res["model"] = {"tensors": len(src), "bytes": total, "buckets": plan.buckets, "bucket_bytes": bucket}
    for name, batched, prepared in (("per_segment", False, False), ("batched", True, False), ("batched_prepared", True, True)):
        seed, recv = TorchCopier(src, device), TorchCopier(dst, device)
        seed.batched = recv.batched = batched
        t0 = time.perf_counter()
        if prepared:  # what the shim does on welcome
            seed.prepare(plan, slots)
            recv.prepare(plan, slots)
        prepare_s = (time.perf_counter() - t0) / 2
        first_fill = timed(seed, plan, slots, True)
        first_drain = timed(recv, plan, slots, False)
        fill = min(timed(seed, plan, slots, True) for _ in range(3))
        drain = min(timed(recv, plan, slots, False) for _ in range(3))
        res[name] = {
            "prepare_s_per_side": prepare_s,
            "fill_GBps_first": total / first_fill / 1e9,
            "drain_GBps_first": total / first_drain / 1e9,
            "fill_GBps": total / fill / 1e9,
            "drain_GBps": total / drain / 1e9,
        }
    res["ok"] = res["correct"]["weights_equal"] and res["correct"]["slots_equal_per_segment"] and res["correct_big_bucket"]["weights_equal"]
    print(json.dumps(res))
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
