#!/usr/bin/env bash
# Node agents on the GPU (issues 7 and 11), run ON the lent nvidia-h200-x2 machine in one call:
#   run(kind "nvidia-h200-x2", command "bash test/gpu/run-agents.sh",
#       carry [".carry", "native/build/Release"])
#   PART=nccl bash test/gpu/run-agents.sh: issue 11's bandwidth only (agent-only microbenchmark,
#   issue 11 end to end, torch references), ~3-5 minutes.
#   PART=direct: issue 11 with direct casts (the engines join the communicator, ADR 0002): two engines
#   alone (test/gpu/direct_pair.py), issue 11 end to end per I11_RUNS ("direct:256Mi agents:256Mi"
#   by default; "none" skips), the torch references. ~2 minutes. Start here next time.
#   PART=pair: the addon's own two-process broadcast (no agent) under three device layouts, and
#   torch's, ~2 minutes — run this first next time (docs/notes.md, Next 1).
# Prepare: npm run build:native; .carry/node.xz as in docs/native.md; and the agent's dependencies:
#   tar cf .carry/agent-nm.tar node_modules/{zod,pino,@pinojs/redact,atomic-sleep,on-exit-leak-free,\
#     pino-abstract-transport,pino-std-serializers,process-warning,quick-format-unescaped,real-require,\
#     safe-stable-stringify,sonic-boom,split2,thread-stream,undici,yaml}
# 1. issue 7: tcp over cuda, seed + receiver + mismatched receiver on one GPU (llama on GPU 0 and
#    qwen-moe on GPU 1 at the same time, each pair on its own GPU);
# 2. issue 11: nccl GPU 0 → GPU 1 with a ~10 GB, 3891-tensor model: a receiver killed
#    mid-broadcast, then a real receiver from the same seed agent;
# 3. the PyTorch references (flat / sliced / per-tensor torch.distributed.broadcast).
# Each step is time-boxed and isolated; results land in $OUT/*.json, the log in $OUT/log.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/seedcast-gpu-out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
{
NODE_DIR=/tmp/seedcast-node
NODE=$NODE_DIR/node
if [ ! -x "$NODE" ]; then
  mkdir -p "$NODE_DIR"
  if command -v xz >/dev/null; then xz -dc .carry/node.xz >"$NODE"
  else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open('.carry/node.xz'), sys.stdout.buffer)" >"$NODE"; fi
  chmod +x "$NODE"
fi
# The agent's npm dependencies (pino, zod and theirs), packed here: see the carry line above.
[ -d node_modules/yaml ] || tar xf .carry/agent-nm.tar
echo "node $($NODE --version) $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"
nvidia-smi topo -m 2>&1 | head -5
# The working tree may hold other engineers' half-done edits: fall back to HEAD for those.
check() { timeout 30 "$NODE" --input-type=module -e "await import('./src/agent/agent.ts'); await import('./src/agent/memory/cuda-setup.ts'); await import('./src/cli/agent.ts')"; }
# (test/gpu/.fallback.tar: committed versions of files others were editing, made just before the call.)
if [ -f test/gpu/.fallback.tar ]; then echo "using committed versions of $(tar tf test/gpu/.fallback.tar | grep -v '/$' | tr '\n' ' ')"; tar xf test/gpu/.fallback.tar; fi
check && echo "agent loads" || echo "AGENT DOES NOT LOAD"
if [ "${PART:-all}" = pair ]; then
  # issue 11, narrowed (next step of docs/notes.md): the addon's own two-process broadcast, no
  # agent or transport (test/gpu/nccl-addon-pair.ts), 1 GiB x 10, under three device layouts, then
  # the same call's torch reference. Fast (~1-2 min): if this pair is slow, the addon is the cause.
  pair() {
    local name=$1 seedVis=$2 seedDev=$3 recvVis=$4 recvDev=$5; shift 5
    local B="$OUT/pair-$name"; mkdir -p "$B"; rm -f "$B/id.json"
    echo "=== pair $name: seed CUDA_VISIBLE_DEVICES=$seedVis dev $seedDev, receiver $recvVis dev $recvDev $*"
    env "$@" CUDA_VISIBLE_DEVICES=$seedVis timeout 60 "$NODE" test/gpu/nccl-addon-pair.ts seed "$B" "$seedDev" >"$B/seed.log" 2>&1 &
    local S=$!
    env "$@" CUDA_VISIBLE_DEVICES=$recvVis timeout 60 "$NODE" test/gpu/nccl-addon-pair.ts receiver "$B" "$recvDev" >"$B/receiver.log" 2>&1
    echo "receiver rc=$?"; wait $S; echo "seed rc=$?"
    tail -c 600 "$B/seed.log"; echo; tail -c 600 "$B/receiver.log"; echo
  }
  # Run 7 found the gap: NCCL connects lazily, in the first broadcast (~100+ ms). Without the
  # connect broadcast (PAIR_CONNECT=0) the first warm-up call pays it; with it, init does.
  pair lazy 0,1 0 1,0 0 PAIR_CONNECT=0
  pair connected 0,1 0 1,0 0 PAIR_CONNECT=1
  echo "=== torch.distributed references"
  timeout 75 python3 test/gpu/nccl_baseline.py "$OUT/nccl-baseline.json" >"$OUT/baseline.log" 2>&1
  echo "baseline rc=$?"; tail -c 1200 "$OUT/baseline.log"
  echo "done $(date -u +%FT%TZ)"
  exit 0
fi
if [ "${PART:-all}" = transport ]; then
  # issue 5 on a many-core host (docs/notes.md, Next 2): the tcp transport bench, 2 GiB per rank,
  # agents alone (null engine) and with the CPU fixture engines, plain socket copy baseline.
  # TRANSPORT_CHECKSUMS: the receivers' SEEDCAST_TCP_RECEIVE_CHECKSUM settings to compare.
  nproc
  for e in ${TRANSPORT_ENGINES:-null fixture}; do
    for c in ${TRANSPORT_CHECKSUMS:-auto}; do
      echo "=== transport, engine $e, receive checksum $c"
      SEEDCAST_TCP_RECEIVE_CHECKSUM=$c timeout 240 "$NODE" bench/run.ts transport --size 2GiB --engine "$e" --rounds 3 --json "$OUT/transport-2g-$e-$c.json" 2>&1 | grep -v "^  peak RSS\|^  CPU per GB, .*-engine"
    done
  done
  echo "done $(date -u +%FT%TZ)"
  exit 0
fi
if [ "${PART:-all}" = scaleout ]; then
  # issue 9 on a many-core host: the scale-out bench (dev cluster + controller + agents + fixture
  # engines) where each pod's processes get cores of their own. The host has no Go toolchain and
  # no network: the dev-cluster binaries and the full runtime node_modules come packed in
  # .cache/devbins/ (b1-b3.tar.xz: the binaries under their cache names; nm.tar.xz), carried over
  # several calls since one call carries 64 MiB (an ignored path not named in a later call's carry
  # stays on the warm machine). PART=scaleout-unpack only unpacks what has arrived.
  export SEEDCAST_CACHE=/tmp/seedcast-cache
  mkdir -p "$SEEDCAST_CACHE/bin"
  for f in .cache/devbins/b*.tar.xz; do [ -f "$f" ] && tar xJf "$f" -C "$SEEDCAST_CACHE/bin"; done
  [ -f .cache/devbins/nm.tar.xz ] && [ ! -d node_modules/@kubernetes/client-node ] && tar xJf .cache/devbins/nm.tar.xz
  ls "$SEEDCAST_CACHE/bin"; nproc; free -g | head -2
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm; do
    ls "$SEEDCAST_CACHE/bin/$b"-* >/dev/null 2>&1 || { echo "missing $b"; MISSING=1; }
  done
  if [ -z "${MISSING:-}" ]; then
    timeout 420 "$NODE" bench/run.ts scale-out --sizes "${SCALE_SIZES:-1,4,16}" --json "$OUT/scale-out-16core.json" >"$OUT/scale-out.log" 2>&1
    grep -v '^{' "$OUT/scale-out.log" | tail -n 8
    # With SEEDCAST_KEEP_POD_DIRS=1: every pod's container logs, for a timeline of its start.
    for d in $(sed -n 's/^  pod logs kept in //p' "$OUT/scale-out.log"); do
      tar czf "$OUT/pods-$(basename "$d").tgz" -C "$d" . 2>/dev/null
    done
  fi
  echo "done $(date -u +%FT%TZ)"
  exit 0
fi
if [ "${PART:-all}" = contend ]; then
  # issue 11, the end-to-end gap: the engine's copy kernels and the agent's NCCL kernels live in
  # two processes (two CUDA contexts) on one GPU, which the GPU time-slices unless MPS runs.
  # (1) the shim's copier alone; (2) the same while the addon's pair broadcasts on GPU 0 -> 1;
  # (3) both again under MPS when the machine has it.
  contend() {
    local tag=$1
    CUDA_VISIBLE_DEVICES=0 timeout 120 python3 test/gpu/copier_check.py "$OUT/copier-$tag-alone.json" >"$OUT/copier-$tag-alone.log" 2>&1
    echo "copier alone ($tag) rc=$?"; python3 -c "import json;d=json.load(open('$OUT/copier-$tag-alone.json'));print(d['batched_prepared'])"
    local B="$OUT/pair-$tag"; mkdir -p "$B"; rm -f "$B/id.json"
    CUDA_VISIBLE_DEVICES=0,1 timeout 120 "$NODE" test/gpu/nccl-addon-pair.ts seed "$B" 0 1073741824 2500 >"$B/seed.log" 2>&1 &
    local S=$!
    CUDA_VISIBLE_DEVICES=1,0 timeout 120 "$NODE" test/gpu/nccl-addon-pair.ts receiver "$B" 0 1073741824 2500 >"$B/receiver.log" 2>&1 &
    local R=$!
    sleep 4
    CUDA_VISIBLE_DEVICES=0 timeout 120 python3 test/gpu/copier_check.py "$OUT/copier-$tag-contended.json" >"$OUT/copier-$tag-contended.log" 2>&1
    echo "copier beside the broadcasts ($tag) rc=$?"; python3 -c "import json;d=json.load(open('$OUT/copier-$tag-contended.json'));print(d['batched_prepared'])"
    kill $S $R 2>/dev/null; wait $S $R 2>/dev/null
  }
  contend nomps
  if command -v nvidia-cuda-mps-control >/dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
    mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
    if nvidia-cuda-mps-control -d; then
      sleep 1; echo "MPS started"
      contend mps
      mkdir -p "$OUT/i11-mps"
      timeout 150 python3 test/gpu/node_agents.py issue11 --all-visible --bucket 256Mi --node "$NODE" --out "$OUT/i11-mps" --step-ms 20000 --steps 8 >"$OUT/i11-mps/i11v.log" 2>&1
      echo "issue 11 under MPS rc=$?"; tail -c 600 "$OUT/i11-mps/i11v.log"
      echo quit | nvidia-cuda-mps-control
    else echo "MPS did not start"; fi
  else echo "no nvidia-cuda-mps-control here"; fi
  echo "done $(date -u +%FT%TZ)"
  exit 0
fi
if [ "${PART:-all}" = direct ]; then
  # issue 11 with direct casts (ADR 0002): (a) two engines alone (test/gpu/direct_pair.py: bytes,
  # GPU checksum vs CPU, cold/warm casts), (b) issue 11 end to end with direct casts (the default)
  # and (c) with the agents broadcasting (SEEDCAST_NCCL_DIRECT=0), (d) the torch references: all
  # in one call so the ratios share a baseline. ~6-8 minutes.
  B="$OUT/pair-direct"; mkdir -p "$B"
  echo "=== two engines, direct casts, no agent"
  CUDA_VISIBLE_DEVICES=0,1 timeout 120 python3 test/gpu/direct_pair.py seed "$B" >"$B/seed.log" 2>&1 &
  S=$!
  CUDA_VISIBLE_DEVICES=1,0 timeout 120 python3 test/gpu/direct_pair.py receiver "$B" >"$B/receiver.log" 2>&1
  echo "receiver rc=$?"; wait $S; echo "seed rc=$?"
  tail -c 1500 "$B/seed.log"; echo; tail -c 1500 "$B/receiver.log"; echo
  # I11_RUNS: mode:bucket pairs (direct = the engines cast, agents = SEEDCAST_NCCL_DIRECT=0).
  for run in ${I11_RUNS:-direct:256Mi agents:256Mi}; do
    [ "$run" = none ] && continue
    mode=${run%%:*}; size=${run#*:}; name=$mode-$size
    echo "=== issue 11 end to end, $mode, bucket $size"
    mkdir -p "$OUT/i11-$name"
    if [ $mode = agents ]; then extra=SEEDCAST_NCCL_DIRECT=0; else extra=SEEDCAST_NCCL_DIRECT=1; fi
    env $extra timeout 170 python3 test/gpu/node_agents.py issue11 --all-visible --bucket "$size" --node "$NODE" --out "$OUT/i11-$name" --step-ms 20000 --steps 8 >"$OUT/i11-$name/i11v.log" 2>&1
    echo "rc=$?"; tail -c 3000 "$OUT/i11-$name/i11v.log"
    mkdir -p "$OUT/i11-$name/logs"; for f in /tmp/sc11-*/*.log; do [ -f "$f" ] && tail -c 40000 "$f" >"$OUT/i11-$name/logs/$(basename "$(dirname "$f")")-$(basename "$f")"; done
    rm -rf /tmp/sc11-*
  done
  echo "=== torch.distributed references"
  timeout 75 python3 test/gpu/nccl_baseline.py "$OUT/nccl-baseline.json" >"$OUT/baseline.log" 2>&1
  echo "baseline rc=$?"; tail -c 1200 "$OUT/baseline.log"
  echo "done $(date -u +%FT%TZ)"
  exit 0
fi
if [ "${PART:-all}" = nccl ]; then
  # issue 11's bandwidth only: (a) the agent-only microbenchmark (NcclTransport between two Node
  # processes, pre-filled slots, no engine), (b) issue 11 end to end with the wire ring, (c) the
  # torch references. Every step time-boxed; the whole part stays under ~5 minutes.
  echo "=== agent-only nccl transport microbenchmark (no engine)"
  B="$OUT/bench"; mkdir -p "$B"
  CUDA_VISIBLE_DEVICES=0,1 timeout 90 "$NODE" test/gpu/nccl-agent-bench.ts seed "$B" >"$B/seed.log" 2>&1 &
  S=$!
  CUDA_VISIBLE_DEVICES=1,0 timeout 90 "$NODE" test/gpu/nccl-agent-bench.ts receiver "$B" >"$B/receiver.log" 2>&1
  echo "receiver rc=$?"; wait $S; echo "seed rc=$?"
  cut -c1-700 "$B/seed.log" | tail -n 12; tail -c 1500 "$B/receiver.log"
  echo "=== the engine shim's copier: batched vs per segment (3893 tensors, 10 GiB, 256 MiB buckets)"
  CUDA_VISIBLE_DEVICES=0 timeout 120 python3 test/gpu/copier_check.py "$OUT/copier.json" >"$OUT/copier.log" 2>&1
  echo "copier rc=$?"; tail -c 1500 "$OUT/copier.log"
  # I11_BUCKETS: bucket sizes to run issue 11 end to end with (each in its own $OUT/i11-<size>).
  for size in ${I11_BUCKETS:-256Mi}; do
    echo "=== issue 11 end to end (engines, wire ring), all GPUs visible, bucket $size"
    mkdir -p "$OUT/i11-$size"
    timeout 150 python3 test/gpu/node_agents.py issue11 --all-visible --bucket "$size" --node "$NODE" --out "$OUT/i11-$size" --step-ms 20000 --steps 8 >"$OUT/i11-$size/i11v.log" 2>&1
    echo "rc=$?"; tail -c 4000 "$OUT/i11-$size/i11v.log"
  done
  echo "=== torch.distributed references"
  timeout 75 python3 test/gpu/nccl_baseline.py "$OUT/nccl-baseline.json" >"$OUT/baseline.log" 2>&1
  echo "baseline rc=$?"; tail -c 1200 "$OUT/baseline.log"
  mkdir -p "$OUT/logs"; for f in /tmp/sc11-*/*agent.log; do [ -f "$f" ] && tail -c 60000 "$f" >"$OUT/logs/$(basename "$f")"; done
  echo "done $(date -u +%FT%TZ)"
  exit 0
fi
if [ "${PART:-all}" = visible ]; then
  # issue 11 again with both GPUs visible to every process (NVLink P2P possible), then the references.
  echo "=== issue 11, all GPUs visible"
  NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT timeout 200 python3 test/gpu/node_agents.py issue11 --all-visible --node "$NODE" --out "$OUT" --step-ms 20000 --steps 16 >"$OUT/i11v.log" 2>&1
  echo "rc=$?"; tail -c 5000 "$OUT/i11v.log"
  NCCL_DEBUG=INFO timeout 100 python3 test/gpu/nccl_baseline.py "$OUT/nccl-baseline-3.json" >"$OUT/baseline3.log" 2>&1
  echo "baseline rc=$?"; grep -E "via|Channel 00|NCCL INFO Using" "$OUT/baseline3.log" | head -4; tail -c 1500 "$OUT/baseline3.log"
  grep -h "via P2P\|via SHM\|NCCL INFO Channel 00" /tmp/sc11-*/*agent.log 2>/dev/null | head -4
  exit 0
fi
echo "=== issue 7 (tcp over cuda), llama on GPU 0 and qwen-moe on GPU 1 in parallel"
timeout 170 python3 test/gpu/node_agents.py issue7 --node "$NODE" --out "$OUT" --arch llama --gpu 0 >"$OUT/i7-llama.log" 2>&1 &
A=$!
timeout 170 python3 test/gpu/node_agents.py issue7 --node "$NODE" --out "$OUT" --arch qwen-moe --gpu 1 >"$OUT/i7-qwen.log" 2>&1 &
B=$!
wait $A; echo "issue7 llama rc=$?"; wait $B; echo "issue7 qwen-moe rc=$?"
tail -c 2500 "$OUT/i7-llama.log"; tail -c 2500 "$OUT/i7-qwen.log"
if [ "$(nvidia-smi --query-gpu=count --format=csv,noheader | head -1)" -ge 2 ]; then
  echo "=== issue 11 (nccl GPU 0 -> GPU 1)"
  timeout 240 python3 test/gpu/node_agents.py issue11 --node "$NODE" --out "$OUT" --step-ms 20000 --steps 16 >"$OUT/i11.log" 2>&1
  echo "issue11 rc=$?"; tail -c 5000 "$OUT/i11.log"
  echo "=== torch.distributed references"
  timeout 100 python3 test/gpu/nccl_baseline.py "$OUT/nccl-baseline.json" --arch llama-10g --bucket-mib 256 >"$OUT/baseline.log" 2>&1
  echo "baseline rc=$?"; tail -c 2500 "$OUT/baseline.log"
fi
mkdir -p "$OUT/logs"; for f in /tmp/sc7-*/*.log /tmp/sc11-*/*.log; do [ -f "$f" ] && tail -c 200000 "$f" >"$OUT/logs/$(basename "$(dirname "$f")")-$(basename "$f")"; done
echo "done $(date -u +%FT%TZ)"
} 2>&1 | tee "$OUT/log"
