"""Copying bucket segments between the engine's tensors and a staging slot.

Two implementations of one small interface:
- `BytesCopier`: tensors are writable byte buffers (bytearray / memoryview); pure Python.
  Used by the conformance tests and by CPU engines that hold plain buffers.
- `TorchCopier`: torch tensors (GPU or CPU). Each bucket is copied on a dedicated CUDA stream;
  the stream is synchronised (through an event) before the engine answers `filled`/`drained`, so
  the agent never sees a half-copied slot and the engine never reads a half-drained weight.
  When slot and tensors share a CUDA device, a bucket's segments are cut into views once (per
  bucket and slot, kept for the next transfer) and copied with one `torch._foreach_copy_` per
  element width, large segments with their own `copy_`: one `copy_` per segment cost ~19 µs of
  Python and launch each, which capped a 3893-tensor model at ~130 GB/s (issue 11).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from .plan import BucketPlan, Segment


class CopyStats:
    def __init__(self) -> None:
        self.fills = 0
        self.drains = 0
        self.bytes = 0
        self.seconds = 0.0  # wall time inside copies, synchronisation included

    def add(self, kind: str, nbytes: int, seconds: float) -> None:
        if kind == "fill":
            self.fills += 1
        else:
            self.drains += 1
        self.bytes += nbytes
        self.seconds += seconds

    def as_dict(self) -> dict[str, Any]:
        gbps = self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0
        return {"fills": self.fills, "drains": self.drains, "bytes": self.bytes, "seconds": self.seconds, "GBps": gbps}


class BytesCopier:
    def __init__(self, buffers: Sequence[Any]):
        self.views = [memoryview(b).cast("B") for b in buffers]
        self.sizes = [len(v) for v in self.views]
        self.stats = CopyStats()

    def fill(self, plan: BucketPlan, k: int, slot: Any) -> int:
        t0 = time.perf_counter()
        dst = slot.buffer
        n = 0
        for s in plan.segments(k):
            dst[s.slot_offset : s.slot_offset + s.length] = self.views[s.tensor][s.tensor_offset : s.tensor_offset + s.length]
            n += s.length
        self.stats.add("fill", n, time.perf_counter() - t0)
        return n

    def drain(self, plan: BucketPlan, k: int, slot: Any) -> int:
        t0 = time.perf_counter()
        src = slot.buffer
        n = 0
        for s in plan.segments(k):
            self.views[s.tensor][s.tensor_offset : s.tensor_offset + s.length] = src[s.slot_offset : s.slot_offset + s.length]
            n += s.length
        self.stats.add("drain", n, time.perf_counter() - t0)
        return n

    def close(self) -> None:
        for v in self.views:
            v.release()


def flat_bytes(t: Any) -> Any:
    """A flat uint8 view of a contiguous tensor (no copy)."""
    import torch

    t = t.detach()
    if t.dim() == 0:
        t = t.reshape(1)
    return t.reshape(-1).view(torch.uint8)


#: Segments at least this large get their own `copy_` (one kernel at full bandwidth).
BIG_SEGMENT = 8 << 20


class _BucketViews:
    """One bucket's contiguous segments as ready (slot view, tensor view) pairs.

    Small pairs are grouped by the widest element that divides both addresses and the length
    (int64 … uint8), for one `torch._foreach_copy_` per group; large pairs are copied one by one.
    Segments of non-contiguous tensors are left out (`rest`) and take the gather/scatter path.
    """

    def __init__(self) -> None:
        self.big: list[tuple[Any, Any]] = []
        self.groups: dict[Any, tuple[list[Any], list[Any]]] = {}
        self.rest: list[Segment] = []

    def add(self, torch: Any, slot_view: Any, tensor_view: Any) -> None:
        if slot_view.numel() >= BIG_SEGMENT:
            self.big.append((slot_view, tensor_view))
            return
        n = slot_view.numel()
        for width, dtype in ((8, torch.int64), (4, torch.int32), (2, torch.int16)):
            if n % width == 0 and slot_view.data_ptr() % width == 0 and tensor_view.data_ptr() % width == 0:
                slot_view, tensor_view = slot_view.view(dtype), tensor_view.view(dtype)
                break
        dsts, srcs = self.groups.setdefault(slot_view.dtype, ([], []))
        dsts.append(slot_view)
        srcs.append(tensor_view)

    def copy(self, torch: Any, to_slot: bool) -> None:
        for slot_view, tensor_view in self.big:
            if to_slot:
                slot_view.copy_(tensor_view, non_blocking=True)
            else:
                tensor_view.copy_(slot_view, non_blocking=True)
        for slot_views, tensor_views in self.groups.values():
            if to_slot:
                torch._foreach_copy_(slot_views, tensor_views)
            else:
                torch._foreach_copy_(tensor_views, slot_views)


class TorchCopier:
    def __init__(self, tensors: Sequence[Any], device: Any = None):
        import torch

        self.torch = torch
        self.tensors = list(tensors)
        self.flat: list[Any] = []
        for t in self.tensors:
            self.flat.append(flat_bytes(t) if t.is_contiguous() else None)
        self.sizes = [t.numel() * t.element_size() for t in self.tensors]
        self.device = torch.device(device) if device is not None else None
        cuda = self.device is not None and self.device.type == "cuda"
        self.stream = torch.cuda.Stream(device=self.device) if cuda else None
        self._pending: dict[int, Any] = {}  # receiver: contiguous scratch for non-contiguous tensors
        self._views: dict[tuple[int, int, int], _BucketViews] = {}  # (bucket bytes, bucket, slot address) -> views
        self.batched = hasattr(torch, "_foreach_copy_")
        self.stats = CopyStats()

    def rebind(self, tensors: Sequence[Any]) -> None:
        """Point at new tensors with the same table (after a cold load built a new model)."""
        if [t.numel() * t.element_size() for t in tensors] != self.sizes:
            raise ValueError("rebind: tensor sizes differ from the registered table")
        self.tensors = list(tensors)
        self.flat = [flat_bytes(t) if t.is_contiguous() else None for t in self.tensors]
        self._views.clear()

    def release(self) -> None:
        """Drop every reference to the engine's tensors (before a cold load frees the dummy model)."""
        self.tensors, self.flat = [], []
        self._pending.clear()
        self._views.clear()

    def _ctx(self) -> Any:
        import contextlib

        return self.torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _sync(self) -> None:
        if self.stream is not None:
            ev = self.torch.cuda.Event()
            ev.record(self.stream)
            ev.synchronize()

    def _source(self, i: int) -> Any:
        f = self.flat[i]
        return f if f is not None else flat_bytes(self.tensors[i].contiguous())

    def fill(self, plan: BucketPlan, k: int, slot: Any) -> int:
        t0 = time.perf_counter()
        dst = slot.tensor(pin=True)
        n = plan.bucket_length(k)  # the bucket's segments cover it exactly
        if self.stream is not None:
            # the copy stream must see every write the compute stream made to the weights
            self.stream.wait_stream(self.torch.cuda.current_stream(self.device))
        with self._ctx():
            self.pack(plan, k, dst)
        self._sync()
        self.stats.add("fill", n, time.perf_counter() - t0)
        return n

    def pack(self, plan: BucketPlan, k: int, dst: Any) -> None:
        """Enqueue bucket k's copies into the flat uint8 tensor `dst` on the current stream."""
        views = self._bucket_views(plan, k, dst)
        if views is not None:
            views.copy(self.torch, to_slot=True)
        for s in views.rest if views is not None else plan.segments(k):
            dst[s.slot_offset : s.slot_offset + s.length].copy_(
                self._source(s.tensor)[s.tensor_offset : s.tensor_offset + s.length], non_blocking=True
            )

    def _bucket_views(self, plan: BucketPlan, k: int, slot: Any) -> _BucketViews | None:
        """Bucket k's segments against this slot, cut once; None where batching does not apply."""
        if not self.batched or slot.device.type != "cuda":
            return None
        key = (plan.bucket_bytes, k, slot.data_ptr())
        views = self._views.get(key)
        if views is None:
            views = _BucketViews()
            for s in plan.segments(k):
                f = self.flat[s.tensor]
                if f is None or f.device != slot.device:
                    views.rest.append(s)
                else:
                    views.add(
                        self.torch,
                        slot[s.slot_offset : s.slot_offset + s.length],
                        f[s.tensor_offset : s.tensor_offset + s.length],
                    )
            self._views[key] = views
        return views

    def drain(self, plan: BucketPlan, k: int, slot: Any) -> int:
        t0 = time.perf_counter()
        src = slot.tensor(pin=True)
        n = plan.bucket_length(k)  # the bucket's segments cover it exactly
        with self._ctx():
            self.unpack(plan, k, src)
        self._sync()
        self.stats.add("drain", n, time.perf_counter() - t0)
        return n

    def unpack(self, plan: BucketPlan, k: int, src: Any) -> None:
        """Enqueue the copies of bucket k from the flat uint8 tensor `src` into the tensors on the
        current stream (non-contiguous tensors gather in scratch and are written at their last bucket)."""
        finished: list[int] = []
        views = self._bucket_views(plan, k, src)
        if views is not None:
            views.copy(self.torch, to_slot=False)
        for s in views.rest if views is not None else plan.segments(k):
            piece = src[s.slot_offset : s.slot_offset + s.length]
            f = self.flat[s.tensor]
            if f is None:  # non-contiguous: gather into scratch, scatter when complete
                f = self._pending.get(s.tensor)
                if f is None:
                    f = self.torch.empty(self.sizes[s.tensor], dtype=self.torch.uint8, device=self.tensors[s.tensor].device)
                    self._pending[s.tensor] = f
                if plan.last_bucket_of(s.tensor) == k:
                    finished.append(s.tensor)
            f[s.tensor_offset : s.tensor_offset + s.length].copy_(piece, non_blocking=True)
        for i in finished:
            t = self.tensors[i]
            scratch = self._pending.pop(i)
            t.copy_(scratch.view(t.dtype).view(t.shape))

    def prepare(self, plan: BucketPlan, slots: Sequence[Any]) -> None:
        """Cut every bucket's views against every slot now (engine start), not in the transfer:
        cutting costs ~15 µs per segment, about what the batched copy saves (issue 11)."""
        if not self.batched or self.stream is None:
            return  # no batching off CUDA: nothing to cut, and host slots stay unpinned until used
        for slot in slots:
            tensor = slot.tensor(pin=True)
            for k in range(plan.buckets):
                self._bucket_views(plan, k, tensor)

    def forget_slots(self) -> None:
        """The slots were closed or replaced: drop the views cut against them."""
        self._views.clear()

    def close(self) -> None:
        self._pending.clear()
        self._views.clear()
