import json
import os
import shutil
import subprocess

import pytest

from seedcast_engine.fingerprint import canonical_json, fingerprint_document, pod_fingerprint, rank_fingerprint
from seedcast_engine.plan import BucketPlan, sum32x2

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = json.load(open(os.path.join(HERE, "vectors.json"), encoding="utf-8"))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


@pytest.mark.parametrize("case", VECTORS["fingerprint"], ids=lambda c: c["name"])
def test_rank_fingerprint(case):
    assert canonical_json(fingerprint_document(case["inputs"], case["tensors"])) == case["canonical"]
    assert rank_fingerprint(case["inputs"], case["tensors"]) == case["sha256"]


@pytest.mark.parametrize("case", VECTORS["canonicalJson"], ids=lambda c: c["name"])
def test_canonical_json(case):
    assert canonical_json(case["value"]) == case["canonical"]


def test_canonical_json_matches_python_json_for_protocol_content():
    # the protocol page promises json.dumps(sort_keys, compact, ensure_ascii=False) gives the
    # same bytes for fingerprint content (BMP keys): keep that true
    for case in VECTORS["fingerprint"]:
        doc = fingerprint_document(case["inputs"], case["tensors"])
        assert canonical_json(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_canonical_json_utf16_order_and_lone_surrogate():
    assert canonical_json({"\uffff": 1, "\U0001F600": 2}) == '{"\U0001F600":2,"\uffff":1}'
    assert canonical_json("\ud800") == '"\\ud800"'
    assert canonical_json("\x7f\u2028") == '"\x7f\u2028"'
    with pytest.raises(TypeError):
        canonical_json(1.5)


def test_fingerprint_changes_with_every_input():
    base = VECTORS["fingerprint"][0]
    fp = rank_fingerprint(base["inputs"], base["tensors"])
    for key in base["inputs"]:
        changed = dict(base["inputs"])
        changed[key] = changed[key] + 1 if isinstance(changed[key], int) else changed[key] + "x"
        assert rank_fingerprint(changed, base["tensors"]) != fp, key
    t = [dict(x) for x in base["tensors"]]
    t[0]["shape"] = [t[0]["shape"][1], t[0]["shape"][0]]
    assert rank_fingerprint(base["inputs"], t) != fp


@pytest.mark.parametrize("case", VECTORS["podFingerprint"], ids=lambda c: c["name"])
def test_pod_fingerprint(case):
    assert pod_fingerprint(case["ranks"]) == case["sha256"]


@pytest.mark.parametrize("case", VECTORS["bucketPlan"], ids=lambda c: c["name"])
def test_bucket_plan(case):
    p = BucketPlan(case["sizes"], case["bucketBytes"])
    assert p.total_bytes == case["totalBytes"]
    assert p.buckets == case["buckets"]
    got = [[[s.tensor, s.tensor_offset, s.slot_offset, s.length] for s in p.segments(k)] for k in range(p.buckets)]
    assert got == case["segments"]


@pytest.mark.parametrize("case", VECTORS["sum32x2"], ids=lambda c: c["name"])
def test_sum32x2(case):
    assert sum32x2(bytes.fromhex(case["hex"])) == case["checksum"]


def _node():
    for cand in (os.path.join(REPO, "node_modules", ".bin", "node"), shutil.which("node")):
        if cand and os.path.exists(cand):
            return cand
    return None


def test_vectors_agree_with_node():
    node = _node()
    if node is None:
        pytest.skip("no node binary (npm ci installs one under node_modules/.bin)")
    out = subprocess.run([node, os.path.join(HERE, "check_vectors.mjs")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout


@pytest.mark.parametrize("case", VECTORS["sum32x2"], ids=lambda c: c["name"])
def test_sum32x2_pure_python(case, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "numpy", None)  # force the fallback
    assert sum32x2(bytes.fromhex(case["hex"])) == case["checksum"]
