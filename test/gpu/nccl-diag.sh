#!/usr/bin/env bash
# NCCL diagnosis for issue 11 (run ON the nvidia-h200-x2 machine):
#   run(kind "nvidia-h200-x2", command "bash test/gpu/nccl-diag.sh", carry [".carry", "native/build/Release"])
# The agent-only nccl transport microbenchmark (10.3 GB, 1 GiB buckets) under NCCL settings that
# could explain 60 GB/s between two agent processes where torch gets 370: NCCL's own choice (with
# its INIT/TUNING log), the Simple protocol only, and at least 24 CTAs (torch's channel count).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/seedcast-gpu-out}; mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
NODE=/tmp/seedcast-node/node
if [ ! -x "$NODE" ]; then
  mkdir -p /tmp/seedcast-node
  python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open('.carry/node.xz'), sys.stdout.buffer)" >"$NODE"; chmod +x "$NODE"
fi
[ -d node_modules/pino ] || tar xf .carry/agent-nm.tar
variant() {
  local name=$1; shift
  local B="$OUT/$name"; mkdir -p "$B"
  echo "=== $name: $*"
  env "$@" BENCH_CONFIGS=1024:2 CUDA_VISIBLE_DEVICES=0,1 NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,TUNING,ENV \
    timeout 60 "$NODE" test/gpu/nccl-agent-bench.ts seed "$B" >"$B/seed.log" 2>&1 &
  local S=$!
  env "$@" BENCH_CONFIGS=1024:2 CUDA_VISIBLE_DEVICES=1,0 timeout 60 "$NODE" test/gpu/nccl-agent-bench.ts receiver "$B" >"$B/receiver.log" 2>&1
  echo "receiver rc=$?"; wait $S; echo "seed rc=$?"
  grep -E "coll channels|Channel 0[0-3]/|via P2P|NCCL_|Algo|proto|Ring|Tree" "$B/seed.log" | cut -c1-160 | sort | uniq -c | head -14
  grep -vE "NCCL INFO" "$B/seed.log" | cut -c1-400 | tail -n 4
}
variant default NCCL_IGNORE_DUMMY=1
variant simple NCCL_PROTO=Simple
variant ctas24 NCCL_MIN_CTAS=24 NCCL_MAX_CTAS=32
variant p2pdirect NCCL_P2P_USE_CUDA_MEMCPY=0 NCCL_P2P_LEVEL=NVL NCCL_MIN_CTAS=24
tar czf "$OUT/diag.tgz" -C "$OUT" default simple ctas24 p2pdirect 2>/dev/null
echo "done $(date -u +%FT%TZ)"
