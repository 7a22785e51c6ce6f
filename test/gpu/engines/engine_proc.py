"""One engine process of the GPU demo: a real transformers model built from a config (random
weights with a fixed seed, no download) on one GPU, with the seedcast shim attached.

  seed:      real weights (seed 1234) -> shim state "loaded" -> greedy generate -> serve fills
  receiver:  dummy weights (seed 999) -> shim state "empty" -> wait for verified weights ->
             greedy generate -> compare with the seed's result file
  mismatch:  a receiver whose config differs (one more layer): must be refused by fingerprint

Writes <out>/<role>.json with tokens, logits digest, timings, memory and copy statistics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engines", "seedcast-engine", "src"))

import torch  # noqa: E402

from seedcast_engine.errors import SeedcastError  # noqa: E402
from seedcast_engine.torch_shim import TorchShim, fingerprint_inputs  # noqa: E402

PROMPT = [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889, 13, 1576, 338]


def build_config(arch: str, extra_layer: bool = False):
    import transformers

    if arch == "llama":
        cfg = transformers.LlamaConfig(
            vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=16 + int(extra_layer),
            num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=4096, rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        )
    elif arch == "qwen-moe":
        cfg = transformers.Qwen2MoeConfig(
            vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=12 + int(extra_layer),
            num_attention_heads=16, num_key_value_heads=8, num_experts=16, num_experts_per_tok=4,
            moe_intermediate_size=1024, shared_expert_intermediate_size=2048, max_position_embeddings=4096,
            tie_word_embeddings=False,
        )
    elif arch == "llama-10g":
        # ~10.3 GB of bf16 parameters in 3891 tensors (432 thin layers): the NCCL run (issue 11).
        cfg = transformers.LlamaConfig(
            vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=432 + int(extra_layer),
            num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=4096, rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        )
    else:
        raise SystemExit(f"unknown arch {arch}")
    return cfg


def build_model(arch: str, seed: int, extra_layer: bool = False):
    import transformers

    torch.manual_seed(seed)
    cfg = build_config(arch, extra_layer)
    with torch.device("cuda"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="eager")
        except TypeError:
            model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="eager")
    return model.eval()


@torch.no_grad()
def generate(model, steps: int = 24):
    ids = torch.tensor([PROMPT], device="cuda")
    out, logits_all = [], []
    for _ in range(steps):  # plain greedy loop, no cache: identical work on both sides
        logits = model(ids).logits[:, -1, :].float()
        logits_all.append(logits.cpu())
        nxt = logits.argmax(-1, keepdim=True)
        out.append(int(nxt))
        ids = torch.cat([ids, nxt], dim=1)
    lg = torch.cat(logits_all)
    return out, lg


def weights_digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        flat = t.detach().contiguous().reshape(-1).view(torch.uint8)
        for i in range(0, flat.numel(), 256 << 20):
            h.update(flat[i : i + (256 << 20)].cpu().numpy().tobytes())
    return h.hexdigest()


def weights_digest_gpu(tensors) -> str:
    """sha256 over per-tensor (sum, index-weighted sum) of int32 words, computed on the GPU (fast for 10 GB)."""
    h = hashlib.sha256()
    for t in tensors:
        flat = t.detach().contiguous().reshape(-1).view(torch.uint8)
        pad = (-flat.numel()) % 4
        if pad:
            flat = torch.cat([flat, torch.zeros(pad, dtype=torch.uint8, device=flat.device)])
        w = flat.view(torch.int32).to(torch.int64)
        idx = torch.arange(1, w.numel() + 1, device=w.device, dtype=torch.int64)
        h.update(f"{int(w.sum())}:{int((w * idx).sum())};".encode())
        del w, idx
    return h.hexdigest()


def stats_dumper(shim, path, res):
    """Seed: rewrite the copy statistics every 0.5 s while serving (the process is killed at the end)."""
    import threading

    def loop():
        while True:
            try:
                out = dict(res, copy=shim.copier.stats.as_dict(), torch_max_allocated=torch.cuda.max_memory_allocated(),
                           last_cast=shim.last_cast and {"stats": shim.last_cast["stats"]})
                with open(path + ".tmp", "w") as f:
                    json.dump(out, f, indent=1)
                os.replace(path + ".tmp", path)
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True).start()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["seed", "receiver", "mismatch"])
    ap.add_argument("--arch", default="llama")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--memory", default="cuda", choices=["cuda", "host"])
    ap.add_argument("--tag", default=None, help="result file prefix (default: the arch)")
    ap.add_argument("--shared", default=None, help="folder for the seed's logits (default: the socket's folder)")
    ap.add_argument("--digest", default="sha256", choices=["sha256", "gpu"])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--device", type=int, default=None, help="CUDA device to build on (default: the current one)")
    ap.add_argument("--drain-delay", type=float, default=0.0, help="receiver: sleep per drained bucket (kill tests)")
    args = ap.parse_args()
    tag = args.tag or args.arch
    shared = args.shared or os.path.dirname(args.socket)
    digest = weights_digest_gpu if args.digest == "gpu" else weights_digest
    if args.device is not None:
        torch.cuda.set_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    import transformers

    res: dict = {"role": args.role, "arch": args.arch, "pid": os.getpid()}
    t0 = time.perf_counter()
    model = build_model(args.arch, 1234 if args.role == "seed" else 999, extra_layer=args.role == "mismatch")
    torch.cuda.synchronize()
    res["build_s"] = time.perf_counter() - t0
    res["param_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
    res["torch_allocated_before"] = torch.cuda.memory_allocated()
    inputs = fingerprint_inputs(engine="transformers", engine_version=transformers.__version__,
                                model=f"seedcast-test/{args.arch}-random", revision="seed-1234", dtype="bfloat16")
    shim = TorchShim(model, inputs, memory=args.memory, state="loaded" if args.role == "seed" else "empty",
                     socket=args.socket)
    res["tensors"] = len(shim.table)
    if args.drain_delay > 0:
        copier_drain = shim.copier.drain

        def slow_drain(plan, k, slot):
            time.sleep(args.drain_delay)
            return copier_drain(plan, k, slot)

        shim.copier.drain = slow_drain
        if shim.caster is not None:  # direct casts: stall each broadcast after the second instead
            cast_broadcast, calls = shim.caster._broadcast, [0]

            def slow_broadcast(comm, ptr, nbytes, deadline):
                calls[0] += 1
                if calls[0] > 3:  # the connect broadcast, then buckets 0 and 1
                    time.sleep(args.drain_delay)
                return cast_broadcast(comm, ptr, nbytes, deadline)

            shim.caster._broadcast = slow_broadcast
    res["direct"] = shim.caster is not None
    res["table_bytes"] = sum(t["bytes"] for t in shim.table)
    res["fingerprint"] = shim.fingerprint
    if args.role == "seed":
        tg = time.perf_counter()
        res["tokens"], logits = generate(model, args.steps)
        res["generate_s"] = time.perf_counter() - tg
        torch.save(logits, os.path.join(shared, f"{tag}-seed-logits.pt"))
        res["weights_sha256"] = digest(shim.copier.tensors)
    free0 = torch.cuda.mem_get_info()[0]
    try:
        welcome = shim.connect(timeout=120)
    except SeedcastError as exc:
        res.update(refused=True, code=exc.code, message=exc.message, copy=shim.copier.stats.as_dict())
        json.dump(res, open(os.path.join(args.out, f"{tag}-{args.role}.json"), "w"), indent=1)
        print(json.dumps({"role": args.role, "refused": exc.code}), flush=True)
        return 0
    res["buckets"], res["bucket_bytes"] = welcome["buckets"], welcome["bucketBytes"]
    res["mapped_slot_bytes"] = sum(s["bytes"] for s in welcome["slots"])
    res["torch_allocated_after_connect"] = torch.cuda.memory_allocated()
    res["device_free_delta_connect"] = free0 - torch.cuda.mem_get_info()[0]
    print(json.dumps({"role": args.role, "registered": shim.fingerprint}), flush=True)
    if args.role == "seed":
        json.dump(res, open(os.path.join(args.out, f"{tag}-seed.json"), "w"), indent=1)
        stats_dumper(shim, os.path.join(args.out, f"{tag}-seed-live.json"), res)
        shim.serve_forever()  # until the agent closes the connection
        res["copy"] = shim.copier.stats.as_dict()
        res["torch_max_allocated"] = torch.cuda.max_memory_allocated()
        json.dump(res, open(os.path.join(args.out, f"{tag}-seed.json"), "w"), indent=1)
        shim.close()
        return 0
    t1 = time.perf_counter()
    shim.wait_ready(timeout=600)
    res["wait_s"] = time.perf_counter() - t1
    tl = shim.timeline
    res["drain_window_s"] = tl.get("last_drain", 0) - tl.get("first_drain", 0)
    res["copy"] = shim.copier.stats.as_dict()
    res["last_cast"] = shim.last_cast and {"stats": shim.last_cast["stats"]}
    if shim.caster is not None and shim.last_cast:
        res["last_cast"]["teardownMs"] = shim.caster.wait_teardown(60)
    res["cast_warm_s"] = shim.timeline.get("cast_warm_s")
    res["torch_max_allocated"] = torch.cuda.max_memory_allocated()
    res["weights_sha256"] = digest(shim.copier.tensors)
    res["tokens"], logits = generate(model, args.steps)
    seed_logits = torch.load(os.path.join(shared, f"{tag}-seed-logits.pt"))
    res["logits_equal"] = bool(torch.equal(seed_logits, logits))
    res["logits_max_abs_diff"] = float((seed_logits - logits).abs().max())
    shim.close()
    json.dump(res, open(os.path.join(args.out, f"{tag}-{args.role}.json"), "w"), indent=1)
    print(json.dumps({"role": "receiver", "ready": True, "logits_equal": res["logits_equal"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
