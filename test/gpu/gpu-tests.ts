// GPU tests and benchmarks of the native addon (run by test/gpu/run.sh on the lent GPU machine).
// Each test is isolated (a failure is recorded, the next one runs); results are saved after each
// one to <out>/gpu-results.json so a late hang still leaves everything measured before it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DeviceBuffer, Gpu, type NcclCommunicator, sum32x2 } from '../../src/native/index.ts';

const { values } = parseArgs({ options: { out: { type: 'string' }, baseline: { type: 'string' } } });
const OUT = values.out ?? '/tmp/seedcast-gpu-out';
const HERE = fileURLToPath(new URL('.', import.meta.url));
const MiB = 2 ** 20;
const GiB = 2 ** 30;

interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  note?: string;
}
const baseline: Record<string, number | string> = (() => {
  try {
    return JSON.parse(readFileSync(values.baseline ?? '', 'utf8'));
  } catch {
    return {};
  }
})();
const results = {
  date: new Date().toISOString(),
  machine: {} as Record<string, unknown>,
  torchBaseline: baseline,
  tests: [] as { name: string; ok: boolean; ms: number; detail?: unknown; error?: string }[],
  results: [] as Figure[],
};
const save = () => writeFileSync(join(OUT, 'gpu-results.json'), `${JSON.stringify(results, null, 1)}\n`);

async function test(name: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  try {
    const detail = await fn();
    results.tests.push({ name, ok: true, ms: Math.round(performance.now() - t0), detail });
    console.log(`ok   ${name} ${detail === undefined ? '' : JSON.stringify(detail)}`);
  } catch (err) {
    const e = err as Error & { code?: string };
    results.tests.push({
      name,
      ok: false,
      ms: Math.round(performance.now() - t0),
      error: `${e.code ?? ''} ${e.message}`,
    });
    console.log(`FAIL ${name}: ${e.code ?? ''} ${e.stack ?? e.message}`);
  }
  save();
}

function figure(name: string, value: number, unit: string, base?: number | null, note?: string): void {
  const b = typeof base === 'number' && base > 0 ? base : null;
  results.results.push({
    name,
    value: round(value),
    unit,
    baseline: b === null ? null : round(b),
    ratio: b === null ? null : round(value / b, 3),
    ...(note ? { note } : {}),
  });
  save();
}
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function timedMedian(fn: () => Promise<number>, reps = 10, warmup = 3): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) ms.push(await fn());
  return median(ms);
}

function runChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, lines, stderr: stderr.slice(-4000) });
    });
  });
}
const lastJson = (lines: string[]) => JSON.parse(lines.filter((l) => l.startsWith('{')).pop() ?? '{}');

async function randomDevice(
  gpu: Gpu,
  device: number,
  bytes: number,
): Promise<{ dev: DeviceBuffer; host: Buffer }> {
  const host = randomBytes(bytes);
  const dev = await gpu.allocDevice(device, bytes);
  await dev.copyFromHost(host);
  return { dev, host };
}

function nvidiaSmiDriver(): string | undefined {
  try {
    return readFileSync(join(OUT, 'nvidia-smi.csv'), 'utf8').split('\n')[1]?.split(',')[2]?.trim();
  } catch {
    return undefined;
  }
}
/** Local dry runs against the fake driver shrink the 8 GiB transfer. */
const TCP_BYTES = Number(process.env.SEEDCAST_GPU_TEST_TCP_BYTES ?? 8 * GiB);

let gpu!: Gpu;
await test('open (child-process probe, then in-process)', async () => {
  gpu = await Gpu.open({ probe: true });
  const devices = await gpu.devices();
  results.machine = {
    gpu: devices[0]?.name,
    gpus: devices.length,
    devices,
    cudaDriverApi: gpu.cuda.driverVersion,
    libcuda: gpu.cuda.path,
    libcudaFoundBy: gpu.cuda.how,
    nccl: gpu.nccl.ok
      ? `${Math.floor(gpu.nccl.version / 10000)}.${Math.floor((gpu.nccl.version % 10000) / 100)}.${gpu.nccl.version % 100}`
      : null,
    libnccl: gpu.nccl.path,
    libncclFoundBy: gpu.nccl.how,
    ncclError: gpu.nccl.error,
    node: process.version,
    driver: nvidiaSmiDriver(),
  };
  return results.machine;
});
if (!gpu) process.exit(1);

await test('checksum: GPU sum32x2 equals the JS reference; a flipped byte is caught', async () => {
  const size = 256 * MiB + 3;
  const { dev, host } = await randomDevice(gpu, 0, size);
  const cases: [number, number][] = [
    [0, 0],
    [0, 1],
    [0, 3],
    [0, 4],
    [0, 5],
    [1, 17],
    [2, 1000],
    [3, 4099],
    [4, MiB],
    [16, MiB + 3],
    [7, 33 * MiB + 1],
    [0, size],
    [5, size - 5],
  ];
  for (const [off, len] of cases) {
    const gpuSum = await dev.checksum(off, len);
    const jsSum = sum32x2(host.subarray(off, off + len));
    check(gpuSum === jsSum, `offset ${off} length ${len}: gpu ${gpuSum} js ${jsSum}`);
  }
  const before = await dev.checksum();
  const at = 123_457_891;
  await dev.copyFromHost(Buffer.of(host[at]! ^ 0x01), { dstOffset: at });
  host[at]! ^= 0x01;
  const after = await dev.checksum();
  check(after !== before, 'flipped byte changed the checksum');
  check(after === sum32x2(host), 'flipped checksum equals JS');
  await dev.free();
  return { cases: cases.length, before, after };
});

await test('pack/unpack: gather of many ranges into a bucket and back', async () => {
  const { dev: src, host } = await randomDevice(gpu, 0, 64 * MiB);
  const ranges: { offset: number; bytes: number }[] = [];
  let at = 0;
  for (let i = 0; i < 300; i++) {
    const bytes = 1 + Math.floor(Math.random() * 200_000) + (i % 7 === 0 ? 3 * MiB : 0);
    const offset = Math.floor(Math.random() * (64 * MiB - bytes));
    ranges.push({ offset, bytes });
    at += bytes;
  }
  const bucket = await gpu.allocDevice(0, at + 100);
  const packed = await gpu.packBucket(
    bucket,
    7,
    ranges.map((r) => ({ buffer: src, ...r })),
  );
  const back = Buffer.alloc(at);
  await bucket.copyToHost(back, { srcOffset: 7, bytes: at });
  check(
    back.equals(Buffer.concat(ranges.map((r) => host.subarray(r.offset, r.offset + r.bytes)))),
    'packed bytes',
  );
  const target = await gpu.allocDevice(0, at + 64);
  await gpu.unpackBucket(
    bucket,
    7,
    ranges.map((r, i) => ({ buffer: target, offset: i === 0 ? 1 : 0, bytes: r.bytes })).slice(0, 1),
  );
  const t = Buffer.alloc(ranges[0]!.bytes);
  await target.copyToHost(t, { srcOffset: 1 });
  check(t.equals(host.subarray(ranges[0]!.offset, ranges[0]!.offset + ranges[0]!.bytes)), 'unpacked bytes');
  await Promise.all([src.free(), bucket.free(), target.free()]);
  return { ranges: ranges.length, bytes: packed.bytes };
});

await test('CUDA IPC: a PyTorch process reads and writes an exported staging buffer', async () => {
  const n = 64 * MiB;
  const host = Buffer.alloc(n);
  for (let i = 0; i < n / 2; i++) host[i] = (i * 7 + 3) & 255;
  const dev = await gpu.allocDevice(0, n);
  await dev.copyFromHost(host);
  const handle = await dev.ipcHandle();
  check(handle.length === 64, '64-byte handle');
  const r = await runChild('python3', [join(HERE, 'ipc_peer.py'), handle.toString('base64'), String(n), '0']);
  const peer = lastJson(r.lines);
  check(peer.ok === true, `peer: ${JSON.stringify(peer)} ${r.stderr}`);
  const back = Buffer.alloc(n);
  await dev.copyToHost(back);
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const p = (i * 7 + 3) & 255;
    if (back[i] !== (i < n / 2 ? p : 255 - p)) bad++;
  }
  check(bad === 0, `${bad} wrong bytes after the peer wrote`);
  await dev.free();
  return { peer, handleBase64: handle.toString('base64').slice(0, 16) };
});

await test('NCCL one-rank communicator broadcasts a bucket list', async () => {
  const comm = await gpu.initCommunicator({
    uniqueId: await gpu.ncclUniqueId(),
    rank: 0,
    nranks: 1,
    device: 0,
    timeoutMs: 30_000,
  });
  const a = await randomDevice(gpu, 0, 32 * MiB);
  const b = await randomDevice(gpu, 0, 8 * MiB + 5);
  const sums = [sum32x2(a.host), sum32x2(b.host.subarray(5))];
  const r = await comm.broadcast([a.dev, { buffer: b.dev, offset: 5 }], { root: 0, timeoutMs: 30_000 });
  check((await a.dev.checksum()) === sums[0] && (await b.dev.checksum(5)) === sums[1], 'bytes unchanged');
  const closed = await comm.close({ timeoutMs: 10_000 });
  await Promise.all([a.dev.free(), b.dev.free()]);
  return { ...r, closed, phase: comm.phase };
});

let pair: NcclCommunicator[] = [];
let pairBuffers: DeviceBuffer[][] = [];
await test('NCCL two ranks (GPU 0 -> GPU 1) broadcast a bucket list', async () => {
  if (gpu.deviceCount < 2) return { skipped: 'one GPU' };
  const id = await gpu.ncclUniqueId();
  pair = await Promise.all(
    [0, 1].map((d) =>
      gpu.initCommunicator({ uniqueId: id, rank: d, nranks: 2, device: d, timeoutMs: 60_000 }),
    ),
  );
  const sizes = [256 * MiB, 256 * MiB, 256 * MiB + 12, 256 * MiB - 12];
  const root = await Promise.all(sizes.map((s) => randomDevice(gpu, 0, s)));
  const recv = await Promise.all(sizes.map((s) => gpu.allocDevice(1, s)));
  await Promise.all(recv.map((r) => r.fill(0)));
  pairBuffers = [root.map((r) => r.dev), recv];
  const t = await Promise.all(
    pair.map((c, i) => c.broadcast(pairBuffers[i]!, { root: 0, timeoutMs: 60_000 })),
  );
  for (let i = 0; i < sizes.length; i++) {
    check((await recv[i]!.checksum()) === sum32x2(root[i]!.host), `bucket ${i} arrived intact`);
  }
  const ms = await timedMedian(
    async () => {
      const r = await Promise.all(
        pair.map((c, i) => c.broadcast(pairBuffers[i]!, { root: 0, timeoutMs: 60_000 })),
      );
      return Math.max(...r.map((x) => x.gpuMs));
    },
    5,
    2,
  );
  const bytes = sizes.reduce((a, b) => a + b, 0);
  figure(
    'nccl_broadcast_2gpu_1GiB_list',
    bytes / ms / 1e6,
    'GB/s',
    null,
    '4-entry bucket list, one ncclGroupStart/End',
  );
  return { bytes, firstMs: t.map((x) => round(x.gpuMs)), medianMs: round(ms) };
});

await test('NCCL init deadline: a peer that never arrives is aborted at 3 s', async () => {
  const t0 = performance.now();
  let code = '';
  let message = '';
  try {
    await gpu.initCommunicator({
      uniqueId: await gpu.ncclUniqueId(),
      rank: 0,
      nranks: 2,
      device: 0,
      timeoutMs: 3000,
    });
  } catch (err) {
    code = (err as { code: string }).code;
    message = (err as Error).message;
  }
  const ms = performance.now() - t0;
  check(code === 'SEEDCAST_ERR_NCCL_TIMEOUT', `code ${code}: ${message}`);
  check(ms >= 2990 && ms < 8000, `aborted after ${ms} ms`);
  // Still healthy: a new communicator works and the GPU answers.
  const comm = await gpu.initCommunicator({
    uniqueId: await gpu.ncclUniqueId(),
    rank: 0,
    nranks: 1,
    device: 0,
    timeoutMs: 30_000,
  });
  const x = await randomDevice(gpu, 0, MiB);
  await comm.broadcast([x.dev], { root: 0, timeoutMs: 30_000 });
  check((await x.dev.checksum()) === sum32x2(x.host), 'healthy after the abort');
  await comm.close({ timeoutMs: 10_000 });
  await x.dev.free();
  return { code, abortedAfterMs: Math.round(ms), message, memInfo: await gpu.memInfo(0) };
});

await test('bench: pinned host <-> device vs torch copy_', async () => {
  const n = GiB;
  const pinned = await gpu.allocPinned(n);
  pinned.view().fill(7);
  const dev = await gpu.allocDevice(0, n);
  const h2d = await timedMedian(async () => (await dev.copyFromHost(pinned)).gpuMs);
  const d2h = await timedMedian(async () => (await dev.copyToHost(pinned)).gpuMs);
  const wall = await timedMedian(async () => {
    const t = performance.now();
    await dev.copyFromHost(pinned);
    return performance.now() - t;
  });
  figure(
    'h2d_pinned_1GiB',
    n / h2d / 1e6,
    'GB/s',
    baseline.h2d_pinned_GBps as number,
    'CUDA events; baseline torch dev.copy_(pinned, non_blocking=True)',
  );
  figure(
    'd2h_pinned_1GiB',
    n / d2h / 1e6,
    'GB/s',
    baseline.d2h_pinned_GBps as number,
    'CUDA events; baseline torch pinned.copy_(dev, non_blocking=True)',
  );
  figure(
    'h2d_pinned_1GiB_wallclock',
    n / wall / 1e6,
    'GB/s',
    baseline.h2d_pinned_GBps as number,
    'JS promise round trip included',
  );
  await Promise.all([pinned.free(), dev.free()]);
});

await test('bench: device bucket packing vs torch device copy', async () => {
  const total = 2 * GiB;
  const src = await gpu.allocDevice(0, total + 4 * MiB);
  await src.fill(3);
  const bucket = await gpu.allocDevice(0, total + 4 * MiB);
  const variants: [string, number[], string][] = [];
  variants.push(['pack_1024x2MiB', Array(1024).fill(2 * MiB), '1024 tensors of 2 MiB']);
  const mixed: number[] = [];
  for (let s = 0; s < total - 8 * MiB; ) {
    const b = 256 * (16 + Math.floor(Math.random() * 32768));
    mixed.push(b);
    s += b;
  }
  variants.push([
    'pack_mixed_256B_multiple',
    mixed,
    `${mixed.length} tensors, 4 KiB..8 MiB, multiples of 256 B`,
  ]);
  const odd: number[] = [];
  for (let s = 0; s < total / 4; ) {
    const b = 2 * (2048 + Math.floor(Math.random() * 1_000_000));
    odd.push(b);
    s += b;
  }
  variants.push([
    'pack_mixed_2B_multiple',
    odd,
    `${odd.length} tensors, multiples of 2 B (bf16, unaligned: slow path)`,
  ]);
  const out: Record<string, number> = {};
  for (const [name, sizes, note] of variants) {
    let off = 0;
    const ranges = sizes.map((bytes) => {
      const r = { buffer: src, offset: off, bytes };
      off += bytes;
      return r;
    });
    const bytes = off;
    const ms = await timedMedian(async () => (await gpu.packBucket(bucket, 0, ranges)).gpuMs, 10, 3);
    figure(
      name,
      (2 * bytes) / ms / 1e6,
      'GB/s (read+write)',
      baseline.d2d_copy_GBps_rw as number,
      `${note}; baseline torch b.copy_(a), 2 GiB`,
    );
    out[name] = round(ms, 3);
  }
  const d2d = await timedMedian(async () => (await bucket.copyFromDevice(src, { bytes: total })).gpuMs);
  figure(
    'd2d_copy_2GiB_cuMemcpy',
    (2 * total) / d2d / 1e6,
    'GB/s (read+write)',
    baseline.d2d_copy_GBps_rw as number,
  );
  const sumMs = await timedMedian(async () => (await src.checksumTimed(0, total)).gpuMs);
  figure(
    'checksum_sum32x2_2GiB',
    total / sumMs / 1e6,
    'GB/s (read)',
    baseline.int32_sum_GBps_read as number,
    'baseline torch int32 sum over the same bytes',
  );
  await Promise.all([src.free(), bucket.free()]);
  return out;
});

await test('tcp-over-cuda: 8 GiB between two processes on GPU 0, byte-exact', async () => {
  const peer = join(HERE, 'tcp-peer.ts');
  const receiver = spawn(process.execPath, [peer, 'receive', '0', String(TCP_BYTES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: receiver.stdout }).on('line', (l) => {
      lines.push(l);
      const m = JSON.parse(l);
      if (m.port) resolve(m.port);
    });
    receiver.once('exit', (c) => reject(new Error(`receiver exited ${c}`)));
  });
  const done = new Promise<void>((resolve) => receiver.once('close', () => resolve()));
  const sender = await runChild(
    process.execPath,
    [peer, 'send', String(port), String(TCP_BYTES)],
    {},
    240_000,
  );
  await done;
  const s = lastJson(sender.lines);
  const r = lastJson(lines);
  check(
    s.sent === TCP_BYTES && r.received === TCP_BYTES,
    `sent ${s.sent} received ${r.received} ${sender.stderr}`,
  );
  check(r.mismatched === 0, `${r.mismatched} chunks differ`);
  check(s.checksum === r.checksum, `checksums ${s.checksum} vs ${r.checksum}`);
  figure(
    'tcp_over_cuda_8GiB_loopback',
    TCP_BYTES / r.seconds / 1e9,
    'GB/s',
    null,
    'device->pinned->TCP loopback->pinned->device, two Node processes',
  );
  return { sender: s, receiver: r };
});

await test('extra GPU memory per NCCL communicator', async () => {
  const script = join(HERE, 'comm-memory.ts');
  const variants: [string, NodeJS.ProcessEnv][] = [
    ['default', {}],
    ['NCCL_MAX_NCHANNELS=1,NCCL_BUFFSIZE=1MiB', { NCCL_MAX_NCHANNELS: '1', NCCL_BUFFSIZE: String(MiB) }],
    ['NCCL_MAX_NCHANNELS=2,NCCL_BUFFSIZE=4MiB', { NCCL_MAX_NCHANNELS: '2', NCCL_BUFFSIZE: String(4 * MiB) }],
  ];
  const out: Record<string, unknown> = {};
  let base: number | null = null;
  for (const [name, env] of variants) {
    const r = await runChild(process.execPath, [script], env, 120_000);
    const m = lastJson(r.lines);
    check(typeof m.totalMiB === 'number', `${name}: ${r.stderr}`);
    out[name] = m;
    if (base === null) base = m.totalMiB;
    figure(
      `nccl_comm_memory_${name}`,
      m.totalMiB,
      `MiB per rank (${m.nranks} ranks)`,
      name === 'default' ? null : base,
      `after init ${round(m.initMiB)} MiB; total after first broadcast`,
    );
  }
  return out;
});

await test('NCCL broadcast deadline: a peer that stops responding is aborted, process healthy', async () => {
  if (pair.length < 2) return { skipped: 'one GPU' };
  const t0 = performance.now();
  let code = '';
  try {
    await pair[0]!.broadcast(pairBuffers[0]!, { root: 0, timeoutMs: 3000 }); // rank 1 never joins
  } catch (err) {
    code = (err as { code: string }).code;
  }
  const ms = performance.now() - t0;
  await pair[1]!.abort();
  check(code === 'SEEDCAST_ERR_NCCL_TIMEOUT', `code ${code}`);
  check(
    pair[0]!.phase === 'aborted' && pair[1]!.phase === 'aborted',
    `phases ${pair[0]!.phase} ${pair[1]!.phase}`,
  );
  const x = await randomDevice(gpu, 0, MiB);
  check((await x.dev.checksum()) === sum32x2(x.host), 'GPU 0 healthy after the abort');
  return { code, abortedAfterMs: Math.round(ms) };
});

const passed = results.tests.filter((t) => t.ok).length;
const failed = results.tests.length - passed;
console.log('\nfigure'.padEnd(44), 'value'.padStart(10), 'unit'.padEnd(22), 'baseline'.padStart(9), 'ratio');
for (const f of results.results) {
  console.log(
    f.name.padEnd(44),
    String(f.value).padStart(10),
    f.unit.padEnd(22),
    String(f.baseline ?? '-').padStart(9),
    f.ratio ?? '-',
  );
}
console.log(`\n${passed} passed, ${failed} failed`);
save();
process.exit(failed === 0 ? 0 : 1);
