"""Two engines cast directly, no agent (issue 11, ADR 0002): the shim's DirectCaster between two
processes, one per GPU. Checks byte equality of every tensor, the GPU sum32x2 against the CPU
reference, and times a cold and a warm cast. Run on nvidia-h200-x2 (test/gpu/run-agents.sh PART=direct):

  CUDA_VISIBLE_DEVICES=0,1 python3 test/gpu/direct_pair.py seed OUT &
  CUDA_VISIBLE_DEVICES=1,0 python3 test/gpu/direct_pair.py receiver OUT
"""

import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "engines", "seedcast-engine", "src"))
from seedcast_engine.copy import TorchCopier  # noqa: E402
from seedcast_engine.direct import DirectCaster, Nccl  # noqa: E402
from seedcast_engine.plan import BucketPlan, sum32x2  # noqa: E402

#: Bucket sizes to compare (MiB), each with its own slots, views and three casts.
BUCKETS_MIB = [int(x) for x in os.environ.get("DP_BUCKET_MIB", "256 1024").split()]


class Slot:
    def __init__(self, n):
        self.bytes = n
        self.t = torch.empty(n, dtype=torch.uint8, device="cuda:0")

    def tensor(self, pin=False):
        return self.t


def tensors(fill: bool):
    g = torch.Generator(device="cuda:0").manual_seed(42)
    out = []
    for i in range(3000):  # ~9 GB (issue 11's model is 10.3 GB), odd sizes, three dtypes
        n = 1 + (i * 7919) % 2_600_000
        dt = (torch.bfloat16, torch.float32, torch.uint8)[i % 3]
        t = torch.empty(n, dtype=dt, device="cuda:0")
        if fill:
            t.copy_(torch.randint(0, 255, (n,), generator=g, device="cuda:0", dtype=torch.uint8).to(dt))
        else:
            t.zero_()
        out.append(t)
    base = torch.empty((512, 300), dtype=torch.bfloat16, device="cuda:0")  # a non-contiguous one
    if fill:
        base.copy_(torch.randn((512, 300), generator=g, device="cuda:0"))
    else:
        base.zero_()
    out.append(base.t())
    return out


def meet(role, path, nccl, ts):
    """One cast's rendezvous through a file: the seed writes a fresh unique id, the receiver waits
    for it and zeroes its tensors (so every cast must deliver every byte)."""
    if role == "seed":
        uid = nccl.unique_id()
        with open(path + ".tmp", "w") as f:
            f.write(uid)
        os.replace(path + ".tmp", path)
    else:
        while not os.path.exists(path):
            time.sleep(0.01)
        uid = open(path).read()
        for t in ts:
            t.zero_()
    torch.cuda.synchronize()
    return uid


def grouped(role, out, caster, copier, plan, ts, expected, nccl):
    """Experiment (ADR 0002, not built): no pack/unpack at all — per bucket one ncclGroupStart/End
    of ncclBroadcasts straight from/into each tensor segment (contiguous tensors only). Bandwidth
    and byte equality only; no checksums."""
    import ctypes

    from seedcast_engine.direct import NCCL_IN_PROGRESS

    lib = caster.nccl.lib
    out_runs = []
    for variant in ("per-bucket", "one-group"):
        for rep in range(2):
            uid = meet(role, os.path.join(out, f"g-uid-{variant}-{rep}"), nccl, ts)
            import base64
            stats = {}
            deadline = time.monotonic() + 60
            comm = caster._init(base64.b64decode(uid), 0 if role == "seed" else 1, 2, deadline, stats)
            first, last = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            first.record(caster.stream)
            t0 = time.perf_counter()
            groups = [[k] for k in range(plan.buckets)] if variant == "per-bucket" else [list(range(plan.buckets))]
            for ks in groups:
                lib.ncclGroupStart()
                for k in ks:
                    for seg in plan.segments(k):
                        f = copier.flat[seg.tensor]
                        if f is None:
                            continue
                        r = lib.ncclBroadcast(ctypes.c_void_p(f.data_ptr() + seg.tensor_offset),
                                              ctypes.c_void_p(f.data_ptr() + seg.tensor_offset), seg.length, 1, 0,
                                              comm, ctypes.c_void_p(caster.stream.cuda_stream))
                        caster.nccl.check(r, "ncclBroadcast")
                r = lib.ncclGroupEnd()
                caster.nccl.check(r, "ncclGroupEnd")
                if r == NCCL_IN_PROGRESS:
                    caster._poll(comm, deadline, "ncclGroupEnd")
            enq = time.perf_counter() - t0
            last.record(caster.stream)
            caster._wait(comm, last, deadline, "grouped")
            ms = first.elapsed_time(last)
            caster._close(comm, deadline)
            entry = {"variant": variant, "gpuMs": ms, "enqueue_s": enq, "GBps_gpu": plan.total_bytes / (ms / 1e3) / 1e9}
            if role == "receiver":
                entry["tensors_equal_contiguous"] = all(torch.equal(a, b) for a, b, f in zip(ts, expected, copier.flat) if f is not None)
            out_runs.append(entry)
    return out_runs


def main():
    role, out = sys.argv[1], sys.argv[2]
    torch.cuda.set_device(0)
    ts = tensors(fill=True) if role == "seed" else tensors(fill=False)
    expected = ts if role == "seed" else tensors(fill=True)
    sizes = [t.numel() * t.element_size() for t in ts]
    nccl = Nccl()
    res = {"role": role, "nccl": nccl.version, "bytes": sum(sizes), "tensors": len(ts), "runs": []}
    round_ = 0
    for mib in BUCKETS_MIB:
        bucket = mib << 20
        plan = BucketPlan(sizes, bucket)
        copier = TorchCopier(ts, torch.device("cuda", 0))
        slots = [Slot(bucket), Slot(bucket)]
        copier.prepare(plan, slots)
        caster = DirectCaster(copier, 0, nccl)
        run = {"bucket_mib": mib, "buckets": plan.buckets, "warm_s": caster.warm(plan, slots), "casts": []}
        for _ in range(3):
            uid = meet(role, os.path.join(out, f"uid-{round_}"), nccl, ts)
            t0 = time.perf_counter()
            r = caster.cast(role="send" if role == "seed" else "receive", plan=plan, slots=slots, unique_id=uid,
                            comm_rank=0 if role == "seed" else 1, nranks=2, init_timeout=60, timeout=60)
            r["stats"]["wall_s"] = time.perf_counter() - t0
            r["stats"]["teardownMs"] = caster.wait_teardown(60)
            r["stats"]["GBps_gpu"] = plan.total_bytes / (r["stats"]["gpuMs"] / 1e3) / 1e9
            run["casts"].append(r["stats"])
            with open(os.path.join(out, f"{role}-sums-{round_}.json"), "w") as f:
                json.dump(r["checksums"], f)
            round_ += 1
        if role == "seed":  # the GPU sum32x2 against the CPU reference, first and last bucket
            for k in (0, plan.buckets - 1):
                copier.fill(plan, k, slots[0])
                ref = sum32x2(slots[0].t[: plan.bucket_length(k)].cpu().numpy().tobytes())
                run[f"cpu_sum_bucket{k}_equal"] = ref == r["checksums"][k]
        else:
            run["tensors_equal"] = all(torch.equal(a, b) for a, b in zip(ts, expected))
            other = os.path.join(out, f"seed-sums-{round_ - 1}.json")
            for _ in range(200):
                if os.path.exists(other):
                    break
                time.sleep(0.05)
            run["checksums_equal_seed"] = json.load(open(other)) == r["checksums"]
        if os.environ.get("DP_GROUPED") == "1" and mib == BUCKETS_MIB[0]:  # the grouped experiment, run 13
            run["grouped"] = grouped(role, out, caster, copier, plan, ts, expected, nccl)
        res["runs"].append(run)
        del slots, copier, caster
        torch.cuda.empty_cache()
    print(json.dumps(res), flush=True)
    with open(os.path.join(out, f"direct-pair-{role}.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
