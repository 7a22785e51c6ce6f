"""vLLM adapter: the `seedcast` load format.

Installed through the `vllm.general_plugins` entry point, which vLLM loads in every process
(workers included), so `vllm serve MODEL --load-format seedcast` works on every rank.
Targets vLLM >= 0.10 (`BaseModelLoader.load_model(vllm_config, model_config, prefix)` and
`register_model_loader` in `vllm.model_executor.model_loader`); see docs/engines.md.

The loader builds the model through vLLM's own `dummy` loader (initialise, dummy weights,
`process_weights_after_loading`), then lets the shim fill the post-processed tensors in place;
on a cold start it falls back to vLLM's default loader (`--load-format auto`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

log = logging.getLogger("seedcast_engine")

LOAD_FORMAT = "seedcast"
_registered = False


def _replace(load_config: Any, **changes: Any) -> Any:
    try:
        return dataclasses.replace(load_config, **changes)
    except TypeError:  # not a dataclass in this version: shallow copy
        import copy

        new = copy.copy(load_config)
        for k, v in changes.items():
            setattr(new, k, v)
        return new


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _parallel_rank() -> tuple[int, int, int, int]:
    """(rank within tp*pp, tp, pp, ranks)."""
    from vllm.distributed import get_pp_group, get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size

    tp, tp_rank = get_tensor_model_parallel_world_size(), get_tensor_model_parallel_rank()
    pp_group = get_pp_group()
    pp, pp_rank = pp_group.world_size, pp_group.rank_in_group
    return pp_rank * tp + tp_rank, tp, pp, tp * pp


def make_loader_class(base: type) -> type:
    class SeedcastModelLoader(base):  # type: ignore[misc, valid-type]
        """`--load-format seedcast`: receive the post-processed weights from a seed through the
        seedcast agent, or cold-load with vLLM's default loader when the agent says so."""

        def __init__(self, load_config: Any):
            from .adapter import Options

            self.options = Options.load(getattr(load_config, "model_loader_extra_config", None) or {})
            super().__init__(_replace(load_config, model_loader_extra_config={}))

        def _loader(self, fmt: str) -> Any:
            from vllm.model_executor.model_loader import get_model_loader

            return get_model_loader(_replace(self.load_config, load_format=fmt, model_loader_extra_config={}))

        def download_model(self, model_config: Any) -> None:
            self._loader("auto").download_model(model_config)

        def load_weights(self, model: Any, model_config: Any) -> None:
            # in-place reloads (e.g. after sleep mode) read from storage
            self._loader("auto").load_weights(model, model_config)

        def load_model(self, vllm_config: Any, model_config: Any, prefix: str = "") -> Any:
            import vllm

            from .adapter import warm_start
            from .torch_shim import fingerprint_inputs

            rank, tp, pp, ranks = _parallel_rank()
            inputs = fingerprint_inputs(
                engine="vllm",
                engine_version=getattr(vllm, "__version__", "unknown"),
                model=self.options.model or str(getattr(model_config, "served_model_name", None) or model_config.model),
                revision=self.options.revision or str(getattr(model_config, "revision", None) or "main"),
                dtype=_dtype_name(model_config.dtype),
                tensor_parallel=tp,
                pipeline_parallel=pp,
                rank=rank,
                quantization=str(getattr(model_config, "quantization", None) or "none"),
            )
            dummy, real = self._loader("dummy"), self._loader("auto")
            return warm_start(
                lambda: dummy.load_model(vllm_config=vllm_config, model_config=model_config, prefix=prefix),
                lambda: real.load_model(vllm_config=vllm_config, model_config=model_config, prefix=prefix),
                inputs,
                rank=rank,
                ranks=ranks,
                options=self.options,
            ).eval()

    return SeedcastModelLoader


def register() -> None:
    """The `vllm.general_plugins` entry point: register the `seedcast` load format (idempotent)."""
    global _registered
    if _registered:
        return
    from vllm.model_executor.model_loader import register_model_loader

    try:
        from vllm.model_executor.model_loader import BaseModelLoader
    except ImportError:  # pragma: no cover - older layout
        from vllm.model_executor.model_loader.base_loader import BaseModelLoader

    register_model_loader(LOAD_FORMAT)(make_loader_class(BaseModelLoader))
    _registered = True
    log.debug("seedcast: registered vLLM load format %r", LOAD_FORMAT)
