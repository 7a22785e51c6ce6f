"""PyTorch baselines measured in the same call as the addon's benchmarks (test/gpu/run.sh)."""
import json
import statistics
import sys

import torch


def timed(fn, reps=10, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main(path):
    torch.cuda.set_device(0)
    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "nccl": ".".join(map(str, torch.cuda.nccl.version())),
           "gpu": torch.cuda.get_device_name(0), "devices": torch.cuda.device_count()}
    n = 1 << 30
    host = torch.empty(n, dtype=torch.uint8, pin_memory=True)
    host.fill_(7)
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")
    ms = timed(lambda: dev.copy_(host, non_blocking=True))
    out["h2d_pinned_GBps"] = n / ms / 1e6
    ms = timed(lambda: host.copy_(dev, non_blocking=True))
    out["d2h_pinned_GBps"] = n / ms / 1e6
    del host, dev
    m = 2 << 30
    a = torch.randint(0, 255, (m,), dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = timed(lambda: b.copy_(a))
    out["d2d_copy_GBps_rw"] = 2 * m / ms / 1e6  # bytes read + written
    words = a.view(torch.int32)
    ms = timed(lambda: words.sum())
    out["int32_sum_GBps_read"] = m / ms / 1e6
    json.dump(out, open(path, "w"), indent=1)
    print(json.dumps(out))


main(sys.argv[1])
