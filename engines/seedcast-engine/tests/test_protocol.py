import json
import struct

import pytest

from seedcast_engine.errors import ProtocolError, ValidationError
from seedcast_engine.protocol import (
    AGENT_TO_ENGINE,
    ENGINE_TO_AGENT,
    MAX_FRAME,
    FrameDecoder,
    encode_frame,
    message,
    parse_body,
    validate,
)


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def test_encode_decode_roundtrip_byte_by_byte():
    msgs = [message("ping", id=i) for i in range(5)]
    data = b"".join(encode_frame(m) for m in msgs)
    dec = FrameDecoder()
    out = []
    for b in data:
        out += dec.feed(bytes([b]))
    assert [json.loads(x) for x in out] == msgs
    assert dec.pending == 0


def test_length_prefix_is_big_endian_utf8():
    f = encode_frame(message("error", id=1, code="SEEDCAST_ERR_INVALID", message="ü"))
    (n,) = struct.unpack(">I", f[:4])
    assert n == len(f) - 4
    assert "ü" in f[4:].decode("utf-8")


def test_zero_length_frame_is_a_framing_error():
    with pytest.raises(ProtocolError) as e:
        FrameDecoder().feed(b"\0\0\0\0")
    assert e.value.code == "SEEDCAST_ERR_PROTOCOL"


def test_oversized_frame_is_a_framing_error_before_the_body_arrives():
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(struct.pack(">I", MAX_FRAME + 1))
    # exactly the limit is fine
    assert FrameDecoder().feed(struct.pack(">I", MAX_FRAME)) == []


def test_encode_refuses_oversized():
    with pytest.raises(ProtocolError):
        encode_frame(message("error", code="X", message="x" * MAX_FRAME))


def test_invalid_json_is_a_validation_error():
    with pytest.raises(ValidationError):
        parse_body(b"{not json")
    with pytest.raises(ValidationError):
        parse_body(b"\xff\xfe")
    with pytest.raises(ValidationError):
        parse_body(b'{"v":NaN}')


@pytest.mark.parametrize(
    "msg,issue",
    [
        ({"v": 2, "type": "ping", "id": 1}, "v: expected 1"),
        ({"v": True, "type": "ping", "id": 1}, "v: expected 1"),
        ({"v": 1, "type": "bogus", "id": 3}, "unknown or unexpected message type"),
        ({"v": 1, "type": "fill", "id": 3, "bucket": -1, "slot": 0}, "bucket: expected a non-negative integer"),
        ({"v": 1, "type": "fill", "id": 3, "bucket": 1.5, "slot": 0}, "bucket: expected a non-negative integer"),
        ({"v": 1, "type": "fill", "id": 3, "slot": 0}, "bucket: required"),
        ({"v": 1, "type": "drain", "id": "7", "bucket": 0, "slot": 0}, "id: expected a non-negative integer"),
        ({"v": 1, "type": "complete", "id": 3, "outcome": "maybe"}, "outcome: expected one of verified, failed"),
        ({"v": 1, "type": "load", "id": 3, "source": "s3"}, "source: expected one of storage"),
        ({"v": 1, "type": "welcome", "id": 1, "fingerprint": "ab", "bucketBytes": 8, "buckets": 1, "totalBytes": 8, "slots": []},
         "fingerprint: expected 64 lowercase hex digits"),
        ({"v": 1, "type": "welcome", "id": 1, "fingerprint": "a" * 64, "bucketBytes": 8, "buckets": 1, "totalBytes": 8,
          "slots": [{"slot": 0, "kind": "cuda", "bytes": 8}]}, "slots[0].device"),
        ({"v": 1, "type": "welcome", "id": 1, "fingerprint": "a" * 64, "bucketBytes": 8, "buckets": 1, "totalBytes": 8,
          "slots": [{"slot": 0, "kind": "host", "bytes": 8}]}, "slots[0].path"),
    ],
)
def test_validation_names_the_field(msg, issue):
    with pytest.raises(ValidationError) as e:
        validate(msg, AGENT_TO_ENGINE)
    assert issue in e.value.message
    assert e.value.code == "SEEDCAST_ERR_INVALID"
    if isinstance(msg.get("id"), int):
        assert e.value.msg_id == msg["id"]


def test_direction_is_enforced():
    with pytest.raises(ValidationError):
        validate(message("fill", id=1, bucket=0, slot=0), ENGINE_TO_AGENT)
    with pytest.raises(ValidationError):
        validate(message("filled", id=1, bucket=0, slot=0, bytes=1), AGENT_TO_ENGINE)


def test_unknown_fields_are_tolerated():
    m = validate({"v": 1, "type": "ping", "id": 4, "extra": {"x": 1}}, AGENT_TO_ENGINE)
    assert m["id"] == 4


def test_hello_schema():
    hello = message(
        "hello", id=1, rank=0, ranks=2, memory="cuda", device=0,
        fingerprintInputs={"engine": "vllm", "engineVersion": "0.11.0", "model": "m", "revision": "main",
                           "tensorParallel": 2, "pipelineParallel": 1, "rank": 0, "dtype": "bfloat16", "quantization": "none"},
        tensors=[{"name": "w", "dtype": "bfloat16", "shape": [2, 2], "bytes": 8}],
        fingerprint="0" * 64, state="empty",
    )
    assert validate(hello, ENGINE_TO_AGENT) is hello
    bad = json.loads(json.dumps(hello))
    bad["tensors"][0]["shape"] = [2, "2"]
    del bad["fingerprintInputs"]["revision"]
    with pytest.raises(ValidationError) as e:
        validate(bad, ENGINE_TO_AGENT)
    assert "fingerprintInputs.revision: required" in e.value.message
    assert "tensors[0].shape[1]" in e.value.message


def test_hello_cross_field_rules_match_the_agent():
    from seedcast_engine.shim import Shim, table_entry
    from seedcast_engine.copy import BytesCopier

    inputs = {"engine": "e", "engineVersion": "1", "model": "m", "revision": "r", "tensorParallel": 2,
              "pipelineParallel": 1, "rank": 1, "dtype": "bfloat16", "quantization": "none"}
    good = Shim([table_entry("w", "bfloat16", [2, 2], 8)], inputs, BytesCopier([bytearray(8)]), rank=1, ranks=2)
    assert good.hello()["rank"] == 1
    for kw, table, issue in [
        ({"rank": 0, "ranks": 2}, [table_entry("w", "bfloat16", [2, 2], 8)], "fingerprintInputs.rank"),
        ({"rank": 1, "ranks": 3}, [table_entry("w", "bfloat16", [2, 2], 8)], "ranks: tensorParallel"),
        ({"rank": 1, "ranks": 2}, [table_entry("w", "bfloat16", [2, 2], 9)], "tensors[0].bytes"),
        ({"rank": 1, "ranks": 2}, [], "tensors: expected at least 1"),
    ]:
        shim = Shim(table, inputs, BytesCopier([bytearray(t["bytes"]) for t in table]), **kw)
        with pytest.raises(ValidationError) as e:
            shim.hello()
        assert issue in e.value.message
    # packed/quantised dtypes of unknown element size are not checked
    Shim([table_entry("q", "int4x2", [4], 2)], inputs, BytesCopier([bytearray(2)]), rank=1, ranks=2).hello()
