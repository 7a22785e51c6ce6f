// The addon without a GPU (CI): it loads, says clearly that there is no CUDA, refuses unknown NCCL
// versions, and — against the fake libcuda/libnccl built next to it — runs every call path
// (worker threads, communicator threads, deadlines, aborts) on host memory.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeConfigFromEnv } from '../../src/native/config.ts';
import { ncclSearch } from '../../src/native/libraries.ts';
import { DEFAULT_ADDON_PATH, loadBinding } from '../../src/native/loader.ts';

const BUILD = dirname(DEFAULT_ADDON_PATH);
const FAKE_CUDA = join(BUILD, 'libseedcast_fake_cuda.so');
const FAKE_NCCL = join(BUILD, 'libseedcast_fake_nccl.so');
const INDEX = fileURLToPath(new URL('../../src/native/index.ts', import.meta.url));
const built = existsSync(DEFAULT_ADDON_PATH);
// CI builds the addon first (npm run build:native); elsewhere an unbuilt tree skips instead of failing.
const skip = built || process.env.CI ? false : 'addon not built: run `npm run build:native`';

/** Runs a script in a fresh process (the native runtime is process-wide) and returns its last JSON line. */
function child(body: string, env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const code = `import * as n from ${JSON.stringify(INDEX)};\nconst out = {};\ntry {\n${body}\n} catch (e) { out.thrown = { code: e.code, message: e.message }; }\nconsole.log(JSON.stringify(out));`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code],
      { env: { ...process.env, SEEDCAST_GPU_PROBE: '0', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve(JSON.parse(line));
        } catch {
          reject(new Error(`child failed: ${err?.message}\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}

const FAKE = { SEEDCAST_CUDA_PATH: FAKE_CUDA, SEEDCAST_NCCL_PATH: FAKE_NCCL };

describe('native addon without a GPU', { skip }, () => {
  it('loads and exposes the Node-API binding', () => {
    const binding = loadBinding({ addonPath: undefined });
    assert.equal(binding.napiVersion, 8);
    assert.equal(typeof binding.openLibraries, 'function');
    assert.deepEqual(binding.status(), { opened: false });
  });

  it('reports a missing libcuda as SEEDCAST_ERR_NO_CUDA, listing what it tried', async () => {
    const out = await child('await n.Gpu.open();', { SEEDCAST_CUDA_PATH: '/nonexistent/libcuda.so.1' });
    const thrown = out.thrown as { code: string; message: string };
    assert.equal(thrown.code, 'SEEDCAST_ERR_NO_CUDA');
    assert.match(thrown.message, /\/nonexistent\/libcuda\.so\.1/);
    assert.match(thrown.message, /SEEDCAST_CUDA_PATH/);
  });

  it('says so through the child-process probe too', async () => {
    const out = await child(
      'out.probe = await n.probeGpu({ probeTimeoutMs: 30000 }); await n.Gpu.open({ probe: true });',
      {
        SEEDCAST_CUDA_PATH: '/nonexistent/libcuda.so.1',
      },
    );
    const probe = out.probe as { ok: boolean; status: { cuda: { ok: boolean; errorCode: string } } };
    assert.equal(probe.ok, true);
    assert.equal(probe.status.cuda.ok, false);
    assert.equal(probe.status.cuda.errorCode, 'SEEDCAST_ERR_NO_CUDA');
    assert.equal((out.thrown as { code: string }).code, 'SEEDCAST_ERR_NO_CUDA');
  });

  it('reports no CUDA on this machine when it has no driver', async (t) => {
    const out = await child(
      'out.status = await n.loadBinding({}).openLibraries({ cuda: n.cudaSearch(n.nativeConfigFromEnv()), nccl: n.ncclSearch(n.nativeConfigFromEnv()) });',
    );
    const status = out.status as { cuda: { ok: boolean; errorCode?: string } };
    if (status.cuda.ok) t.skip('this machine has a CUDA driver');
    else assert.equal(status.cuda.errorCode, 'SEEDCAST_ERR_NO_CUDA');
  });

  for (const [version, text] of [
    [30000, '3.0.0'],
    [21500, '2.15.0'],
  ] as const) {
    it(`refuses NCCL ${text} with SEEDCAST_ERR_NO_NCCL`, async () => {
      const out = await child(
        `const gpu = await n.Gpu.open(); out.nccl = gpu.nccl;
         await gpu.initCommunicator({ uniqueId: Buffer.alloc(128), rank: 0, nranks: 1, device: 0, timeoutMs: 1000 });`,
        { ...FAKE, FAKE_NCCL_VERSION: String(version) },
      );
      const nccl = out.nccl as { ok: boolean; errorCode: string; error: string; version: number };
      assert.equal(nccl.ok, false);
      assert.equal(nccl.errorCode, 'SEEDCAST_ERR_NO_NCCL');
      assert.match(nccl.error, new RegExp(`NCCL ${text.replaceAll('.', '\\.')}`));
      assert.equal((out.thrown as { code: string }).code, 'SEEDCAST_ERR_NO_NCCL');
    });
  }

  it('runs buffers, copies, packing, checksums and IPC end to end on the fake driver', async () => {
    const out = await child(
      `const gpu = await n.Gpu.open();
       out.nccl = gpu.nccl.version;
       const host = Buffer.alloc(1 << 20); for (let i = 0; i < host.length; i++) host[i] = (i * 131 + 7) & 255;
       const dev = await gpu.allocDevice(0, host.length);
       await dev.copyFromHost(host);
       out.sumDevice = await dev.checksum(3, 100001);
       out.sumHost = n.sum32x2(host.subarray(3, 100004));
       const pinned = await gpu.allocPinned(host.length);
       await dev.copyToHost(pinned);
       out.roundTrip = pinned.view().equals(host);
       const bucket = await gpu.allocDevice(0, 3000);
       await gpu.packBucket(bucket, 0, [{ buffer: dev, offset: 10, bytes: 1000 }, { buffer: dev, offset: 5000, bytes: 2000 }]);
       const back = Buffer.alloc(3000); await bucket.copyToHost(back);
       out.packed = back.equals(Buffer.concat([host.subarray(10, 1010), host.subarray(5000, 7000)]));
       const target = await gpu.allocDevice(0, 3000);
       await gpu.unpackBucket(bucket, 1000, [{ buffer: target, offset: 100, bytes: 2000 }]);
       const t2 = Buffer.alloc(2000); await target.copyToHost(t2, { srcOffset: 100 });
       out.unpacked = t2.equals(host.subarray(5000, 7000));
       const handle = await dev.ipcHandle();
       out.handleBytes = handle.length;
       try { await dev.copyToHost(Buffer.alloc(10), { srcOffset: host.length - 5, bytes: 10 }); } catch (e) { out.rangeError = e.code; }
       await dev.free();
       try { await dev.checksum(); } catch (e) { out.freedError = e.code; }`,
      FAKE,
    );
    assert.equal(out.thrown, undefined, JSON.stringify(out.thrown));
    assert.equal(out.nccl, 22809);
    assert.equal(out.sumDevice, out.sumHost);
    assert.equal(out.roundTrip, true);
    assert.equal(out.packed, true);
    assert.equal(out.unpacked, true);
    assert.equal(out.handleBytes, 64);
    assert.equal(out.rangeError, 'SEEDCAST_ERR_INVALID');
    assert.equal(out.freedError, 'SEEDCAST_ERR_INVALID');
  });

  it('free() while copies and checksums on the buffer are still running waits for them (no use-after-free)', async () => {
    // Regression: free() used to release the memory at once, under jobs already queued on other
    // worker threads; on the fake driver that wrote into freed heap memory (glibc aborted with
    // "free(): corrupted unsorted chunks" or the process segfaulted).
    const out = await child(
      `const gpu = await n.Gpu.open();
       const bytes = 32 << 20;
       const host = Buffer.alloc(bytes); for (let i = 0; i < bytes; i += 4096) host[i] = (i >> 12) & 255;
       const want = n.sum32x2(host);
       out.rounds = 0; out.sums = true; out.freed = true;
       for (let round = 0; round < 6; round++) {
         const src = await gpu.allocDevice(0, bytes);
         const dst = await gpu.allocDevice(0, bytes);
         await src.copyFromHost(host);
         const ops = [dst.copyFromHost(host), dst.copyFromDevice(src), src.checksum(), dst.fill(7, 0, 4096), dst.checksum()];
         const frees = [src.free(), dst.free()];
         out.freed &&= src.freed && dst.freed;
         const settled = await Promise.allSettled(ops);
         await Promise.all(frees);
         for (const s of settled) if (s.status === 'rejected') throw s.reason;
         out.sums &&= settled[2].value === want;
         try { await dst.checksum(); } catch (e) { out.freedError = e.code; }
         out.rounds++;
       }`,
      FAKE,
    );
    assert.equal(out.thrown, undefined, JSON.stringify(out.thrown));
    assert.equal(out.rounds, 6);
    assert.equal(out.freed, true);
    assert.equal(out.sums, true);
    assert.equal(out.freedError, 'SEEDCAST_ERR_INVALID');
  });

  it('aborts a communicator whose peer never arrives at its deadline, and stays healthy', async () => {
    const out = await child(
      `const gpu = await n.Gpu.open();
       const id = await gpu.ncclUniqueId();
       const t0 = Date.now();
       try { await gpu.initCommunicator({ uniqueId: id, rank: 0, nranks: 2, device: 0, timeoutMs: 300 }); }
       catch (e) { out.timeout = { code: e.code, ms: Date.now() - t0, message: e.message }; }
       const comm = await gpu.initCommunicator({ uniqueId: id, rank: 0, nranks: 1, device: 0, timeoutMs: 2000 });
       // NCCL connects its ring in the first collective: init pays for it with a small broadcast.
       out.connected = { initMs: comm.initMs, connectMs: comm.connectMs };
       const lazy = await gpu.initCommunicator({ uniqueId: id, rank: 0, nranks: 1, device: 0, timeoutMs: 2000, connect: false });
       out.lazyConnectMs = lazy.connectMs;
       await lazy.close({ timeoutMs: 1000 });
       const buf = await gpu.allocDevice(0, 4096);
       out.broadcast = await comm.broadcast([buf, { buffer: buf, offset: 1024, bytes: 1024 }], { root: 0, timeoutMs: 2000 });
       out.closed = await comm.close({ timeoutMs: 1000 });
       out.phase = comm.phase;
       const pending = gpu.initCommunicator({ uniqueId: id, rank: 0, nranks: 2, device: 0, timeoutMs: 60000 });
       // abort() needs the communicator object, which a pending init has not returned yet: use a
       // short deadline instead and check the error is the timeout, not a hang.
       out.pendingCode = await pending.then(() => 'resolved', (e) => e.code).catch(() => 'x');`.replace(
        'timeoutMs: 60000',
        'timeoutMs: 200',
      ),
      FAKE,
    );
    assert.equal(out.thrown, undefined, JSON.stringify(out.thrown));
    const timeout = out.timeout as { code: string; ms: number; message: string };
    assert.equal(timeout.code, 'SEEDCAST_ERR_NCCL_TIMEOUT');
    assert.ok(timeout.ms >= 290 && timeout.ms < 5000, `aborted after ${timeout.ms} ms`);
    assert.match(timeout.message, /aborted/);
    const connected = out.connected as { initMs: number; connectMs: number };
    assert.ok(connected.initMs > 0 && connected.connectMs > 0, JSON.stringify(connected));
    assert.equal(out.lazyConnectMs, 0);
    assert.deepEqual(out.broadcast, { bytes: 5120, gpuMs: (out.broadcast as { gpuMs: number }).gpuMs });
    assert.deepEqual(out.closed, { aborted: false });
    assert.equal(out.phase, 'closed');
    assert.equal(out.pendingCode, 'SEEDCAST_ERR_NCCL_TIMEOUT');
  });

  it('moves a device range through pinned buffers and a socket (tcp-over-cuda)', async () => {
    const out = await child(
      `const net = await import('node:net');
       const gpu = await n.Gpu.open();
       const bytes = 5_000_003;
       const src = await gpu.allocDevice(0, bytes);
       const host = Buffer.alloc(bytes); for (let i = 0; i < bytes; i++) host[i] = (i * 7 + (i >> 11)) & 255;
       await src.copyFromHost(host);
       const dst = await gpu.allocDevice(0, bytes);
       const pinA = [await gpu.allocPinned(1 << 20), await gpu.allocPinned(1 << 20)];
       const pinB = [await gpu.allocPinned(1 << 19), await gpu.allocPinned(1 << 19)];
       const server = net.createServer();
       await new Promise((r) => server.listen(0, '127.0.0.1', r));
       const received = new Promise((resolve, reject) => server.once('connection', async (sock) => {
         try {
           const w = new n.DeviceWriter(dst, { pinned: pinB });
           for await (const data of sock) await w.write(data);
           await w.finish(); resolve(w.received);
         } catch (e) { reject(e); }
       }));
       const client = net.connect(server.address().port, '127.0.0.1');
       await new Promise((r) => client.once('connect', r));
       out.sent = await n.sendDeviceRange(client, src, { pinned: pinA });
       client.end();
       out.received = await received;
       server.close();
       out.same = (await src.checksum()) === (await dst.checksum());
       out.hostSum = n.sum32x2(host) === (await dst.checksum());`,
      FAKE,
    );
    assert.equal(out.thrown, undefined, JSON.stringify(out.thrown));
    assert.equal(out.sent, 5_000_003);
    assert.equal(out.received, 5_000_003);
    assert.equal(out.same, true);
    assert.equal(out.hostSum, true);
  });
});

describe('native loader and library search', () => {
  it('names every path it tried and how to build when the addon is missing', () => {
    assert.throws(
      () => loadBinding({ addonPath: '/nonexistent/seedcast_native.node' }),
      (err: Error & { code?: string }) =>
        err.code === 'SEEDCAST_ERR_NATIVE_LOAD' &&
        err.message.includes('/nonexistent/seedcast_native.node') &&
        err.message.includes('npm run build:native'),
    );
  });

  it("finds PyTorch's nvidia-nccl wheel after the override and before the system", () => {
    const tree: Record<string, string[]> = {
      '/opt/torch/.venv/bin': ['python3'],
      '/opt/torch/.venv/lib': ['python3.12'],
      '/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib': ['libnccl.so.2'],
    };
    const list = (dir: string) => tree[dir] ?? [];
    const config = nativeConfigFromEnv({ PATH: '/opt/torch/.venv/bin:/usr/bin' });
    const search = ncclSearch(config, list);
    assert.equal(search.override, undefined);
    assert.deepEqual(search.candidates, [
      '/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2',
    ]);
    assert.deepEqual(search.systemNames, ['libnccl.so.2', 'libnccl.so']);
    assert.equal(search.loadedPrefix, 'libnccl.so');
    const overridden = ncclSearch(nativeConfigFromEnv({ SEEDCAST_NCCL_PATH: '/x/libnccl.so.2' }), list);
    assert.equal(overridden.override, '/x/libnccl.so.2');
  });
});
