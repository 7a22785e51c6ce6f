// Mapped host staging slots (native addon: mapFile, sum32x2) — what the tcp transport relies on
// to send and receive in place. Skips when the addon is not built (CI builds it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { formatChecksum, sum32x2 } from '../../src/agent/checksum.ts';
import { HostStagingMemory, mappedView } from '../../src/agent/memory/host.ts';
import { openHostMapper } from '../../src/agent/memory/host-mapping.ts';
import { DEFAULT_ADDON_PATH } from '../../src/native/loader.ts';
import { silentLogger } from '../../src/shared/log.ts';

const skip =
  existsSync(DEFAULT_ADDON_PATH) || process.env.CI ? false : 'addon not built: run `npm run build:native`';

describe('mapped host staging slots', { skip }, () => {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'seedcast-map-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('maps a slot file shared with the engine: writes either way are seen by the other', async () => {
    const mapper = await openHostMapper({ hostMapping: 'on' }, silentLogger());
    assert.ok(mapper !== undefined);
    const memory = new HostStagingMemory(dir, mapper);
    const slot = memory.allocate({ rank: 0, slot: 0, bytes: 1 << 20 });
    const view = mappedView(slot);
    assert.ok(view !== undefined && view.length === 1 << 20);
    const data = randomBytes(5000);
    view.set(data, 100); // the agent writes (a socket read)…
    const path = (slot.describe() as { path: string }).path;
    assert.ok(readFileSync(path).subarray(100, 5100).equals(data)); // …the engine sees it
    const engineSide = readFileSync(path);
    engineSide.fill(7, 0, 64);
    writeFileSync(path, engineSide); // the engine fills…
    assert.equal(view[63], 7); // …the agent sees it
    const out = Buffer.alloc(5000);
    assert.equal(slot.read(out, 100, 5000), 5000);
    assert.ok(out.equals(data));
    slot.close();
    assert.equal(mappedView(slot), undefined);
    assert.throws(() => slot.read(out, 0, 10), /closed/);
  });

  it('sum32x2 over any host range equals the reference, at every length and alignment, sync or on a pool thread', async () => {
    const mapper = await openHostMapper({ hostMapping: 'on' }, silentLogger());
    assert.ok(mapper !== undefined && mapper.sumAsync !== undefined);
    const data = randomBytes(70_001);
    for (const start of [0, 1, 2, 3, 16]) {
      for (const length of [0, 1, 3, 4, 5, 31, 32, 33, 64, 1000, 65_536, 70_001 - start]) {
        const view = data.subarray(start, start + length);
        const p = mapper.sum(view);
        assert.equal(formatChecksum(view.length, p.a, p.c), sum32x2(view), `start ${start} length ${length}`);
        assert.deepEqual(await mapper.sumAsync?.(view), p, `async, start ${start} length ${length}`);
      }
    }
  });

  it('says clearly why a file cannot be mapped', async () => {
    const { loadBinding } = await import('../../src/native/loader.ts');
    const binding = loadBinding({ addonPath: undefined });
    assert.throws(() => binding.mapFile?.(join(dir, 'missing'), 10), /mapFile: open .*missing: No such file/);
    writeFileSync(join(dir, 'short'), Buffer.alloc(10));
    assert.throws(() => binding.mapFile?.(join(dir, 'short'), 4096), /holds 10 bytes, fewer than 4096/);
    assert.throws(() => binding.mapFile?.(join(dir, 'short'), 0), /bytes must be positive/);
  });

  it('refuses a slot the staging filesystem has no room for (a mapped page there is a SIGBUS), leaving no file', async () => {
    const mapper = await openHostMapper({ hostMapping: 'on' }, silentLogger());
    const memory = new HostStagingMemory(dir, mapper);
    const stats = statfsSync(dir);
    const tooBig = stats.bavail * stats.bsize + 2 ** 30;
    assert.throws(
      () => memory.allocate({ rank: 0, slot: 1, bytes: tooBig }),
      (err: Error & { code?: string }) =>
        err.code === 'SEEDCAST_ERR_STAGING_SPACE' && /bytes free, a slot needs \d+/.test(err.message),
    );
    assert.equal(existsSync(join(dir, 'staging-r0-s1')), false);
    // A slot that fits is written through at once (no transfer pays its pages' first touch).
    const slot = memory.allocate({ rank: 0, slot: 1, bytes: 1 << 20 });
    assert.equal(
      mappedView(slot)?.every((b) => b === 0),
      true,
    );
    slot.close();
  });

  it('SEEDCAST_HOST_MAPPING=off never loads the addon; on fails clearly when it cannot', async () => {
    assert.equal(await openHostMapper({ hostMapping: 'off' }, silentLogger()), undefined);
    await assert.rejects(
      openHostMapper({ hostMapping: 'on' }, silentLogger(), {
        SEEDCAST_NATIVE_ADDON: join(dir, 'nope.node'),
      }),
      /SEEDCAST_HOST_MAPPING=on: the seedcast native addon could not be loaded/,
    );
    const fallback = await openHostMapper({ hostMapping: 'auto' }, silentLogger(), {
      SEEDCAST_NATIVE_ADDON: join(dir, 'nope.node'),
    });
    assert.equal(fallback, undefined);
  });
});
