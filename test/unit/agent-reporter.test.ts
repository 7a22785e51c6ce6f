// The agent's status reporter: progress is throttled, what others wait for is not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatusFragment, StatusSink } from '../../src/agent/cluster/types.ts';
import { StatusReporter } from '../../src/agent/reporter.ts';
import { progressInterval } from '../../src/agent/runner.ts';
import { KubeApiError } from '../../src/shared/kube.ts';
import { silentLogger } from '../../src/shared/log.ts';

function sink(failures = 0) {
  const writes: Array<{ at: number; fragment: StatusFragment }> = [];
  let failing = failures;
  const s: StatusSink & { writes: typeof writes } = {
    writes,
    async applyStatus(_transfer, fragment) {
      if (failing-- > 0) throw new Error('API server away');
      writes.push({ at: performance.now(), fragment });
    },
    async announce() {
      return undefined;
    },
  };
  return s;
}
const seed = (bytesSent: number) => ({ seed: { pod: 's', phase: 'Transferring' as const, bytesSent } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('status reporter', () => {
  it('stops at a transfer that is gone: no retry lands in an object recreated under the name', async () => {
    let exists = false;
    const writes: StatusFragment[] = [];
    const gone: StatusSink = {
      async applyStatus(_transfer, fragment) {
        if (!exists) throw new KubeApiError(404, 'NotFound', 'weighttransfers "wt" not found', 'PATCH');
        writes.push(fragment);
      },
      async announce() {
        return undefined;
      },
    };
    const r = new StatusReporter(gone, 'wt', 50, silentLogger());
    r.set(seed(1));
    const started = performance.now();
    await r.flush(5000);
    assert.ok(performance.now() - started < 1000, 'flush gives up at once');
    assert.equal(r.gone, true);
    exists = true; // recreated under the same name
    r.set(seed(2));
    await r.flush(1000);
    await sleep(100);
    assert.deepEqual(writes, []);
    // And when the runner says so (a delete event) before any write failed.
    let deleted = false;
    const out = sink();
    const muted = new StatusReporter(out, 'wt', 50, silentLogger(), () => deleted);
    deleted = true;
    muted.set(seed(3));
    await muted.flush(1000);
    assert.deepEqual(out.writes, []);
    r.stop();
    muted.stop();
  });

  it('throttles progress to one write per interval, latest state wins', async () => {
    const out = sink();
    const r = new StatusReporter(out, 'wt', 300, silentLogger());
    r.set(seed(1));
    await sleep(50);
    assert.equal(out.writes.length, 1); // the first goes out at once
    for (let i = 2; i <= 5; i++) r.set(seed(i));
    await sleep(50);
    assert.equal(out.writes.length, 1); // the rest waits for the interval…
    await sleep(350);
    assert.equal(out.writes.length, 2); // …and only the latest is written
    assert.deepEqual(out.writes[1]?.fragment, seed(5));
    r.stop();
  });

  it('an urgent set and flush go out at once, not at the next interval', async () => {
    const out = sink();
    const r = new StatusReporter(out, 'wt', 10_000, silentLogger());
    r.set(seed(1));
    await sleep(20);
    const t0 = performance.now();
    r.set({ ...seed(2), rendezvous: [{ rank: 0, address: '127.0.0.1:1' }] }, true);
    await sleep(20);
    assert.equal(out.writes.length, 2);
    assert.ok((out.writes[1]?.at ?? Infinity) - t0 < 100);
    r.set(seed(3));
    await r.flush();
    assert.equal(out.writes.length, 3);
    assert.ok(performance.now() - t0 < 1000, 'flush did not wait for the 10 s interval');
  });

  it('flush retries a failed write after a pause until it lands', async () => {
    const out = sink(2);
    const r = new StatusReporter(out, 'wt', 100, silentLogger());
    r.set(seed(7));
    await r.flush(5000);
    assert.deepEqual(out.writes.at(-1)?.fragment, seed(7));
  });

  it('the progress interval grows with the group: about 2 writes per base interval for the whole group', () => {
    const t = (n: number) => ({ spec: { receivers: Array.from({ length: n }) } });
    assert.equal(progressInterval(500, t(1)), 500);
    assert.equal(progressInterval(500, t(2)), 500);
    assert.equal(progressInterval(500, t(3)), 1000);
    assert.equal(progressInterval(500, t(16)), 4000);
    assert.equal(progressInterval(500, t(64)), 16000);
  });
});
