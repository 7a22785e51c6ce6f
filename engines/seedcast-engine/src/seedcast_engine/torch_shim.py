"""The shim for any PyTorch model (the engine adapters and the GPU tests use this)."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping

from .copy import TorchCopier
from .shim import Shim
from .tensors import collect

log = logging.getLogger("seedcast_engine")


def fingerprint_inputs(
    *,
    engine: str,
    engine_version: str,
    model: str,
    revision: str,
    dtype: str,
    tensor_parallel: int = 1,
    pipeline_parallel: int = 1,
    rank: int = 0,
    quantization: str = "none",
) -> dict[str, Any]:
    return {
        "engine": engine,
        "engineVersion": engine_version,
        "model": model,
        "revision": revision,
        "tensorParallel": tensor_parallel,
        "pipelineParallel": pipeline_parallel,
        "rank": rank,
        "dtype": dtype,
        "quantization": quantization,
    }


class TorchShim(Shim):
    def __init__(
        self,
        model: Any,
        inputs: Mapping[str, Any],
        *,
        memory: str | None = None,
        device: int | None = None,
        rank: int = 0,
        ranks: int = 1,
        state: str = "empty",
        cold_load: Callable[[], Any] | None = None,
        socket: str | None = None,
        hidden: bool = True,
        direct: bool | None = None,
    ):
        import torch

        table, tensors = collect(model, hidden=hidden)
        on_cuda = any(t.device.type == "cuda" for t in tensors)
        if device is None and on_cuda:
            device = next(t.device.index for t in tensors if t.device.type == "cuda") or 0
        if memory is None:
            memory = "cuda" if on_cuda else "host"
        self.hidden = hidden
        copier = TorchCopier(tensors, torch.device("cuda", device) if on_cuda else None)
        caster = None
        if direct is None:  # default on; SEEDCAST_ENGINE_DIRECT=0 keeps transfers on the agent's slots
            direct = os.environ.get("SEEDCAST_ENGINE_DIRECT", "1") != "0"
        if direct and memory == "cuda" and on_cuda:
            try:
                from .direct import DirectCaster

                caster = DirectCaster(copier, device)
            except Exception as exc:  # no NCCL or driver here: the agent's slot path still works
                log.warning("direct casts unavailable, using the agent's slots: %s", exc)
        super().__init__(
            table, inputs, copier, rank=rank, ranks=ranks, memory=memory,
            device=device if memory == "cuda" else None, state=state, cold_load=cold_load, socket=socket,
            caster=caster,
        )

    def rebind_model(self, model: Any) -> None:
        """After a cold load built a new model object: point the copies at its tensors."""
        table, tensors = collect(model, hidden=self.hidden)
        if table != self.table:
            raise ValueError("the cold-loaded model's tensor table differs from the registered one")
        self.copier.rebind(tensors)
