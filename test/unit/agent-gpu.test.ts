// The agent's GPU path without a GPU: `cuda` staging slots, tcp over cuda and the `nccl`
// transport, on the native addon's fake libcuda (host memory behind the same Node-API calls).
// The fake libnccl completes one-rank communicators only, so two-rank broadcasts go through an
// in-process fabric (test double of the Communicator) and the real fake library covers the
// init deadline. This file opens the fake GPU in its own process (node --test runs one per file).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { bucketCount, bucketRange } from '../../src/agent/bridge/buckets.ts';
import type { EngineRank } from '../../src/agent/bridge/server.ts';
import { sum32x2 } from '../../src/agent/checksum.ts';
import { loadConfig } from '../../src/agent/config.ts';
import { type CudaAllocator, type CudaSlot, CudaStagingMemory } from '../../src/agent/memory/cuda.ts';
import { CudaStagedTransport } from '../../src/agent/memory/cuda-tcp.ts';
import {
  type Communicator,
  type NcclApi,
  NcclTransport,
  type WireBuffer,
} from '../../src/agent/transports/nccl.ts';
import { ChunkPool } from '../../src/agent/transports/pool.ts';
import { TcpTransport } from '../../src/agent/transports/tcp.ts';
import type { ReceiverOutcome, Transport } from '../../src/agent/transports/types.ts';
import { DEFAULT_ADDON_PATH } from '../../src/native/loader.ts';
import { silentLogger } from '../../src/shared/log.ts';
import { freePort } from '../agent/harness.ts';

const BUILD = dirname(DEFAULT_ADDON_PATH);
const FAKE_CUDA = join(BUILD, 'libseedcast_fake_cuda.so');
const FAKE_NCCL = join(BUILD, 'libseedcast_fake_nccl.so');
const skip = existsSync(FAKE_CUDA) || process.env.CI ? false : 'addon not built: run `npm run build:native`';

// biome-ignore lint/suspicious/noExplicitAny: the addon's Gpu, loaded lazily
let gpu: any;
const BUCKET = 1 << 20;
/** Every slot a fake engine borrowed; returned after each test, so one failure cannot starve the next. */
const lent: CudaSlot[] = [];

/** An engine rank over cuda slots: fills from `weights`, drains into `received`. */
function fakeEngine(
  memory: CudaStagingMemory,
  weights: Buffer,
  options: { fingerprint?: string; device?: number; loaded: boolean },
): EngineRank & { received: Buffer; fills: number; drains: number } {
  const device = options.device ?? 0;
  const slots = [0, 1].map(
    (slot) => memory.allocate({ rank: 0, slot, bytes: Math.min(BUCKET, weights.length), device }) as CudaSlot,
  );
  lent.push(...slots);
  const received = Buffer.alloc(weights.length);
  const engine = {
    rank: 0,
    ranks: 1,
    fingerprint: options.fingerprint ?? 'a'.repeat(64),
    totalBytes: weights.length,
    bucketBytes: BUCKET,
    buckets: bucketCount(weights.length, BUCKET),
    slots,
    state: options.loaded ? 'loaded' : 'empty',
    received,
    fills: 0,
    drains: 0,
    slot: (i: number) => slots[i] as CudaSlot,
    async fill(bucket: number, slot: number): Promise<number> {
      const r = bucketRange(weights.length, BUCKET, bucket);
      await (slots[slot] as CudaSlot).buffer.copyFromHost(
        weights.subarray(r.start, r.start + r.bytes) as never,
        {
          bytes: r.bytes,
        },
      );
      engine.fills++;
      return r.bytes;
    },
    async drain(bucket: number, slot: number): Promise<void> {
      const r = bucketRange(weights.length, BUCKET, bucket);
      const host = Buffer.alloc(r.bytes);
      await (slots[slot] as CudaSlot).buffer.copyToHost(host as never, { bytes: r.bytes });
      host.copy(received, r.start);
      engine.drains++;
    },
  };
  return engine as unknown as EngineRank & { received: Buffer; fills: number; drains: number };
}

/**
 * Direct casts between fake engines (a test double of what the Python shim's DirectCaster does on
 * GPUs): the members of one unique id meet, the root's weights are copied into every receiver's
 * `received`, and each engine answers with the sum32x2 of its own bucket bytes. `abortCast` makes a
 * waiting cast fail, as the engine's NCCL abort does.
 */
class CastFabric {
  readonly groups = new Map<string, { nranks: number; seed?: Buffer; members: Array<() => void> }>();
  aborts = 0;
}

type DirectEngine = ReturnType<typeof fakeEngine> & { casts: number; aborts: number };

function directEngine(
  fabric: CastFabric,
  memory: CudaStagingMemory,
  weights: Buffer,
  options: { loaded: boolean; corruptBucket?: number; hang?: AbortController },
): DirectEngine {
  const engine = fakeEngine(memory, weights, options) as DirectEngine;
  engine.casts = 0;
  engine.aborts = 0;
  let abortWaiting: ((err: Error) => void) | undefined;
  Object.defineProperty(engine, 'direct', { value: true });
  Object.assign(engine, {
    async cast(o: { role: 'send' | 'receive'; uniqueId: string; nranks: number; timeoutMs: number }) {
      engine.casts++;
      let g = fabric.groups.get(o.uniqueId);
      if (g === undefined) {
        g = { nranks: o.nranks, members: [] };
        fabric.groups.set(o.uniqueId, g);
      }
      const group = g;
      if (o.role === 'send') group.seed = weights;
      if (options.hang !== undefined) {
        options.hang.abort(new Error('receiver killed'));
        await new Promise(() => {});
      }
      const arrived = new Promise<void>((resolve, reject) => {
        abortWaiting = reject;
        group.members.push(resolve);
        setTimeout(() => reject(new Error('cast timeout')), o.timeoutMs).unref();
      });
      if (group.members.length === group.nranks) for (const m of group.members) m();
      await arrived;
      abortWaiting = undefined;
      const source = o.role === 'send' ? weights : (group.seed as Buffer).subarray();
      if (o.role === 'receive') source.copy(engine.received);
      const mine = o.role === 'send' ? weights : Buffer.from(engine.received);
      const checksums = Array.from({ length: engine.buckets }, (_, b) => {
        const r = bucketRange(weights.length, BUCKET, b);
        const bytes = Buffer.from(mine.subarray(r.start, r.start + r.bytes));
        if (b === options.corruptBucket) bytes[3] = (bytes[3] as number) ^ 1;
        return sum32x2(bytes);
      });
      return {
        v: 1,
        type: 'cast-done',
        id: 1,
        bytes: weights.length,
        checksums,
        stats: { initMs: 1, connectMs: 0.5, castMs: 2, gpuMs: 1.5, teardownMs: 0.2 },
      };
    },
    async abortCast() {
      engine.aborts++;
      fabric.aborts++;
      abortWaiting?.(Object.assign(new Error('cast interrupted'), { code: 'SEEDCAST_ERR_ABORTED' }));
    },
  });
  return engine;
}

/** An NcclApi that fails the test if an agent joins a communicator itself (direct casts expected). */
const noAgentComm: NcclApi = {
  ncclUniqueId: async () => Buffer.alloc(128, 7).toString('base64'),
  initCommunicator: async () => {
    throw new Error('an agent joined the communicator during a direct cast');
  },
};

/** From drain `bucket` on, `engine` never answers (a hung or dying process); the signal fires then. */
function stallOnDrain(engine: EngineRank, bucket: number): AbortController {
  const drain = engine.drain.bind(engine);
  const stalled = new AbortController();
  (engine as { drain: EngineRank['drain'] }).drain = async (b, slot, t) => {
    if (b === bucket) {
      stalled.abort(new Error('receiver killed'));
      await new Promise(() => {});
    }
    return drain(b, slot, t);
  };
  return stalled;
}

/** `assert.rejects` validator: the receiver failed on bucket `bucket`'s checksum. */
function checksumFailure(bucket: number): (err: Error & { code?: string }) => boolean {
  return (err) => {
    assert.equal(err.code, 'SEEDCAST_ERR_CHECKSUM');
    assert.match(err.message, new RegExp(`bucket ${bucket} checksum`));
    return true;
  };
}

/** The seed's outcome for its first receiver (`failed` when the session itself failed). */
function seedOutcome(session: { done: Promise<ReceiverOutcome[]> }): Promise<string | undefined> {
  return session.done.then(
    (o) => o[0]?.outcome,
    () => 'failed',
  );
}

function contexts(
  seedEngine: EngineRank,
  receivers: Array<{ pod: string; engine: EngineRank }>,
  port: number,
) {
  const token = randomBytes(32);
  const transfer = { namespace: 'default', name: 'wt-1', attempt: 0 };
  const common = { transfer, token, stepTimeoutMs: 3000, deadline: Date.now() + 20_000, log: silentLogger() };
  const seed = {
    ...common,
    self: { pod: 'seed', uid: 'u-seed' },
    rank: 0,
    engine: seedEngine,
    receivers: receivers.map((r) => ({ pod: r.pod, uid: `u-${r.pod}` })),
    host: '127.0.0.1',
    port,
    signal: new AbortController().signal,
    onBytesSent: () => {},
  };
  const receiver = (r: { pod: string; engine: EngineRank }, uniqueId?: string, signal?: AbortSignal) => ({
    ...common,
    self: { pod: r.pod, uid: `u-${r.pod}` },
    seed: { pod: 'seed', uid: 'u-seed' },
    rank: 0,
    engine: r.engine,
    address: `127.0.0.1:${port}`,
    ...(uniqueId === undefined ? {} : { uniqueId }),
    signal: signal ?? new AbortController().signal,
    onProgress: () => {},
  });
  return { seed, receiver };
}

/** An in-process NCCL: members of one unique id meet per broadcast; the root's bytes are copied to the others. */
class Fabric implements NcclApi {
  readonly groups = new Map<string, { nranks: number; joined: number; waiting: Array<() => void> }>();
  readonly calls: Array<{ root: boolean; bytes: number }> = [];
  corruptBucket: number | undefined;
  #ids = 0;
  #rounds = new Map<
    string,
    Array<{ src?: CudaSlot['buffer']; dsts: CudaSlot['buffer'][]; arrive: Array<() => void> }>
  >();
  aborted = 0;

  async ncclUniqueId(): Promise<string> {
    return Buffer.alloc(128, ++this.#ids).toString('base64');
  }

  async initCommunicator(o: {
    uniqueId: string;
    rank: number;
    nranks: number;
    timeoutMs: number;
  }): Promise<Communicator> {
    let group = this.groups.get(o.uniqueId);
    if (group === undefined) {
      group = { nranks: o.nranks, joined: 0, waiting: [] };
      this.groups.set(o.uniqueId, group);
    }
    const g = group;
    g.joined++;
    if (g.joined === g.nranks) for (const w of g.waiting.splice(0)) w();
    else {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(Object.assign(new Error('init timeout'), { code: 'SEEDCAST_ERR_NCCL_TIMEOUT' })),
          o.timeoutMs,
        );
        g.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    let round = 0;
    let abortedHere = false;
    const abortWaiters: Array<() => void> = [];
    const rounds = this.#rounds.get(o.uniqueId) ?? [];
    this.#rounds.set(o.uniqueId, rounds);
    return {
      broadcast: async (entries, options) => {
        const k = round++;
        const entry = entries[0] as { buffer: CudaSlot['buffer']; bytes: number };
        rounds[k] ??= { dsts: [], arrive: [] };
        const r = rounds[k];
        if (o.rank === options.root) r.src = entry.buffer;
        else r.dsts.push(entry.buffer);
        this.calls.push({ root: o.rank === options.root, bytes: entry.bytes });
        const complete = r.dsts.length === g.nranks - 1 && r.src !== undefined;
        if (complete) {
          for (const d of r.dsts) {
            const host = Buffer.alloc(entry.bytes);
            await (r.src as CudaSlot['buffer']).copyToHost(host as never, { bytes: entry.bytes });
            if (this.corruptBucket === k) host[7] = (host[7] as number) ^ 1;
            await d.copyFromHost(host as never, { bytes: entry.bytes });
          }
          for (const a of r.arrive.splice(0)) a();
        } else {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () =>
                reject(Object.assign(new Error('broadcast timeout'), { code: 'SEEDCAST_ERR_NCCL_TIMEOUT' })),
              options.timeoutMs,
            );
            r.arrive.push(() => {
              clearTimeout(timer);
              resolve();
            });
            abortWaiters.push(() => {
              clearTimeout(timer);
              reject(Object.assign(new Error('aborted'), { code: 'SEEDCAST_ERR_ABORTED' }));
            });
          });
        }
        if (abortedHere) throw Object.assign(new Error('aborted'), { code: 'SEEDCAST_ERR_ABORTED' });
        return { bytes: entry.bytes, gpuMs: 0.1 };
      },
      abort: async () => {
        abortedHere = true;
        this.aborted++;
        for (const w of abortWaiters.splice(0)) w();
      },
      close: async () => ({ aborted: false }),
    };
  }
}

describe('agent GPU path on the fake driver', { skip }, () => {
  let memory: CudaStagingMemory;

  before(async () => {
    const native = await import('../../src/native/index.ts');
    gpu = await native.Gpu.open({
      config: native.nativeConfigFromEnv({
        ...process.env,
        SEEDCAST_CUDA_PATH: FAKE_CUDA,
        SEEDCAST_NCCL_PATH: FAKE_NCCL,
      }),
      probe: false,
    });
    memory = await CudaStagingMemory.create({
      allocator: gpu as CudaAllocator,
      devices: [0],
      bucketBytes: BUCKET,
      slotsPerDevice: 6,
    });
  });
  afterEach(() => {
    for (const s of lent.splice(0)) s.close();
  });
  after(async () => {
    await memory?.close();
  });

  it('lends pre-allocated device buffers with base64 IPC handles, checksums on the device, grows when exhausted', async () => {
    const small = await CudaStagingMemory.create({
      allocator: gpu as CudaAllocator,
      devices: [0],
      bucketBytes: 8192,
      slotsPerDevice: 2,
    });
    const a = small.allocate({ rank: 0, slot: 0, bytes: 5000, device: 0 }) as CudaSlot;
    const b = small.allocate({ rank: 0, slot: 1, bytes: 8192, device: 0 }) as CudaSlot;
    const d = a.describe();
    assert.equal(d.kind, 'cuda');
    assert.equal(d.bytes, 5000);
    assert.equal(Buffer.from((d as { ipcHandle: string }).ipcHandle, 'base64').length, 64);
    assert.notEqual(
      (d as { ipcHandle: string }).ipcHandle,
      (b.describe() as { ipcHandle: string }).ipcHandle,
    );
    assert.throws(
      () => small.allocate({ rank: 1, slot: 0, bytes: 10, device: 0 }),
      /in use; one more is being allocated/,
    );
    assert.throws(
      () => small.allocate({ rank: 1, slot: 0, bytes: 10, device: 3 }),
      /no cuda staging on device 3/,
    );
    assert.throws(
      () => small.allocate({ rank: 1, slot: 0, bytes: 9000, device: 0 }),
      /exceeds the bucket size/,
    );
    const data = randomBytes(5000);
    await a.buffer.copyFromHost(data as never, { bytes: 5000 });
    const { sum32x2 } = await import('../../src/agent/checksum.ts');
    assert.equal(await a.checksum(5000), sum32x2(data));
    // tcp over cuda: device → pinned mirror → read(); write() → mirror → device
    await a.toHost(5000);
    const out = Buffer.alloc(5000);
    assert.equal(a.read(out, 0, 5000), 5000);
    assert.ok(out.equals(data));
    assert.throws(() => b.write(data, 100), /no host mirror/);
    await b.ensureMirror();
    b.write(data, 100);
    await b.fromHost(5100);
    assert.equal(await b.checksum(5000, 100), sum32x2(data));
    // returned buffers are lent again; the background allocation added one
    a.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(small.stats()[0]?.total, 3);
    const c = small.allocate({ rank: 1, slot: 0, bytes: 10, device: 0 });
    assert.equal(c.kind, 'cuda');
    c.close();
    b.close();
    await small.close();
  });

  it('runs the tcp transport over cuda slots (pinned mirrors), byte-exact', async () => {
    const weights = randomBytes(3 * BUCKET + 12345);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const recv = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const pool = new ChunkPool(256 << 10, 16);
    const tcp = (): Transport =>
      new CudaStagedTransport(new TcpTransport({ streams: 2, chunkBytes: 256 << 10, window: 4, pool }), {
        verifyOnDevice: true,
      });
    const port = await freePort();
    const ctx = contexts(seed, [{ pod: 'r1', engine: recv }], port);
    const session = await tcp().serve(ctx.seed);
    await tcp().receive(ctx.receiver({ pod: 'r1', engine: recv }));
    const outcomes = await session.done;
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ['verified'],
    );
    assert.ok(recv.received.equals(weights));
    assert.equal(seed.fills, 4);
  });

  it('nccl: broadcasts buckets to two receivers, verifies device checksums before each drain', async () => {
    const fabric = new Fabric();
    const weights = randomBytes(5 * BUCKET + 999);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const r2 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const stats: unknown[] = [];
    const nccl = new NcclTransport({ api: fabric, onStats: (s) => stats.push(s) });
    const port = await freePort();
    const ctx = contexts(
      seed,
      [
        { pod: 'r1', engine: r1 },
        { pod: 'r2', engine: r2 },
      ],
      port,
    );
    const session = await nccl.serve(ctx.seed);
    assert.equal(Buffer.from(session.uniqueId as string, 'base64').length, 128);
    await Promise.all([
      nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId)),
      nccl.receive(ctx.receiver({ pod: 'r2', engine: r2 }, session.uniqueId)),
    ]);
    const outcomes = await session.done;
    assert.deepEqual(
      outcomes.map((o: ReceiverOutcome) => o.outcome),
      ['verified', 'verified'],
    );
    assert.ok(r1.received.equals(weights));
    assert.ok(r2.received.equals(weights));
    assert.equal(seed.fills, 6);
    assert.equal(r1.drains, 6);
    assert.equal(fabric.calls.length, 18); // 6 buckets × 3 ranks, one call per bucket each
    assert.equal(stats.length, 3);
    assert.equal((stats[0] as { nranks: number }).nranks, 3);
  });

  it('nccl: a corrupted bucket fails the receiver (SEEDCAST_ERR_CHECKSUM) before it is drained', async () => {
    const fabric = new Fabric();
    fabric.corruptBucket = 1;
    const weights = randomBytes(3 * BUCKET);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const nccl = new NcclTransport({ api: fabric });
    const port = await freePort();
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], port);
    const session = await nccl.serve(ctx.seed);
    session.done.catch(() => {});
    await assert.rejects(
      nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId)),
      checksumFailure(1),
    );
    assert.ok(r1.drains <= 1, `drained ${r1.drains}: nothing after the failed bucket 1`);
    assert.equal(await seedOutcome(session), 'failed');
  });

  it('nccl: a receiver lost mid-broadcast makes the seed abort at once, not at the deadline', async () => {
    const fabric = new Fabric();
    const weights = randomBytes(6 * BUCKET);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    // The receiver's engine stalls on the second drain (a hung or dying process).
    const stalled = stallOnDrain(r1, 1);
    const nccl = new NcclTransport({ api: fabric });
    const port = await freePort();
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], port);
    const session = await nccl.serve({ ...ctx.seed, stepTimeoutMs: 15_000 });
    const receiving = nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId, stalled.signal));
    receiving.catch(() => {});
    const t0 = Date.now();
    await assert.rejects(session.done);
    const ms = Date.now() - t0;
    assert.ok(ms < 5000, `seed gave up after ${ms} ms (step timeout 15 s)`);
    assert.ok(fabric.aborted >= 1);
    await assert.rejects(receiving);
  });

  /** The wire ring on the fake driver: counts what it allocated and freed. */
  function wireRing(count: number) {
    const ring = { allocated: 0, freed: 0 };
    return {
      ring,
      options: {
        wireBuffers: count,
        allocate: async (device: number, bytes: number): Promise<WireBuffer> => {
          const b = await gpu.allocDevice(device, bytes);
          ring.allocated++;
          const free = b.free.bind(b);
          b.free = async () => {
            ring.freed++;
            await free();
          };
          return b as WireBuffer;
        },
      },
    };
  }

  it('nccl with a wire ring: two receivers, every bucket verified, slots handed back before the broadcast', async () => {
    const fabric = new Fabric();
    const weights = randomBytes(7 * BUCKET + 12345);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const r2 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const stats: Array<{ wireBuffers: number; role: string }> = [];
    const { ring, options } = wireRing(3);
    const nccl = new NcclTransport({ api: fabric, ...options, onStats: (s) => stats.push(s) });
    const port = await freePort();
    const ctx = contexts(
      seed,
      [
        { pod: 'r1', engine: r1 },
        { pod: 'r2', engine: r2 },
      ],
      port,
    );
    const session = await nccl.serve(ctx.seed);
    await Promise.all([
      nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId)),
      nccl.receive(ctx.receiver({ pod: 'r2', engine: r2 }, session.uniqueId)),
    ]);
    const outcomes = await session.done;
    assert.deepEqual(
      outcomes.map((o: ReceiverOutcome) => o.outcome),
      ['verified', 'verified'],
    );
    assert.ok(r1.received.equals(weights));
    assert.ok(r2.received.equals(weights));
    assert.equal(seed.fills, 8);
    assert.equal(r1.drains, 8);
    assert.equal(r2.drains, 8);
    assert.equal(fabric.calls.length, 24);
    assert.deepEqual(
      stats.map((s) => s.wireBuffers),
      [3, 3, 3],
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ring.allocated, 9);
    assert.equal(ring.freed, 9);
  });

  it('nccl with a wire ring: a corrupted bucket never reaches the engine (SEEDCAST_ERR_CHECKSUM)', async () => {
    const fabric = new Fabric();
    fabric.corruptBucket = 2;
    const weights = randomBytes(5 * BUCKET);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const { ring, options } = wireRing(4);
    const nccl = new NcclTransport({ api: fabric, ...options });
    const port = await freePort();
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], port);
    const session = await nccl.serve(ctx.seed);
    session.done.catch(() => {});
    await assert.rejects(
      nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId)),
      checksumFailure(2),
    );
    assert.ok(r1.drains <= 2, `drained ${r1.drains}`);
    // bucket 2's bytes never reached the engine's memory
    const r = bucketRange(weights.length, BUCKET, 2);
    assert.ok(
      !r1.received.subarray(r.start, r.start + r.bytes).equals(weights.subarray(r.start, r.start + r.bytes)),
    );
    await session.done.catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ring.freed, ring.allocated);
  });

  it('nccl with a wire ring: a receiver lost mid-broadcast makes the seed abort at once', async () => {
    const fabric = new Fabric();
    const weights = randomBytes(8 * BUCKET);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const stalled = stallOnDrain(r1, 1);
    const { options } = wireRing(2);
    const nccl = new NcclTransport({ api: fabric, ...options });
    const port = await freePort();
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], port);
    const session = await nccl.serve({ ...ctx.seed, stepTimeoutMs: 15_000 });
    const receiving = nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId, stalled.signal));
    receiving.catch(() => {});
    const t0 = Date.now();
    await assert.rejects(session.done);
    const ms = Date.now() - t0;
    assert.ok(ms < 5000, `seed gave up after ${ms} ms (step timeout 15 s)`);
    await assert.rejects(receiving);
  });

  it('nccl over the fake libnccl: a member that never arrives fails init at its deadline on both sides', async () => {
    const weights = randomBytes(BUCKET);
    const seed = fakeEngine(memory, weights, { loaded: true });
    const r1 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    // The fake library's multi-rank communicators never meet (as if the peer were on an unreachable host).
    const nccl = new NcclTransport({
      api: {
        ncclUniqueId: () => gpu.ncclUniqueId(),
        initCommunicator: (o) => gpu.initCommunicator(o),
      },
    });
    const port = await freePort();
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], port);
    const t0 = Date.now();
    const session = await nccl.serve({ ...ctx.seed, stepTimeoutMs: 800 });
    const [seedResult, recvResult] = await Promise.allSettled([
      session.done,
      nccl.receive({ ...ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId), stepTimeoutMs: 800 }),
    ]);
    assert.equal(seedResult.status, 'rejected');
    assert.equal(recvResult.status, 'rejected');
    assert.equal((seedResult as PromiseRejectedResult).reason.code, 'SEEDCAST_ERR_NCCL_TIMEOUT');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(seed.fills, 0, 'no bucket was filled before the communicator formed');
  });

  it('nccl direct: engines that offer it cast between themselves; receivers verify every bucket', async () => {
    const fabric = new CastFabric();
    const weights = randomBytes(4 * BUCKET + 77);
    const seed = directEngine(fabric, memory, weights, { loaded: true });
    const r1 = directEngine(fabric, memory, Buffer.alloc(weights.length), { loaded: false });
    const r2 = directEngine(fabric, memory, Buffer.alloc(weights.length), { loaded: false });
    const stats: Array<{ role: string; direct: boolean; broadcastGpuMs: number }> = [];
    const nccl = new NcclTransport({ api: noAgentComm, onStats: (s) => stats.push(s) });
    const ctx = contexts(
      seed,
      [
        { pod: 'r1', engine: r1 },
        { pod: 'r2', engine: r2 },
      ],
      await freePort(),
    );
    const session = await nccl.serve(ctx.seed);
    const progress: number[] = [];
    await Promise.all([
      nccl.receive({
        ...ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId),
        onProgress: (b) => progress.push(b),
      }),
      nccl.receive(ctx.receiver({ pod: 'r2', engine: r2 }, session.uniqueId)),
    ]);
    assert.deepEqual(
      (await session.done).map((o) => o.outcome),
      ['verified', 'verified'],
    );
    assert.ok(r1.received.equals(weights) && r2.received.equals(weights));
    assert.deepEqual([seed.casts, r1.casts, r2.casts], [1, 1, 1]);
    assert.deepEqual([seed.fills, r1.drains, r2.drains], [0, 0, 0], 'no slot traffic through the agents');
    assert.deepEqual(progress, [weights.length]);
    assert.deepEqual(stats.map((s) => [s.role, s.direct, s.broadcastGpuMs]).sort(), [
      ['receiver', true, 1.5],
      ['receiver', true, 1.5],
      ['seed', true, 1.5],
    ]);
  });

  it('nccl direct: one receiver without it keeps the whole group on the agents broadcast', async () => {
    const casts = new CastFabric();
    const fabric = new Fabric();
    const weights = randomBytes(3 * BUCKET);
    const seed = directEngine(casts, memory, weights, { loaded: true });
    const r1 = directEngine(casts, memory, Buffer.alloc(weights.length), { loaded: false });
    const r2 = fakeEngine(memory, Buffer.alloc(weights.length), { loaded: false });
    const nccl = new NcclTransport({ api: fabric });
    const ctx = contexts(
      seed,
      [
        { pod: 'r1', engine: r1 },
        { pod: 'r2', engine: r2 },
      ],
      await freePort(),
    );
    const session = await nccl.serve(ctx.seed);
    await Promise.all([
      nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId)),
      nccl.receive(ctx.receiver({ pod: 'r2', engine: r2 }, session.uniqueId)),
    ]);
    assert.deepEqual(
      (await session.done).map((o) => o.outcome),
      ['verified', 'verified'],
    );
    assert.ok(r1.received.equals(weights) && r2.received.equals(weights));
    assert.deepEqual([seed.casts, r1.casts], [0, 0]);
    assert.equal(r1.drains, 3);
  });

  it('nccl direct: a bucket whose checksum differs fails the receiver (SEEDCAST_ERR_CHECKSUM)', async () => {
    const fabric = new CastFabric();
    const weights = randomBytes(3 * BUCKET);
    const seed = directEngine(fabric, memory, weights, { loaded: true });
    const r1 = directEngine(fabric, memory, Buffer.alloc(weights.length), {
      loaded: false,
      corruptBucket: 2,
    });
    const nccl = new NcclTransport({ api: noAgentComm });
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], await freePort());
    const session = await nccl.serve(ctx.seed);
    session.done.catch(() => {});
    await assert.rejects(
      nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId)),
      checksumFailure(2),
    );
    assert.equal(await seedOutcome(session), 'failed');
  });

  it("nccl direct: a receiver lost mid-cast makes the seed abort its engine's cast at once", async () => {
    const fabric = new CastFabric();
    const weights = randomBytes(4 * BUCKET);
    const killed = new AbortController();
    const seed = directEngine(fabric, memory, weights, { loaded: true });
    const r1 = directEngine(fabric, memory, Buffer.alloc(weights.length), { loaded: false, hang: killed });
    const nccl = new NcclTransport({ api: noAgentComm });
    const ctx = contexts(seed, [{ pod: 'r1', engine: r1 }], await freePort());
    const session = await nccl.serve({ ...ctx.seed, stepTimeoutMs: 15_000 });
    const receiving = nccl.receive(ctx.receiver({ pod: 'r1', engine: r1 }, session.uniqueId, killed.signal));
    receiving.catch(() => {});
    const t0 = Date.now();
    await assert.rejects(session.done);
    const ms = Date.now() - t0;
    assert.ok(ms < 5000, `seed gave up after ${ms} ms (step timeout 15 s)`);
    assert.equal(seed.aborts, 1, "the seed's engine was told to abort its cast");
    await assert.rejects(receiving);
    assert.equal(r1.aborts, 1, "the receiver's engine was told to abort its cast");
  });

  it('refuses non-cuda slots for nccl with a clear message', async () => {
    const nccl = new NcclTransport({ api: new Fabric() });
    const host = { rank: 0, slots: [{ kind: 'host' }, { kind: 'host' }] } as unknown as EngineRank;
    const ctx = contexts(host, [], await freePort());
    await assert.rejects(nccl.serve(ctx.seed), /needs cuda staging slots/);
  });

  it('parses the GPU settings', () => {
    const base = { 'pod-name': 'p', namespace: 'n', 'pod-uid': 'u', 'pod-ip': '127.0.0.1' };
    const config = loadConfig(base, {});
    assert.equal(config.gpu, 'auto');
    assert.equal(config.cudaDevices, 'all');
    assert.equal(config.cudaSlotsPerDevice, 2);
    assert.equal(loadConfig({ ...base, gpu: 'on', 'cuda-devices': '0,1' }, {}).cudaDevices, '0,1');
    assert.throws(() => loadConfig({ ...base, 'cuda-devices': 'x' }, {}), /SEEDCAST_CUDA_DEVICES/);
    assert.throws(() => loadConfig({ ...base, gpu: 'maybe' }, {}), /SEEDCAST_GPU/);
  });
});
