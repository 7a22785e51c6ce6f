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
  for v in "$@"; do
    case $v in
      default) one default NCCL_IGNORE_DUMMY=1 ;;
      blocking) one blocking SEEDCAST_NCCL_BLOCKING=1 ;;
      noring) BENCH_CONFIGS=1024:0 one noring NCCL_IGNORE_DUMMY=1 ;;
      simple) one simple NCCL_PROTO=Simple ;;
      ctas24) one ctas24 NCCL_MIN_CTAS=24 NCCL_MAX_CTAS=32 ;;
    esac
  done
}
one() {
  local name=$1; shift
  local B="$OUT/$name"; mkdir -p "$B"
  echo "=== $name: $*"
  env "$@" BENCH_CONFIGS=${BENCH_CONFIGS:-1024:2} CUDA_VISIBLE_DEVICES=0,1 NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,TUNING,ENV \
    timeout 60 "$NODE" test/gpu/nccl-agent-bench.ts seed "$B" >"$B/seed.log" 2>&1 &
  local S=$!
  env "$@" BENCH_CONFIGS=${BENCH_CONFIGS:-1024:2} CUDA_VISIBLE_DEVICES=1,0 timeout 60 "$NODE" test/gpu/nccl-agent-bench.ts receiver "$B" >"$B/receiver.log" 2>&1
  echo "receiver rc=$?"; wait $S; echo "seed rc=$?"
  grep -E "coll channels|Channel 0[0-3]/|via P2P|NCCL_|Algo|proto|Ring|Tree" "$B/seed.log" | cut -c1-160 | sort | uniq -c | head -14
  grep -vE "NCCL INFO" "$B/seed.log" | cut -c1-400 | tail -n 4
}
# Run 5 ruled out NCCL's protocol, CTA count and P2P settings (bench/results/nccl-diag-h200x2).
# Run 6: the communicator mode and the wire ring's concurrent copies.
variant ${VARIANTS:-default blocking noring}
tar czf "$OUT/diag.tgz" -C "$OUT" . 2>/dev/null
echo "done $(date -u +%FT%TZ)"
