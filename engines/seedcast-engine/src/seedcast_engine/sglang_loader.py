"""SGLang adapter.

SGLang's `get_model_loader` accepts a loader *class* as `load_format`
(`isinstance(load_config.load_format, type)`), so the adapter is a `BaseModelLoader` subclass:

    import sglang as sgl
    from seedcast_engine.sglang_loader import SeedcastSGLangLoader
    engine = sgl.Engine(model_path=..., load_format=SeedcastSGLangLoader)

or from the command line (SGLang's `--load-format` only accepts its own names):

    python -m seedcast_engine.sglang_loader --model-path ... [other sglang.launch_server flags]

The class pickles by reference, so SGLang's scheduler subprocesses import it themselves.
Receiver order as everywhere: SGLang's `dummy` loader builds the model and runs its
post-processing, then the shim fills the tensors in place; a cold start uses SGLang's default
loader. Targets SGLang >= 0.5 (keyword `load_model(model_config=, device_config=)`).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _ranks() -> tuple[int, int, int, int]:
    from sglang.srt.distributed import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size

    tp, tp_rank = get_tensor_model_parallel_world_size(), get_tensor_model_parallel_rank()
    try:
        from sglang.srt.distributed import get_pp_group

        g = get_pp_group()
        pp, pp_rank = g.world_size, g.rank_in_group
    except Exception:  # noqa: BLE001 - no pipeline parallelism in this version/config
        pp, pp_rank = 1, 0
    return pp_rank * tp + tp_rank, tp, pp, tp * pp


def _base() -> type:
    try:
        from sglang.srt.model_loader.loader import BaseModelLoader

        return BaseModelLoader
    except ImportError:
        return object


class SeedcastSGLangLoader(_base()):  # type: ignore[misc]
    def __init__(self, load_config: Any):
        from .adapter import Options

        self.options = Options.load(getattr(load_config, "model_loader_extra_config", None) or {})
        self.load_config = load_config

    def _loader(self, fmt: str) -> Any:
        from sglang.srt.configs.load_config import LoadFormat
        from sglang.srt.model_loader.loader import get_model_loader

        cfg = dataclasses.replace(self.load_config, load_format=LoadFormat(fmt), model_loader_extra_config={})
        return get_model_loader(cfg)

    def download_model(self, model_config: Any) -> None:
        self._loader("auto").download_model(model_config)

    def load_model(self, *, model_config: Any, device_config: Any) -> Any:
        import sglang

        from .adapter import warm_start
        from .torch_shim import fingerprint_inputs

        rank, tp, pp, ranks = _ranks()
        inputs = fingerprint_inputs(
            engine="sglang",
            engine_version=getattr(sglang, "__version__", "unknown"),
            model=self.options.model or str(model_config.model_path),
            revision=self.options.revision or str(getattr(model_config, "revision", None) or "main"),
            dtype=_dtype_name(model_config.dtype),
            tensor_parallel=tp,
            pipeline_parallel=pp,
            rank=rank,
            quantization=str(getattr(model_config, "quantization", None) or "none"),
        )
        dummy, real = self._loader("dummy"), self._loader("auto")
        return warm_start(
            lambda: dummy.load_model(model_config=model_config, device_config=device_config),
            lambda: real.load_model(model_config=model_config, device_config=device_config),
            inputs,
            rank=rank,
            ranks=ranks,
            options=self.options,
        ).eval()


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - needs SGLang
    from sglang.srt.entrypoints.http_server import launch_server
    from sglang.srt.server_args import prepare_server_args

    args = list(sys.argv[1:] if argv is None else argv)
    if "--load-format" in args:
        i = args.index("--load-format")
        del args[i : i + 2]
    server_args = prepare_server_args(args)
    server_args.load_format = SeedcastSGLangLoader
    launch_server(server_args)


if __name__ == "__main__":  # pragma: no cover
    main()
