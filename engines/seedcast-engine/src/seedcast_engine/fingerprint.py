"""Rank and pod fingerprints exactly as docs/bridge-protocol.md defines them.

`fingerprint = hex(sha256(canonicalJson(F)))` with
F = {engine, engineVersion, model, revision, tensorParallel, pipelineParallel, rank, dtype,
     quantization, tensors: [[name, dtype, [shape...], bytes], ...]}.

canonicalJson: keys sorted by UTF-16 code unit (JavaScript's default sort), no whitespace,
integers only, strings escaped the way JSON.stringify escapes them. Implemented here by hand
so the bytes match the Node side for every string, lone surrogates and astral characters
included (Python's `sort_keys` orders by code point, which differs above U+FFFF).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping, Sequence

FINGERPRINT_KEYS = (
    "engine",
    "engineVersion",
    "model",
    "revision",
    "tensorParallel",
    "pipelineParallel",
    "rank",
    "dtype",
    "quantization",
)

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _utf16_key(s: str) -> bytes:
    # Big-endian UTF-16 bytes compare like sequences of UTF-16 code units.
    return s.encode("utf-16-be", "surrogatepass")


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        cp = ord(ch)
        if cp < 0x20 or 0xD800 <= cp <= 0xDFFF:
            # control characters, and lone surrogates (well-formed JSON.stringify, ES2019)
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_json(value: Any) -> str:
    """Canonical JSON text of a value made of dicts, lists, strs, ints, bools and None."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        raise TypeError(f"canonical JSON carries integers only, got {value!r}")
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        keys = sorted(value.keys(), key=_utf16_key)
        return "{" + ",".join(_string(k) + ":" + canonical_json(value[k]) for k in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def canonical_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8", "surrogatepass")


def tensor_rows(tensors: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """[[name, dtype, [shape...], bytes], ...] in registration order."""
    return [[t["name"], t["dtype"], list(t["shape"]), t["bytes"]] for t in tensors]


def fingerprint_document(inputs: Mapping[str, Any], tensors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    missing = [k for k in FINGERPRINT_KEYS if k not in inputs]
    if missing:
        raise KeyError(f"fingerprint inputs lack {', '.join(missing)}")
    doc: dict[str, Any] = {k: inputs[k] for k in FINGERPRINT_KEYS}
    doc["tensors"] = tensor_rows(tensors)
    return doc


def rank_fingerprint(inputs: Mapping[str, Any], tensors: Sequence[Mapping[str, Any]]) -> str:
    return hashlib.sha256(canonical_bytes(fingerprint_document(inputs, tensors))).hexdigest()


def pod_fingerprint(rank_fingerprints: Sequence[str]) -> str:
    """hex(sha256(rankFp_0 + "," + rankFp_1 + ...)) over all ranks in rank order."""
    return hashlib.sha256(",".join(rank_fingerprints).encode("ascii")).hexdigest()
