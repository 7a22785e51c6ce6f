// Agent-only microbenchmark of the nccl transport (issue 11): the real NcclTransport (control
// connection, per-bucket GPU checksums, deadlines) between two Node processes, one per GPU, with
// pre-filled cuda slots and an engine double whose fill/drain answer at once — no engine copies,
// no bridge socket. Separates the transport's own bandwidth from the engines' fill/drain.
//
//   CUDA_VISIBLE_DEVICES=0,1 node test/gpu/nccl-agent-bench.ts seed     DIR [TOTAL_BYTES] &
//   CUDA_VISIBLE_DEVICES=1,0 node test/gpu/nccl-agent-bench.ts receiver DIR [TOTAL_BYTES]
// Both run the same configurations in order (bucket size × wire buffers); the seed publishes each
// transfer's unique id, port and token in DIR/cfg-<i>.json; each side writes DIR/<role>.json.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { bucketCount, bucketRange } from '../../src/agent/bridge/buckets.ts';
import type { EngineRank } from '../../src/agent/bridge/server.ts';
import { type CudaAllocator, type CudaSlot, CudaStagingMemory } from '../../src/agent/memory/cuda.ts';
import {
  type Communicator,
  type NcclRankStats,
  NcclTransport,
  type WireBuffer,
} from '../../src/agent/transports/nccl.ts';
import { Gpu } from '../../src/native/index.ts';
import { silentLogger } from '../../src/shared/log.ts';

const [role, dir, totalArg] = process.argv.slice(2);
if ((role !== 'seed' && role !== 'receiver') || dir === undefined) {
  console.error('usage: nccl-agent-bench.ts seed|receiver DIR [TOTAL_BYTES]');
  process.exit(2);
}
const TOTAL = Number(totalArg ?? 10_325_002_496); // the issue-11 model (llama-10g)
const MiB = 1 << 20;
const CONFIGS = (process.env.BENCH_CONFIGS ?? '256:0,256:4,1024:0,1024:2').split(',').map((c) => {
  const [mib, wire] = c.split(':').map(Number);
  return { bucketBytes: (mib as number) * MiB, wire: wire as number };
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function waitFile(
  path: string,
  ms: number,
): Promise<{ uniqueId: string; port: number; token: string }> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path))
      try {
        return JSON.parse(readFileSync(path, 'utf8'));
      } catch {}
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no ${path} within ${ms} ms`);
}

/** An engine rank whose slots already hold the bytes: fill and drain answer at once. */
function instantEngine(slots: CudaSlot[], bucketBytes: number): EngineRank {
  return {
    rank: 0,
    ranks: 1,
    fingerprint: 'b'.repeat(64),
    totalBytes: TOTAL,
    bucketBytes,
    buckets: bucketCount(TOTAL, bucketBytes),
    slots,
    state: role === 'seed' ? 'loaded' : 'empty',
    slot: (i: number) => slots[i],
    fill: async (bucket: number) => bucketRange(TOTAL, bucketBytes, bucket).bytes,
    drain: async () => {},
  } as unknown as EngineRank;
}

const gpu = await Gpu.open();
const results: unknown[] = [];
const transport = (wire: number, onStats: (s: NcclRankStats) => void) =>
  new NcclTransport({
    api: {
      ncclUniqueId: () => gpu.ncclUniqueId(),
      initCommunicator: async (o) => (await gpu.initCommunicator(o)) as unknown as Communicator,
    },
    allocate: async (device, bytes) => (await gpu.allocDevice(device, bytes)) as unknown as WireBuffer,
    wireBuffers: wire,
    onStats,
  });

for (const [i, cfg] of CONFIGS.entries()) {
  const t0 = performance.now();
  const memory = await CudaStagingMemory.create({
    allocator: gpu as unknown as CudaAllocator,
    devices: [0],
    bucketBytes: cfg.bucketBytes,
    slotsPerDevice: 2,
  });
  const slots = [0, 1].map(
    (slot) => memory.allocate({ rank: 0, slot, bytes: cfg.bucketBytes, device: 0 }) as CudaSlot,
  );
  if (role === 'seed')
    for (const [k, s] of slots.entries())
      await (s.buffer as unknown as { fill(v: number): Promise<void> }).fill(0x5a + k);
  const engine = instantEngine(slots, cfg.bucketBytes);
  let stats: NcclRankStats | undefined;
  const nccl = transport(cfg.wire, (s) => {
    stats = s;
  });
  const common = {
    transfer: { namespace: 'default', name: `bench-${i}`, attempt: 0 },
    rank: 0,
    engine,
    stepTimeoutMs: 20_000,
    deadline: Date.now() + 60_000,
    signal: new AbortController().signal,
    log: silentLogger(),
  };
  const cfgFile = join(dir, `cfg-${i}.json`);
  let error: string | undefined;
  try {
    if (role === 'seed') {
      const port = await freePort();
      const token = randomBytes(32);
      const session = await nccl.serve({
        ...common,
        token,
        self: { pod: 'seed', uid: 'u-seed' },
        receivers: [{ pod: 'recv', uid: 'u-recv' }],
        host: '127.0.0.1',
        port,
        onBytesSent: () => {},
      });
      writeFileSync(
        `${cfgFile}.tmp`,
        JSON.stringify({ uniqueId: session.uniqueId, port, token: token.toString('base64') }),
      );
      writeFileSync(cfgFile, readFileSync(`${cfgFile}.tmp`));
      const outcomes = await session.done;
      if (outcomes[0]?.outcome !== 'verified') error = JSON.stringify(outcomes);
    } else {
      const c = await waitFile(cfgFile, 60_000);
      await nccl.receive({
        ...common,
        token: Buffer.from(c.token, 'base64'),
        self: { pod: 'recv', uid: 'u-recv' },
        seed: { pod: 'seed', uid: 'u-seed' },
        address: `127.0.0.1:${c.port}`,
        uniqueId: c.uniqueId,
        onProgress: () => {},
      });
    }
  } catch (err) {
    error = err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err);
  }
  for (const s of slots) s.close();
  await memory.close();
  const s = stats as NcclRankStats | undefined;
  const r = {
    role,
    bucketMiB: cfg.bucketBytes / MiB,
    wireBuffers: cfg.wire,
    bytes: TOTAL,
    ok: error === undefined,
    ...(error === undefined ? {} : { error }),
    span_GBps: s?.broadcastSpanMs ? TOTAL / (s.broadcastSpanMs / 1000) / 1e9 : undefined,
    calls_GBps: s?.broadcastMs ? TOTAL / (s.broadcastMs / 1000) / 1e9 : undefined,
    perBucketMs: s ? s.broadcastSpanMs / s.buckets : undefined,
    wallMs: performance.now() - t0,
    stats: s,
  };
  results.push(r);
  console.log(JSON.stringify(r));
  writeFileSync(join(dir, `${role}.json`), JSON.stringify(results, null, 1));
}
process.exit(0);
