import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeedcastError } from '../../src/shared/errors.ts';
import { newerVersion } from '../../src/shared/informer.ts';
import { canAcquire } from '../../src/shared/leader.ts';
import { Registry } from '../../src/shared/metrics.ts';
import { WorkQueue } from '../../src/shared/queue.ts';

describe('metrics registry', () => {
  it('renders counters, gauges and histograms in the text format', () => {
    const registry = new Registry();
    const transfers = registry.counter('seedcast_transfers_total', 'Transfers by outcome.', ['outcome']);
    const seeds = registry.gauge('seedcast_seeds', 'Seeds.', ['weight_source']);
    const latency = registry.histogram('seedcast_ready_seconds', 'Time to ready.', [], [1, 10]);
    transfers.inc({ outcome: 'succeeded' });
    transfers.inc({ outcome: 'succeeded' }, 2);
    seeds.set({ weight_source: 'ns/a"b' }, 3);
    latency.observe({}, 0.5);
    latency.observe({}, 5);
    const text = registry.render();
    assert.match(
      text,
      /# TYPE seedcast_transfers_total counter\nseedcast_transfers_total\{outcome="succeeded"\} 3/,
    );
    assert.match(text, /seedcast_seeds\{weight_source="ns\/a\\"b"\} 3/);
    assert.match(text, /seedcast_ready_seconds_bucket\{le="1"\} 1\n/);
    assert.match(text, /seedcast_ready_seconds_bucket\{le="10"\} 2\n/);
    assert.match(text, /seedcast_ready_seconds_bucket\{le="\+Inf"\} 2\n/);
    assert.match(text, /seedcast_ready_seconds_sum 5.5\nseedcast_ready_seconds_count 2\n/);
  });

  it('rejects unknown labels, bad names and double registration', () => {
    const registry = new Registry();
    const c = registry.counter('a_total', 'x', ['k']);
    assert.throws(() => c.inc({ other: 'v' }), /no label other/);
    assert.throws(() => c.inc({}), /needs labels k/);
    assert.throws(() => registry.counter('a_total', 'x'), /twice/);
    assert.throws(() => registry.gauge('bad-name', 'x'), /invalid metric name/);
  });
});

describe('work queue', () => {
  it('runs one reconcile per key at a time and reprocesses a key added meanwhile', async () => {
    const running = new Set<string>();
    const calls: string[] = [];
    let overlap = false;
    const queue = new WorkQueue(
      async (key) => {
        if (running.has(key)) overlap = true;
        running.add(key);
        calls.push(key);
        await new Promise((r) => setTimeout(r, 10));
        running.delete(key);
        return undefined;
      },
      { name: 't', workers: 4 },
    );
    queue.add('a');
    queue.add('a');
    queue.add('b');
    await new Promise((r) => setTimeout(r, 2));
    queue.add('a');
    await new Promise((r) => setTimeout(r, 40));
    await queue.idle();
    assert.equal(overlap, false);
    assert.deepEqual(calls.sort(), ['a', 'a', 'b']);
    await queue.shutdown();
  });

  it('retries retryable errors with backoff and drops unretryable ones', async () => {
    const attempts = new Map<string, number>();
    const outcomes: string[] = [];
    const queue = new WorkQueue(
      async (key) => {
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        if (key === 'flaky' && n < 3) throw new Error('transient');
        if (key === 'bad') throw new SeedcastError('SEEDCAST_ERR_INVALID', 'bad input', { retryable: false });
        return undefined;
      },
      { name: 't', baseDelayMs: 5, onResult: (o) => outcomes.push(o) },
    );
    queue.add('flaky');
    queue.add('bad');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(attempts.get('flaky'), 3);
    assert.equal(attempts.get('bad'), 1);
    assert.equal(queue.failures('flaky'), 0);
    assert.ok(outcomes.includes('unretryable'));
    await queue.shutdown();
  });

  it('requeues after the requested delay', async () => {
    let n = 0;
    const queue = new WorkQueue(
      async () => {
        n += 1;
        return n === 1 ? { requeueAfterMs: 20 } : undefined;
      },
      { name: 't' },
    );
    queue.add('k');
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(n, 1);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(n, 2);
    await queue.shutdown();
  });
});

describe('leases and resource versions', () => {
  const now = Date.parse('2026-01-01T00:00:30Z');
  const table: Array<[string, Parameters<typeof canAcquire>[0], boolean]> = [
    ['no lease', undefined, true],
    ['released', { holderIdentity: null }, true],
    [
      'ours',
      { holderIdentity: 'me', renewTime: '2026-01-01T00:00:29.000000Z', leaseDurationSeconds: 15 },
      true,
    ],
    [
      'held, fresh',
      { holderIdentity: 'other', renewTime: '2026-01-01T00:00:29.000000Z', leaseDurationSeconds: 15 },
      false,
    ],
    [
      'held, expired',
      { holderIdentity: 'other', renewTime: '2026-01-01T00:00:10.000000Z', leaseDurationSeconds: 15 },
      true,
    ],
  ];
  for (const [name, spec, expected] of table) {
    it(`canAcquire: ${name}`, () => assert.equal(canAcquire(spec, 'me', now), expected));
  }
  it('compares resource versions numerically', () => {
    assert.equal(newerVersion('10', '9'), true);
    assert.equal(newerVersion('9', '10'), false);
    assert.equal(newerVersion('5', undefined), true);
  });
});
