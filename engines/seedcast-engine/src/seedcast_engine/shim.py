"""The engine-agnostic shim: one bridge session per rank.

    shim = Shim(table, inputs, copier, rank=0, ranks=1, memory="cuda", device=0,
                state="empty", cold_load=my_loader)
    shim.connect()            # hello -> welcome (fingerprint checked by the agent), slots mapped
    shim.wait_ready()         # receiver: until `complete verified` (or a cold `load`) -> "loaded"

Seeds connect with state="loaded" and keep the session open while serving: `fill` requests
are answered from the live weights on a separate CUDA stream. Receivers connect with
state="empty" after building the model with dummy weights and running the engine's
post-processing, so the received bytes land in the final tensors and pointers captured by
CUDA graphs stay valid.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from . import errors
from .client import BridgeConnection
from .errors import SeedcastError
from .fingerprint import rank_fingerprint
from .plan import BucketPlan
from .protocol import ENGINE_TO_AGENT, MAX_FRAME, encode_frame, message, validate
from .staging import open_slot

log = logging.getLogger("seedcast_engine")


def table_entry(name: str, dtype: str, shape: Sequence[int], nbytes: int) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": [int(x) for x in shape], "bytes": int(nbytes)}


class Shim:
    def __init__(
        self,
        table: Sequence[Mapping[str, Any]],
        inputs: Mapping[str, Any],
        copier: Any,
        *,
        rank: int = 0,
        ranks: int = 1,
        memory: str = "host",
        device: int | None = None,
        state: str = "empty",
        cold_load: Callable[[], Any] | None = None,
        socket: str | None = None,
        caster: Any = None,
    ):
        if state not in ("empty", "loaded"):
            raise ValueError("state must be 'empty' or 'loaded'")
        if memory == "cuda" and device is None:
            raise ValueError("memory 'cuda' needs a device ordinal")
        self.table = [dict(t) for t in table]
        self.inputs = dict(inputs)
        self.copier = copier
        self.rank, self.ranks, self.memory, self.device = rank, ranks, memory, device
        self.state = state
        self.cold_load = cold_load
        self.socket = socket
        self.fingerprint = rank_fingerprint(self.inputs, self.table)
        self.conn: BridgeConnection | None = None
        self.plan: BucketPlan | None = None
        self.slots: dict[int, Any] = {}
        self.welcome: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.outcome: dict[str, Any] | None = None  # last `complete`
        self.drained: set[int] = set()
        self.timeline: dict[str, float] = {}
        # Direct casts (docs/bridge-protocol.md): a DirectCaster when this rank can join NCCL itself
        # (cuda staging only: a cast moves buckets through the rank's device slots).
        self.caster = caster if memory == "cuda" else None
        self.cast_received = False  # a receive cast landed bytes that are not verified yet
        self.last_cast: dict[str, Any] | None = None

    # ------------------------------------------------------------------ session
    def hello(self, msg_id: int = 1) -> dict[str, Any]:
        msg = message(
            "hello",
            id=msg_id,
            rank=self.rank,
            ranks=self.ranks,
            memory=self.memory,
            device=self.device if self.memory == "cuda" else None,
            fingerprintInputs=self.inputs,
            tensors=self.table,
            fingerprint=self.fingerprint,
            state=self.state,
            direct={"transport": "nccl"} if self.caster is not None else None,
        )
        validate(msg, ENGINE_TO_AGENT)  # our own table must pass the agent's rules
        size = len(encode_frame(msg)) - 4 if _fits(msg) else MAX_FRAME + 1
        if size > MAX_FRAME:
            raise SeedcastError(
                errors.PROTOCOL,
                f"hello for {len(self.table)} tensors exceeds the {MAX_FRAME}-byte frame limit",
                retryable=False,
            )
        return msg

    def connect(self, timeout: float = 60.0) -> dict[str, Any]:
        self.timeline["connect"] = time.perf_counter()
        conn = BridgeConnection.connect(self.socket, self._handle)
        conn.on_close = self._on_close  # type: ignore[attr-defined]
        self.conn = conn
        try:
            welcome = conn.request(self.hello(conn.next_id()), timeout)
            self._accept(welcome)
        except BaseException:
            self.close()
            raise
        return welcome

    def _accept(self, welcome: dict[str, Any]) -> None:
        if welcome["fingerprint"] != self.fingerprint:
            raise SeedcastError(
                errors.FINGERPRINT_MISMATCH,
                f"agent computed {welcome['fingerprint']}, engine {self.fingerprint}",
                retryable=False,
            )
        plan = BucketPlan([t["bytes"] for t in self.table], welcome["bucketBytes"])
        if plan.total_bytes != welcome["totalBytes"] or plan.buckets != welcome["buckets"]:
            raise SeedcastError(
                errors.PROTOCOL,
                f"welcome plan {welcome['buckets']} buckets/{welcome['totalBytes']} bytes, "
                f"engine derives {plan.buckets}/{plan.total_bytes}",
                retryable=False,
            )
        for desc in welcome["slots"]:
            if desc["kind"] != self.memory:
                raise SeedcastError(errors.PROTOCOL, f"slot {desc['slot']} is {desc['kind']}, asked for {self.memory}")
            if desc["bytes"] < min(welcome["bucketBytes"], plan.total_bytes or 1):
                raise SeedcastError(errors.PROTOCOL, f"slot {desc['slot']} holds {desc['bytes']} bytes < bucketBytes")
            if desc["kind"] == "cuda" and desc["device"] != self.device:
                raise SeedcastError(errors.PROTOCOL, f"slot {desc['slot']} is on device {desc['device']}, engine on {self.device}")
        self._open_slots(welcome["slots"])
        self.plan = plan
        self.welcome = welcome
        prepare = getattr(self.copier, "prepare", None)
        if prepare is not None:  # TorchCopier: cut the bucket views before any transfer
            prepare(plan, list(self.slots.values()))
        if self.caster is not None:  # load the cast's kernels now, not in a transfer
            self.timeline["cast_warm_s"] = self.caster.warm(plan, self._slot_list())

    def _slot_list(self) -> list[Any]:
        """The mapped slots in slot order (a cast uses slot k % 2 for bucket k)."""
        return [self.slots[k] for k in sorted(self.slots)]

    def _open_slots(self, descs: Sequence[Mapping[str, Any]]) -> None:
        forget = getattr(self.copier, "forget_slots", None)
        if forget is not None:  # views cut against earlier slots must not outlive them
            forget()
        for desc in descs:
            self.slots[desc["slot"]] = open_slot(dict(desc))

    # ------------------------------------------------------------------ requests from the agent
    def _handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        t = msg["type"]
        if t == "fill":
            return self._fill(msg)
        if t == "drain":
            return self._drain(msg)
        if t == "load":
            return self._load(msg)
        if t == "complete":
            return self._complete(msg)
        if t == "cast":
            return self._cast(msg)
        if t == "abort-cast":
            if self.caster is not None:
                self.caster.abort()
            return message("ack", id=msg["id"])
        raise SeedcastError(errors.PROTOCOL, f"unexpected {t}")

    def _check_bucket(self, msg: dict[str, Any]) -> tuple[int, Any]:
        if self.plan is None:
            raise SeedcastError(errors.PROTOCOL, f"{msg['type']} before welcome")
        k = msg["bucket"]
        if not 0 <= k < self.plan.buckets:
            raise SeedcastError(errors.INVALID, f"bucket: {k} outside 0..{self.plan.buckets - 1}")
        slot = self.slots.get(msg.get("slot"))
        if slot is None:
            raise SeedcastError(errors.INVALID, f"slot: unknown slot {msg.get('slot')}")
        if self.plan.bucket_length(k) > slot.bytes:
            raise SeedcastError(errors.INVALID, f"bucket {k} does not fit slot {slot.slot}")
        return k, slot

    def _fill(self, msg: dict[str, Any]) -> dict[str, Any]:
        k, slot = self._check_bucket(msg)
        if self.state != "loaded":
            raise SeedcastError(errors.INVALID, "fill: this engine holds no real weights yet (state empty)")
        n = self.copier.fill(self.plan, k, slot)
        return message("filled", id=msg["id"], bucket=k, slot=slot.slot, bytes=n)

    def _drain(self, msg: dict[str, Any]) -> dict[str, Any]:
        k, slot = self._check_bucket(msg)
        if self.state == "loaded":
            raise SeedcastError(errors.INVALID, "drain: this engine already holds verified weights")
        self.timeline.setdefault("first_drain", time.perf_counter())
        self.copier.drain(self.plan, k, slot)
        with self._changed:
            self.drained.add(k)
        self.timeline["last_drain"] = time.perf_counter()
        return message("drained", id=msg["id"], bucket=k)

    def _cast(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Join the rank's communicator and send or receive every bucket (runs on the worker)."""
        if self.caster is None:
            raise SeedcastError(errors.INVALID, "cast: this engine did not offer direct casts", retryable=False)
        if self.plan is None:
            raise SeedcastError(errors.PROTOCOL, "cast before welcome")
        role = msg["role"]
        if role == "send" and self.state != "loaded":
            raise SeedcastError(errors.INVALID, "cast send: this engine holds no real weights yet (state empty)")
        if role == "receive" and self.state == "loaded":
            raise SeedcastError(errors.INVALID, "cast receive: this engine already holds verified weights")
        if msg["commRank"] >= msg["nranks"] or (role == "send") != (msg["commRank"] == 0):
            raise SeedcastError(errors.INVALID, f"commRank: {msg['commRank']} of {msg['nranks']} does not fit role {role}")
        if role == "receive":
            with self._changed:
                self.drained.clear()
                self.cast_received = False
            self.timeline.setdefault("first_drain", time.perf_counter())
        result = self.caster.cast(
            role=role,
            plan=self.plan,
            slots=self._slot_list(),
            unique_id=msg["uniqueId"],
            comm_rank=msg["commRank"],
            nranks=msg["nranks"],
            init_timeout=msg["initTimeoutMs"] / 1000,
            timeout=msg["timeoutMs"] / 1000,
        )
        if role == "receive":
            with self._changed:
                self.cast_received = True
            self.timeline["last_drain"] = time.perf_counter()
        self.last_cast = result
        return message("cast-done", id=msg["id"], bytes=result["bytes"], checksums=result["checksums"],
                       stats=result["stats"])

    def _load(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.state == "loaded":
            return message("loaded", id=msg["id"])
        if self.cold_load is None:
            raise SeedcastError(errors.INVALID, "load: this engine has no cold loader")
        self.cold_load()
        self._set_state("loaded", {"outcome": "verified", "message": "cold load"})
        return message("loaded", id=msg["id"])

    def _complete(self, msg: dict[str, Any]) -> dict[str, Any]:
        if msg["outcome"] == "verified":
            if (self.state != "loaded" and self.plan is not None and not self.cast_received
                    and len(self.drained) != self.plan.buckets):
                missing = self.plan.buckets - len(self.drained)
                log.error("complete verified but %d bucket(s) were never drained", missing)
                self._set_state(self.state, {"outcome": "failed", "message": f"{missing} bucket(s) never drained"})
                raise SeedcastError(errors.PROTOCOL, f"complete verified with {missing} bucket(s) not drained")
            self._set_state("loaded", msg)
        else:
            with self._changed:
                self.drained.clear()
                self.cast_received = False
            self._set_state(self.state, msg)
        return message("ack", id=msg["id"])

    def _set_state(self, state: str, outcome: dict[str, Any] | None) -> None:
        with self._changed:
            self.state = state
            self.outcome = outcome
            self._changed.notify_all()

    def _on_close(self, reason: SeedcastError) -> None:
        if self.caster is not None:  # the agent is gone: no one will verify what a cast moves
            self.caster.abort()
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ waiting
    def wait_ready(self, timeout: float | None = None, *, fail_on_failed: bool = True) -> None:
        """Block until this rank holds real weights (received and verified, or cold-loaded).

        Raises SeedcastError when the connection drops, when the agent reports a failed
        transfer (unless fail_on_failed=False, which keeps waiting for a retry or cold load),
        or on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self.state != "loaded":
                if self.conn is None or self.conn.closed:
                    reason = self.conn.close_reason if self.conn is not None else None
                    raise reason or SeedcastError(errors.PEER_LOST, "not connected")
                if fail_on_failed and self.outcome is not None and self.outcome.get("outcome") == "failed":
                    raise SeedcastError(errors.ABORTED, f"transfer failed: {self.outcome.get('message', '')}")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise SeedcastError(errors.TIMEOUT, f"weights not ready after {timeout}s")
                self._changed.wait(0.5 if left is None else min(left, 0.5))
        self.timeline["ready"] = time.perf_counter()

    def serve_forever(self) -> None:
        """Seed: keep the session open (fills are answered on the bridge threads)."""
        assert self.conn is not None
        self.conn.wait_closed()

    def close(self) -> None:
        if self.caster is not None:
            self.caster.wait_teardown(30)
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
        for slot in self.slots.values():
            try:
                slot.close()
            except Exception as exc:  # pragma: no cover - best effort at teardown
                log.warning("closing slot %s: %s", slot.slot, exc)
        self.slots.clear()
        forget = getattr(self.copier, "forget_slots", None)
        if forget is not None:
            forget()
        self.conn = conn  # keep close_reason readable

    def __enter__(self) -> "Shim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fits(msg: dict[str, Any]) -> bool:
    try:
        encode_frame(msg)
        return True
    except SeedcastError:
        return False
