"""Engine-independent warm start used by the vLLM and SGLang adapters.

    model = warm_start(build_dummy, build_real, inputs, rank=r, ranks=n)

1. `build_dummy()` builds the model with dummy weights and runs the engine's post-processing
   (quantisation repacking, fused layouts, derived tensors), exactly as a real load ends.
2. The shim registers the post-processed tensors with the agent (state "empty") and waits:
   - the agent drains verified buckets into those tensors in place, then `complete verified`;
   - or the agent says `load` (cold start): the dummy model is freed, `build_real()` runs the
     engine's normal loader, and the shim re-points at the new tensors (same table).
3. The session stays open afterwards: the engine is now a seed candidate and answers `fill`.

Options come from the environment (and the adapters' extra config):
SEEDCAST_SOCKET (default /run/seedcast/agent.sock), SEEDCAST_MEMORY (cuda|host, default cuda
on GPUs), SEEDCAST_READY_TIMEOUT seconds (default 1800), SEEDCAST_MODEL / SEEDCAST_REVISION
(the model identity in the fingerprint; defaults from the engine config, but a local path
differs between pods, so set them), SEEDCAST_FALLBACK (storage|fail, default storage: with no
agent socket the engine loads normally and logs a warning).
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .client import socket_path

log = logging.getLogger("seedcast_engine")

# Live sessions (one per rank in this process): kept so seeds keep answering `fill`.
SESSIONS: list[Any] = []


@dataclass
class Options:
    socket: str
    memory: str | None
    ready_timeout: float
    model: str | None
    revision: str | None
    fallback: str

    @classmethod
    def load(cls, extra: Mapping[str, Any] | None = None) -> "Options":
        extra = dict(extra or {})
        env = os.environ

        def get(key: str, envkey: str, default: Any = None) -> Any:
            return extra.get(key, env.get(envkey, default))

        memory = get("memory", "SEEDCAST_MEMORY")
        if memory not in (None, "cuda", "host"):
            raise ValueError(f"SEEDCAST_MEMORY must be cuda or host, got {memory!r}")
        fallback = get("fallback", "SEEDCAST_FALLBACK", "storage")
        if fallback not in ("storage", "fail"):
            raise ValueError(f"SEEDCAST_FALLBACK must be storage or fail, got {fallback!r}")
        return cls(
            socket=socket_path(get("socket", "SEEDCAST_SOCKET")),
            memory=memory,
            ready_timeout=float(get("ready_timeout", "SEEDCAST_READY_TIMEOUT", 1800)),
            model=get("model", "SEEDCAST_MODEL"),
            revision=get("revision", "SEEDCAST_REVISION"),
            fallback=fallback,
        )


def warm_start(
    build_dummy: Callable[[], Any],
    build_real: Callable[[], Any],
    inputs: Mapping[str, Any],
    *,
    rank: int,
    ranks: int,
    options: Options,
) -> Any:
    from .torch_shim import TorchShim

    if not os.path.exists(options.socket):
        if options.fallback == "fail":
            raise FileNotFoundError(f"seedcast agent socket {options.socket} not found")
        log.warning("seedcast: no agent socket at %s; loading from storage", options.socket)
        return build_real()

    holder: dict[str, Any] = {"model": build_dummy()}
    shim = TorchShim(holder["model"], inputs, rank=rank, ranks=ranks, memory=options.memory,
                     state="empty", socket=options.socket)

    def cold_load() -> None:
        import torch

        shim.copier.release()
        holder["model"] = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        holder["model"] = build_real()
        shim.rebind_model(holder["model"])

    shim.cold_load = cold_load
    shim.connect()
    log.info("seedcast: rank %d registered (fingerprint %s), waiting for weights", rank, shim.fingerprint)
    shim.wait_ready(timeout=options.ready_timeout, fail_on_failed=False)
    stats = shim.copier.stats.as_dict()
    log.info("seedcast: rank %d ready (%s)", rank, stats)
    SESSIONS.append(shim)
    return holder["model"]
