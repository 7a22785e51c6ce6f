import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ADDON_PATH } from '../../src/native/loader.ts';
import { Harness, type Pod, waitFor } from './harness.ts';

/** With the addon built (CI builds it), agents map their host slots unless told not to. */
const MAPPING = existsSync(DEFAULT_ADDON_PATH);
const mapped = (h: Harness, pod: Pod): boolean =>
  readFileSync(join(h.dir, `${pod.name}-agent.log`), 'utf8').includes('host staging slots are mapped');

describe('tcp transfer between agent processes', () => {
  const h = new Harness('transfer');
  let seed: Pod;
  let receivers: Pod[];

  before(async () => {
    seed = await h.pod({ name: 'seed-0', tp: 2, size: '6Mi', state: 'loaded' });
    // recv-b reads and writes its slots with positional I/O: both data paths, one wire format.
    // recv-a checksums what lands on its socket thread, recv-c on a pool thread.
    const flags: Record<string, Record<string, string>> = {
      'recv-a': { 'tcp-receive-checksum': 'inline' },
      'recv-b': { 'host-mapping': 'off' },
      'recv-c': { 'tcp-receive-checksum': 'pool' },
    };
    receivers = await Promise.all(
      ['recv-a', 'recv-b', 'recv-c'].map((name) =>
        h.pod({ name, tp: 2, size: '6Mi', state: 'empty', agentFlags: flags[name] ?? {} }),
      ),
    );
  });
  after(() => h.close());

  it('one seed and three receivers (TP=2) end with byte-identical tensors', async () => {
    const fingerprint = await h.fingerprint(seed);
    for (const r of receivers) assert.equal(await h.fingerprint(r), fingerprint);
    await h.transfer({ name: 'wt-fanout', fingerprint, seed, receivers, ranks: 2 });
    for (const r of receivers) {
      const entry = await h.finished('wt-fanout', r);
      assert.equal(entry.phase, 'Succeeded', JSON.stringify(entry));
      assert.equal(entry.verified, true);
      assert.equal(entry.bytesDone, entry.bytesTotal);
      // The pod's own record of the verification, written before the status said Succeeded.
      assert.equal(h.annotations(r)['seedcast.dev/weights-verified'], 'seed/wt-fanout');
    }
    assert.equal(h.annotations(seed)['seedcast.dev/weights-verified'], undefined, 'a seed records nothing');
    const seedDigests = h.engineStatus(seed)?.ranks.map((r) => r.digest);
    assert.equal(seedDigests?.length, 2);
    for (const r of receivers) assert.deepEqual(await h.loadedDigests(r), seedDigests);
    const seedEntry = await waitFor(
      () => h.status('wt-fanout')?.seed?.phase === 'Succeeded' && h.status('wt-fanout').seed,
      10_000,
      'seed Succeeded',
    );
    assert.ok(seedEntry.bytesSent >= 3 * 2 * 5_000_000);
    const metrics = await (await fetch(`http://127.0.0.1:${receivers[0]?.httpPort}/metrics`)).text();
    assert.match(metrics, /seedcast_agent_transfers_total\{role="receiver",outcome="succeeded"\} 1/);
    assert.equal(mapped(h, seed), MAPPING);
    assert.equal(mapped(h, receivers[0] as Pod), MAPPING);
    assert.equal(mapped(h, receivers[1] as Pod), false);
    if (MAPPING) {
      const placement = (pod: Pod): unknown =>
        readFileSync(join(h.dir, `${pod.name}-agent.log`), 'utf8')
          .split('\n')
          .filter((line) => line.includes('tcp receive checksums'))
          .map((line) => (JSON.parse(line) as { receiveChecksum: unknown }).receiveChecksum)[0];
      assert.equal(placement(receivers[0] as Pod), 'inline');
      assert.equal(placement(receivers[2] as Pod), 'pool');
    }
  });

  it('a seed with positional I/O serves a receiver with mapped slots', async () => {
    const plain = await h.pod({
      name: 'seed-plain',
      tp: 1,
      size: '5Mi',
      state: 'loaded',
      agentFlags: { 'host-mapping': 'off' },
    });
    const target = await h.pod({ name: 'recv-mapped', tp: 1, size: '5Mi', state: 'empty' });
    const fingerprint = await h.fingerprint(plain);
    await h.transfer({ name: 'wt-mixed', fingerprint, seed: plain, receivers: [target], ranks: 1 });
    const entry = await h.finished('wt-mixed', target);
    assert.equal(entry.phase, 'Succeeded', JSON.stringify(entry));
    assert.deepEqual(
      await h.loadedDigests(target),
      h.engineStatus(plain)?.ranks.map((r) => r.digest),
    );
    assert.equal(mapped(h, plain), false);
    assert.equal(mapped(h, target), MAPPING);
  });
});
