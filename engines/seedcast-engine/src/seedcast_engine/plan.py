"""Bucket plan (docs/bridge-protocol.md, "Buckets").

All of a rank's tensors, in registration order, form one byte stream of `totalBytes`; bucket k
is `[k*B, min((k+1)*B, totalBytes))`. A tensor may span buckets. Both sides derive the plan
from the tensor table and B alone.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Segment:
    tensor: int  # index in the registration order
    tensor_offset: int  # byte offset inside the tensor
    slot_offset: int  # byte offset inside the slot (bucket-relative)
    length: int


class BucketPlan:
    def __init__(self, sizes: Sequence[int], bucket_bytes: int):
        if bucket_bytes < 1:
            raise ValueError("bucketBytes must be positive")
        if any((not isinstance(s, int)) or s < 0 for s in sizes):
            raise ValueError("tensor sizes must be non-negative integers")
        self.sizes = list(sizes)
        self.bucket_bytes = bucket_bytes
        self.starts: list[int] = []
        acc = 0
        for s in self.sizes:
            self.starts.append(acc)
            acc += s
        self.total_bytes = acc
        self.buckets = -(-acc // bucket_bytes)  # ceil

    def bucket_range(self, k: int) -> tuple[int, int]:
        if not 0 <= k < self.buckets:
            raise IndexError(f"bucket {k} outside 0..{self.buckets - 1}")
        lo = k * self.bucket_bytes
        return lo, min(lo + self.bucket_bytes, self.total_bytes)

    def bucket_length(self, k: int) -> int:
        lo, hi = self.bucket_range(k)
        return hi - lo

    def segments(self, k: int) -> list[Segment]:
        lo, hi = self.bucket_range(k)
        # the last tensor starting at or before lo
        i = max(bisect.bisect_right(self.starts, lo) - 1, 0)
        out: list[Segment] = []
        while i < len(self.sizes) and self.starts[i] < hi:
            t_lo = self.starts[i]
            t_hi = t_lo + self.sizes[i]
            a, b = max(lo, t_lo), min(hi, t_hi)
            if b > a:
                out.append(Segment(i, a - t_lo, a - lo, b - a))
            i += 1
        return out

    def last_bucket_of(self, tensor: int) -> int:
        """The bucket holding the tensor's last byte (-1 for an empty tensor)."""
        if self.sizes[tensor] == 0:
            return -1
        return (self.starts[tensor] + self.sizes[tensor] - 1) // self.bucket_bytes


def sum32x2(data: bytes | bytearray | memoryview) -> str:
    """The bucket checksum `"<len>:<A:08x><C:08x>"` (little-endian uint32 words, tail zero-padded).

    Pure Python reference (slow for large buffers; numpy is used when available)."""
    mv = memoryview(data).cast("B")
    n = len(mv)
    try:
        import numpy as np  # type: ignore

        pad = (-n) % 4
        words = np.frombuffer(mv, dtype=np.uint8)
        if pad:
            words = np.concatenate([words, np.zeros(pad, dtype=np.uint8)])
        w = words.view("<u4")
        a = c = 0
        step = 1 << 22  # words per chunk; uint64 arithmetic wraps mod 2^64, which keeps mod 2^32 exact
        for o in range(0, len(w), step):
            chunk = w[o : o + step].astype(np.uint64)
            s_ = int(chunk.sum(dtype=np.uint64))
            j = np.arange(1, len(chunk) + 1, dtype=np.uint64)
            a = (a + s_) & 0xFFFFFFFF
            c = (c + o * s_ + int(np.dot(j, chunk))) & 0xFFFFFFFF
    except ImportError:
        raw = bytes(mv) + b"\0" * ((-n) % 4)
        a = c = 0
        for i in range(0, len(raw), 4):
            w = int.from_bytes(raw[i : i + 4], "little")
            a = (a + w) & 0xFFFFFFFF
            c = (c + (i // 4 + 1) * w) & 0xFFFFFFFF
    return f"{n}:{a:08x}{c:08x}"
