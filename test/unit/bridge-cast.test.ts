// Direct casts over the real engine bridge (BridgeServer, frames, zod on both directions): an
// engine that offers `direct` registers, the agent's `cast` request gets the engine's `cast-done`
// as its reply, `abort-cast` is acknowledged, and a reply that does not fit the bucket plan is
// refused. The engine side is a raw socket client here; only the cuda staging memory is a test
// double (no GPU in CI: slots are never touched by a cast's bookkeeping).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { rankFingerprint } from '../../src/agent/bridge/fingerprint.ts';
import { encodeFrame, FrameDecoder } from '../../src/agent/bridge/frames.ts';
import { BridgeServer, type EngineRank } from '../../src/agent/bridge/server.ts';
import type { StagingMemory, StagingSlot } from '../../src/agent/memory/types.ts';
import { silentLogger } from '../../src/shared/log.ts';

const cudaDouble: StagingMemory = {
  kind: 'cuda',
  allocate: ({ slot, bytes, device }): StagingSlot => ({
    slot,
    kind: 'cuda',
    bytes,
    describe: () => ({ slot, kind: 'cuda', device: device ?? 0, ipcHandle: 'aGFuZGxl', bytes }),
    read: () => 0,
    write: () => {},
    close: () => {},
  }),
};

const inputs = {
  engine: 'test',
  engineVersion: '1',
  model: 'm',
  revision: 'r',
  tensorParallel: 1,
  pipelineParallel: 1,
  rank: 0,
  dtype: 'uint8',
  quantization: 'none',
};
const tensors = [
  { name: 'a', dtype: 'uint8', shape: [3000], bytes: 3000 },
  { name: 'b', dtype: 'uint8', shape: [1000], bytes: 1000 },
];

/** A scripted engine: answers each agent request with `answer(request)` (undefined: no reply). */
async function engine(
  socketPath: string,
  answer: (request: Record<string, unknown>) => Record<string, unknown> | undefined,
  direct: boolean,
): Promise<{ socket: Socket; requests: Array<Record<string, unknown>> }> {
  const socket = connect(socketPath);
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const requests: Array<Record<string, unknown>> = [];
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      if (frame.kind !== 'json') continue;
      const m = frame.value as Record<string, unknown>;
      requests.push(m);
      if (m.type === 'welcome' || m.type === 'error') continue;
      const reply = answer(m);
      if (reply !== undefined) socket.write(encodeFrame({ v: 1, id: m.id, ...reply }));
    }
  });
  socket.write(
    encodeFrame({
      v: 1,
      type: 'hello',
      id: 1,
      rank: 0,
      ranks: 1,
      memory: 'cuda',
      device: 0,
      fingerprintInputs: inputs,
      tensors,
      fingerprint: rankFingerprint(inputs, tensors),
      state: 'empty',
      ...(direct ? { direct: { transport: 'nccl' } } : {}),
    }),
  );
  return { socket, requests };
}

/** Every scripted engine's socket: destroyed after each test, so a failed assertion cannot hang close(). */
const sockets: Socket[] = [];

describe('direct casts over the engine bridge', () => {
  let dir: string;
  let server: BridgeServer;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sc-cast-'));
    server = new BridgeServer({
      socketPath: join(dir, 'a.sock'),
      bucketBytes: 1024,
      memory: new Map([['cuda', cudaDouble]]),
      log: silentLogger(),
    });
    await server.listen();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function registered(): Promise<EngineRank> {
    for (let i = 0; i < 200; i++) {
      const rank = server.engine()?.ranks[0];
      if (rank !== undefined) return rank;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the engine did not register');
  }
  const castOptions = {
    role: 'receive' as const,
    uniqueId: Buffer.alloc(128, 1).toString('base64'),
    commRank: 1,
    nranks: 2,
    initTimeoutMs: 1000,
    timeoutMs: 3000,
  };

  it('a cast is answered by cast-done; abort-cast by ack', async () => {
    const sums = [
      '1024:0000000100000002',
      '1024:0000000300000004',
      '1024:0000000500000006',
      '928:0000000700000008',
    ];
    const { requests } = await engine(
      join(dir, 'a.sock'),
      (m) =>
        m.type === 'cast'
          ? { type: 'cast-done', bytes: 4000, checksums: sums, stats: { initMs: 3, gpuMs: 1.25 } }
          : { type: 'ack' },
      true,
    );
    const rank = await registered();
    assert.equal(rank.direct, true);
    const done = await rank.cast(castOptions);
    assert.deepEqual(done.checksums, sums);
    assert.equal(done.stats?.gpuMs, 1.25);
    const sent = requests.find((m) => m.type === 'cast') as Record<string, unknown>;
    assert.equal(sent.role, 'receive');
    assert.equal(sent.commRank, 1);
    await rank.abortCast(1000);
    assert.ok(requests.some((m) => m.type === 'abort-cast'));
  });

  it('a cast-done that does not fit the bucket plan, or is malformed, fails the cast clearly', async () => {
    let reply: Record<string, unknown> = {
      type: 'cast-done',
      bytes: 4000,
      checksums: ['1024:0000000100000002'],
    };
    await engine(join(dir, 'a.sock'), () => reply, true);
    const rank = await registered();
    await assert.rejects(rank.cast(castOptions), /4000 bytes in 1 buckets, the plan has 4000 in 4/);
    reply = { type: 'cast-done', bytes: 4000, checksums: ['not-a-checksum'] };
    await assert.rejects(
      rank.cast(castOptions),
      /invalid "cast-done" message: checksums\[0\]: must be a sum32x2 checksum/,
    );
  });

  it('an engine without direct is not offered casts', async () => {
    await engine(join(dir, 'a.sock'), () => undefined, false);
    const rank = await registered();
    assert.equal(rank.direct, false);
  });
});
