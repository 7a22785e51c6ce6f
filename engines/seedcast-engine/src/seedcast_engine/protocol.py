"""Bridge protocol v1: framing and message validation (docs/bridge-protocol.md).

Pure Python. Frames are a 4-byte big-endian length N (1 <= N <= 64 MiB) followed by N bytes
of UTF-8 JSON holding one object with `"v": 1` and `"type"`. Validation mirrors the agent's
zod schemas: unknown keys are tolerated (forward compatible), wrong or missing fields are
reported with their field path.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, Callable

from .errors import ProtocolError, ValidationError

VERSION = 1
MAX_FRAME = 64 * 1_048_576  # the hello frame carries the whole tensor table (~100k tensors fit)
HEADER = struct.Struct(">I")

MEMORY_KINDS = ("host", "cuda")
STATES = ("empty", "loaded")
OUTCOMES = ("verified", "failed")


# ---------------------------------------------------------------------------- framing


def encode_frame(msg: dict[str, Any]) -> bytes:
    """One frame: length prefix plus compact UTF-8 JSON. Raises ProtocolError if too large."""
    body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if not 1 <= len(body) <= MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes is outside 1..{MAX_FRAME}")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: feed bytes, get complete frame bodies (bytes).

    A length of 0 or above MAX_FRAME raises ProtocolError; the caller then answers `error`
    with SEEDCAST_ERR_PROTOCOL and closes the connection.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= 4:
            (n,) = HEADER.unpack_from(self._buf, 0)
            if n == 0 or n > MAX_FRAME:
                raise ProtocolError(f"frame length {n} is outside 1..{MAX_FRAME}")
            if len(self._buf) < 4 + n:
                break
            out.append(bytes(self._buf[4 : 4 + n]))
            del self._buf[: 4 + n]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def parse_body(body: bytes) -> Any:
    """Decode a frame body into a JSON value. Invalid UTF-8/JSON raises ValidationError
    (the frame boundary is intact, so the connection can continue)."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("frame", [f"(root): not UTF-8 JSON ({exc})"]) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# ---------------------------------------------------------------------------- field checks

Check = Callable[[Any, str, list], None]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def nonneg_int(x: Any, path: str, issues: list) -> None:
    if not _is_int(x) or x < 0:
        issues.append(f"{path}: expected a non-negative integer")


def pos_int(x: Any, path: str, issues: list) -> None:
    if not _is_int(x) or x < 1:
        issues.append(f"{path}: expected a positive integer")


def string(x: Any, path: str, issues: list) -> None:
    if not isinstance(x, str):
        issues.append(f"{path}: expected a string")


def nonempty_string(x: Any, path: str, issues: list) -> None:
    if not isinstance(x, str) or x == "":
        issues.append(f"{path}: expected a non-empty string")


def hex64(x: Any, path: str, issues: list) -> None:
    if not (isinstance(x, str) and len(x) == 64 and all(c in "0123456789abcdef" for c in x)):
        issues.append(f"{path}: expected 64 lowercase hex digits")


def one_of(*values: str) -> Check:
    def check(x: Any, path: str, issues: list) -> None:
        if x not in values:
            issues.append(f"{path}: expected one of {', '.join(values)}")

    return check


def array_of(item: Check, *, min_len: int = 0) -> Check:
    def check(x: Any, path: str, issues: list) -> None:
        if not isinstance(x, list):
            issues.append(f"{path}: expected an array")
            return
        if len(x) < min_len:
            issues.append(f"{path}: expected at least {min_len} item(s)")
        for i, v in enumerate(x):
            item(v, f"{path}[{i}]", issues)

    return check


def obj(fields: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    optional = optional or {}

    def check(x: Any, path: str, issues: list) -> None:
        if not isinstance(x, dict):
            issues.append(f"{path}: expected an object")
            return
        for k, f in fields.items():
            if k not in x:
                issues.append(f"{path}.{k}: required")
            else:
                f(x[k], f"{path}.{k}", issues)
        for k, f in optional.items():
            if k in x and x[k] is not None:
                f(x[k], f"{path}.{k}", issues)

    return check


FINGERPRINT_INPUTS = obj(
    {
        "engine": nonempty_string,
        "engineVersion": nonempty_string,
        "model": nonempty_string,
        "revision": nonempty_string,
        "tensorParallel": pos_int,
        "pipelineParallel": pos_int,
        "rank": nonneg_int,
        "dtype": nonempty_string,
        "quantization": nonempty_string,
    }
)

TENSOR = obj(
    {
        "name": nonempty_string,
        "dtype": nonempty_string,
        "shape": array_of(nonneg_int),
        "bytes": nonneg_int,
    }
)


def _slot(x: Any, path: str, issues: list) -> None:
    obj({"slot": nonneg_int, "kind": one_of(*MEMORY_KINDS), "bytes": pos_int})(x, path, issues)
    if isinstance(x, dict):
        if x.get("kind") == "host":
            nonempty_string(x.get("path"), f"{path}.path", issues)
        elif x.get("kind") == "cuda":
            nonneg_int(x.get("device"), f"{path}.device", issues)
            nonempty_string(x.get("ipcHandle"), f"{path}.ipcHandle", issues)


CAST_ROLES = ("send", "receive")
#: hello.direct: the engine can join the rank's communicator itself (direct casts).
DIRECT = obj({"transport": one_of("nccl")})


def CHECKSUM(x: Any, path: str, issues: list) -> None:
    if not isinstance(x, str) or re.fullmatch(r"[0-9]+:[0-9a-f]{16}", x) is None:
        issues.append(f"{path}: expected a sum32x2 checksum (<bytes>:<16 hex>)")


def STATS(x: Any, path: str, issues: list) -> None:
    if not isinstance(x, dict) or len(x) > 32:
        issues.append(f"{path}: expected an object of at most 32 numbers")
        return
    for k, v in x.items():
        if not isinstance(k, str) or len(k) > 64 or isinstance(v, bool) or not isinstance(v, (int, float)):
            issues.append(f"{path}.{k}: expected a number")
        elif v != v or v in (float("inf"), float("-inf")) or v < 0:
            issues.append(f"{path}.{k}: expected a finite non-negative number")


# Every message type, by who sends it. Each schema lists required fields beyond v/type.
# `id` is required on requests and replies; `error` may omit it.
SCHEMAS: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    # engine -> agent
    "hello": (
        {
            "id": nonneg_int,
            "rank": nonneg_int,
            "ranks": pos_int,
            "memory": one_of(*MEMORY_KINDS),
            "fingerprintInputs": FINGERPRINT_INPUTS,
            "tensors": array_of(TENSOR),
            "fingerprint": hex64,
            "state": one_of(*STATES),
        },
        {"device": nonneg_int, "direct": DIRECT},
    ),
    "cast-done": ({"id": nonneg_int, "bytes": nonneg_int, "checksums": array_of(CHECKSUM)}, {"stats": STATS}),
    "filled": ({"id": nonneg_int, "bucket": nonneg_int, "slot": nonneg_int, "bytes": nonneg_int}, {}),
    "drained": ({"id": nonneg_int, "bucket": nonneg_int}, {}),
    "loaded": ({"id": nonneg_int}, {}),
    "ack": ({"id": nonneg_int}, {}),
    # agent -> engine
    "welcome": (
        {
            "id": nonneg_int,
            "fingerprint": hex64,
            "bucketBytes": pos_int,
            "buckets": nonneg_int,
            "totalBytes": nonneg_int,
            "slots": array_of(_slot, min_len=1),
        },
        {},
    ),
    "fill": ({"id": nonneg_int, "bucket": nonneg_int, "slot": nonneg_int}, {}),
    "drain": ({"id": nonneg_int, "bucket": nonneg_int, "slot": nonneg_int}, {}),
    "load": ({"id": nonneg_int, "source": one_of("storage")}, {}),
    "complete": ({"id": nonneg_int, "outcome": one_of(*OUTCOMES)}, {"message": string}),
    "cast": (
        {
            "id": nonneg_int,
            "role": one_of(*CAST_ROLES),
            "uniqueId": nonempty_string,
            "commRank": nonneg_int,
            "nranks": pos_int,
            "initTimeoutMs": pos_int,
            "timeoutMs": pos_int,
        },
        {},
    ),
    "abort-cast": ({"id": nonneg_int}, {}),
    # either direction
    "error": ({"code": nonempty_string, "message": string}, {"id": nonneg_int}),
    "ping": ({"id": nonneg_int}, {}),
    "pong": ({"id": nonneg_int}, {}),
}

ENGINE_TO_AGENT = frozenset({"hello", "filled", "drained", "loaded", "cast-done", "ack", "error", "ping", "pong"})
AGENT_TO_ENGINE = frozenset(
    {"welcome", "fill", "drain", "load", "complete", "cast", "abort-cast", "error", "ping", "pong"}
)


def readable_id(msg: Any) -> int | None:
    if isinstance(msg, dict) and _is_int(msg.get("id")) and msg["id"] >= 0:
        return msg["id"]
    return None


def validate(msg: Any, allowed: frozenset[str] | None = None) -> dict[str, Any]:
    """Validate one decoded message; returns it or raises ValidationError (with msg_id)."""
    mid = readable_id(msg)
    if not isinstance(msg, dict):
        raise ValidationError("message", ["(root): expected an object"], mid)
    issues: list[str] = []
    if msg.get("v") != VERSION or isinstance(msg.get("v"), bool):
        issues.append(f"v: expected {VERSION}")
    t = msg.get("type")
    if not isinstance(t, str):
        issues.append("type: expected a string")
        raise ValidationError("message", issues, mid)
    if t not in SCHEMAS or (allowed is not None and t not in allowed):
        issues.append(f"type: unknown or unexpected message type {t!r}")
        raise ValidationError("message", issues, mid)
    required, optional = SCHEMAS[t]
    obj(required, optional)(msg, "", issues)
    if t == "hello" and not issues:
        _hello_rules(msg, issues)
    if issues:
        raise ValidationError(f"{t} message", [i.lstrip(".") for i in issues], mid)
    return msg


# Bytes per element of the dtypes whose size is fixed (the agent checks the same table).
DTYPE_BYTES = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1,
               "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}


def _hello_rules(h: dict[str, Any], issues: list) -> None:
    """Cross-field rules of `hello` (same as the agent's zod refinements)."""
    if h["rank"] >= h["ranks"]:
        issues.append(f"rank: {h['rank']} is not below ranks {h['ranks']}")
    fi = h["fingerprintInputs"]
    if fi["rank"] != h["rank"]:
        issues.append("fingerprintInputs.rank: must equal rank")
    if fi["tensorParallel"] * fi["pipelineParallel"] != h["ranks"]:
        issues.append(f"ranks: tensorParallel x pipelineParallel is {fi['tensorParallel'] * fi['pipelineParallel']}, not {h['ranks']}")
    if h["memory"] == "cuda" and h.get("device") is None:
        issues.append("device: required when memory is cuda")
    if not h["tensors"]:
        issues.append("tensors: expected at least 1 item(s)")
    for i, t in enumerate(h["tensors"]):
        size = DTYPE_BYTES.get(t["dtype"])
        if size is not None:
            n = size
            for d in t["shape"]:
                n *= d
            if n != t["bytes"]:
                issues.append(f"tensors[{i}].bytes: shape {t['shape']} of {t['dtype']} is {n} bytes, not {t['bytes']}")


def message(type_: str, **fields: Any) -> dict[str, Any]:
    """Build a message with `v` and `type` first (key order is irrelevant on the wire)."""
    out: dict[str, Any] = {"v": VERSION, "type": type_}
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def error_message(code: str, text: str, msg_id: int | None = None) -> dict[str, Any]:
    return message("error", id=msg_id, code=code, message=text[:1024])


def is_finite_number(x: Any) -> bool:  # pragma: no cover - helper kept for adapters
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
