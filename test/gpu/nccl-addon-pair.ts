// Issue 11's open question, narrowed: the addon's own broadcast between two *processes*, with no
// agent, transport, checksum or engine — only Gpu.allocDevice, initCommunicator and broadcast.
// One process in-process got 354 GB/s; the agents' transport between processes ~50 GB/s; torch
// between processes 370 GB/s. If this pair is slow too, the cause is in the addon (allocation,
// stream, context, device order); if it is fast, it is in the transport.
//
//   node test/gpu/nccl-addon-pair.ts seed     DIR DEVICE [BYTES] [REPS] &
//   node test/gpu/nccl-addon-pair.ts receiver DIR DEVICE [BYTES] [REPS]
// DEVICE is the ordinal *within the process's CUDA_VISIBLE_DEVICES*. The seed writes the unique id
// to DIR/id.json; each side writes DIR/<role>.json with per-call wall and GPU (event) times for
// sequential calls (await each) and for REPS calls issued back to back.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gpu } from '../../src/native/index.ts';

const [role, dir, deviceArg, bytesArg, repsArg] = process.argv.slice(2);
if ((role !== 'seed' && role !== 'receiver') || dir === undefined || deviceArg === undefined) {
  console.error('usage: nccl-addon-pair.ts seed|receiver DIR DEVICE [BYTES] [REPS]');
  process.exit(2);
}
const device = Number(deviceArg);
const BYTES = Number(bytesArg ?? 2 ** 30);
const REPS = Number(repsArg ?? 10);
const rank = role === 'seed' ? 0 : 1;
const idFile = join(dir, 'id.json');

async function waitId(ms: number): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(idFile))
      try {
        return (JSON.parse(readFileSync(idFile, 'utf8')) as { uniqueId: string }).uniqueId;
      } catch {}
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no ${idFile} within ${ms} ms`);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const gpu = await Gpu.open();
const out: Record<string, unknown> = {
  role,
  device,
  visible: process.env.CUDA_VISIBLE_DEVICES ?? null,
  bytes: BYTES,
  nccl: gpu.nccl.version,
  devices: await gpu.devices(),
};
const buffer = await gpu.allocDevice(device, BYTES);
if (rank === 0) await buffer.fill(7);
let uniqueId: string;
if (rank === 0) {
  uniqueId = await gpu.ncclUniqueId();
  writeFileSync(idFile, JSON.stringify({ uniqueId }));
} else uniqueId = await waitId(60_000);
const t0 = performance.now();
// PAIR_CONNECT=0: NCCL connects its ring lazily, in the first broadcast (the warm-up calls show it).
const connect = process.env.PAIR_CONNECT !== '0';
const comm = await gpu.initCommunicator({ uniqueId, rank, nranks: 2, device, timeoutMs: 60_000, connect });
out.initMs = performance.now() - t0;
out.connect = connect;
out.connectMs = comm.connectMs;
const call = () => comm.broadcast([buffer], { root: 0, timeoutMs: 60_000 });
const warmup: { wallMs: number; gpuMs: number }[] = [];
for (let i = 0; i < 3; i++) {
  const a = performance.now();
  const r = await call();
  warmup.push({ wallMs: performance.now() - a, gpuMs: r.gpuMs });
}
out.warmup = warmup;
const wall: number[] = [];
const gpuMs: number[] = [];
for (let i = 0; i < REPS; i++) {
  const a = performance.now();
  const r = await call();
  wall.push(performance.now() - a);
  gpuMs.push(r.gpuMs);
}
const a = performance.now();
const burst = await Promise.all(Array.from({ length: REPS }, call));
const burstMs = performance.now() - a;
out.sequential = {
  wallMsMedian: median(wall),
  gpuMsMedian: median(gpuMs),
  gbpsByWall: BYTES / 1e9 / (median(wall) / 1000),
  gbpsByGpu: BYTES / 1e9 / (median(gpuMs) / 1000),
  wall,
  gpuMs,
};
out.burst = {
  totalMs: burstMs,
  gbps: (REPS * BYTES) / 1e9 / (burstMs / 1000),
  gpuMs: burst.map((r) => r.gpuMs),
};
if (rank === 1) {
  const host = Buffer.alloc(1 << 20);
  await buffer.copyToHost(host, { bytes: host.length });
  out.received = host.every((b) => b === 7);
}
const closed = await comm.close({ timeoutMs: 30_000 });
out.closeAborted = closed.aborted;
await buffer.free();
writeFileSync(join(dir, `${role}.json`), `${JSON.stringify(out, null, 2)}\n`);
console.log(
  JSON.stringify(
    {
      role,
      initMs: out.initMs,
      connectMs: out.connectMs,
      warmup: out.warmup,
      sequential: out.sequential,
      burst: out.burst,
    },
    (k, v) => (k === 'wall' || (k === 'gpuMs' && Array.isArray(v)) ? undefined : v),
  ),
);
