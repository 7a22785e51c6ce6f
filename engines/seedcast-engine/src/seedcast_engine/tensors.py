"""What must move: every tensor a PyTorch model's forward pass reads, as the engine holds it
after post-processing.

Order of registration (deterministic for a given model class and config):
1. `named_parameters()` (tied weights once),
2. `named_buffers()` (persistent or not: rotary tables, scales, ...),
3. tensors hidden on modules as plain attributes, and one level inside non-module helper
   objects or containers (quantisation methods, caches of derived weights, ...).
A tensor whose memory lies entirely inside one already registered is skipped (aliases and
views move with their base). Tensors on the `meta` device are skipped.
"""

from __future__ import annotations

from typing import Any, Iterator

from .shim import table_entry


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _extent(t: Any) -> tuple[int, int, int]:
    """(storage pointer, first byte, one past the last byte) of the memory a tensor spans."""
    st = t.untyped_storage()
    size = t.element_size()
    if t.numel() == 0:
        span = 0
    else:
        span = (sum((d - 1) * abs(s) for d, s in zip(t.shape, t.stride())) + 1) * size
    start = t.storage_offset() * size
    return st.data_ptr(), start, start + span


def _hidden(module: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    import torch

    skip = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}
    for attr, val in sorted(vars(module).items()):
        if attr in skip or attr.startswith("__"):
            continue
        name = f"{prefix}{attr}"
        if isinstance(val, torch.Tensor):
            yield name, val
        elif isinstance(val, torch.nn.Module):
            continue  # registered submodules are walked by named_modules; others are rare
        elif isinstance(val, (list, tuple)):
            for i, v in enumerate(val):
                if isinstance(v, torch.Tensor):
                    yield f"{name}[{i}]", v
        elif isinstance(val, dict):
            for k in sorted(val, key=str):
                if isinstance(val[k], torch.Tensor):
                    yield f"{name}[{k}]", val[k]
        elif hasattr(val, "__dict__") and not isinstance(val, type):
            for sub, v in sorted(vars(val).items()):
                if isinstance(v, torch.Tensor):
                    yield f"{name}.{sub}", v


def collect(model: Any, *, hidden: bool = True) -> tuple[list[dict[str, Any]], list[Any]]:
    """(table, tensors) in registration order for `model` (a torch.nn.Module)."""
    import torch

    table: list[dict[str, Any]] = []
    tensors: list[Any] = []
    spans: dict[int, list[tuple[int, int]]] = {}
    seen: set[int] = set()

    def add(name: str, t: Any) -> None:
        if id(t) in seen or t.device.type == "meta":
            return
        seen.add(id(t))
        ptr, lo, hi = _extent(t)
        for a, b in spans.get(ptr, ()):
            if a <= lo and hi <= b and hi > lo:
                return  # alias or view of a registered tensor
        spans.setdefault(ptr, []).append((lo, hi))
        data = t.detach()
        table.append(table_entry(name, dtype_name(data.dtype), tuple(data.shape), data.numel() * data.element_size()))
        tensors.append(data)

    for name, p in model.named_parameters():
        add(name, p)
    for name, b in model.named_buffers():
        add(name, b)
    if hidden:
        for mname, module in model.named_modules():
            for name, t in _hidden(module, f"{mname}." if mname else ""):
                if isinstance(t, torch.nn.Parameter) and id(t) in seen:
                    continue
                add(name, t)
    return table, tensors
