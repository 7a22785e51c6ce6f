import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Harness, waitFor } from './harness.ts';

describe('transfers that must fail, cleanly', () => {
  const h = new Harness('failures');
  after(() => h.close());

  it('a fingerprint mismatch is refused with a clear reason before any byte moves', async () => {
    const seed = await h.pod({ name: 'fp-seed', tp: 1, size: '2Mi', state: 'loaded' });
    const receiver = await h.pod({ name: 'fp-recv', tp: 1, size: '2Mi', state: 'empty', revision: 'other' });
    const fingerprint = await h.fingerprint(seed);
    assert.notEqual(await h.fingerprint(receiver), fingerprint);
    await h.transfer({ name: 'wt-fp', fingerprint, seed, receivers: [receiver], ranks: 1 });
    const entry = await h.finished('wt-fp', receiver);
    assert.equal(entry.phase, 'Failed');
    assert.equal(entry.reason, 'FingerprintMismatch');
    assert.match(entry.message ?? '', new RegExp(fingerprint));
    assert.equal(entry.verified, false);
    assert.equal(entry.bytesDone, 0);
    const seedEntry = await waitFor(
      () => h.status('wt-fp')?.seed?.phase === 'Failed' && h.status('wt-fp').seed,
      20_000,
      'seed to give up',
    );
    assert.equal(seedEntry.bytesSent, 0);
  });

  it('an agent that crashed beside a live engine comes back: the engine registers again, keeps its weights, and serves', async () => {
    const seed = await h.pod({ name: 're-seed', tp: 2, size: '3Mi', state: 'loaded' });
    const receiver = await h.pod({ name: 're-recv', tp: 2, size: '3Mi', state: 'empty' });
    const fingerprint = await h.fingerprint(seed);
    await h.restartAgent(seed);
    await waitFor(
      () => h.agentLog(seed).includes('announced on the pod') || undefined,
      20_000,
      'the restarted agent to announce',
    );
    // The engine re-registered with the same weights: loaded, no cold load asked for.
    const ranks = h.engineStatus(seed)?.ranks ?? [];
    assert.equal(ranks.length, 2);
    assert.ok(ranks.every((r) => r.state === 'loaded' && r.registered));
    await h.transfer({ name: 'wt-restarted', fingerprint, seed, receivers: [receiver], ranks: 2 });
    const entry = await h.finished('wt-restarted', receiver);
    assert.equal(entry.phase, 'Succeeded', JSON.stringify(entry));
    assert.equal(entry.verified, true);
    assert.deepEqual(
      await h.loadedDigests(receiver),
      h.engineStatus(seed)?.ranks.map((r) => r.digest),
    );
  });

  it('an attempt that failed before touching the engine leaves weights another attempt verified', async () => {
    // Attempt 0 waits for a seed that never listens (its agent is gone) until its deadline;
    // meanwhile attempt 1 from a live seed delivers and verifies. Attempt 0's failure must not
    // tell the engine to forget (found in CI: a deleted attempt's late `complete: failed` wiped
    // weights a retry had just verified, with the pod already Ready).
    const live = await h.pod({ name: 'late-seed', tp: 1, size: '2Mi', state: 'loaded' });
    const ghost = await h.pod({ name: 'late-ghost', tp: 1, size: '2Mi', state: 'loaded' });
    const receiver = await h.pod({ name: 'late-recv', tp: 1, size: '2Mi', state: 'empty' });
    const fingerprint = await h.fingerprint(live);
    assert.equal(await h.fingerprint(ghost), fingerprint);
    ghost.agent.kill('SIGKILL');
    await h.transfer({
      name: 'wt-late-0',
      fingerprint,
      seed: ghost,
      receivers: [receiver],
      ranks: 1,
      deadlineSeconds: 8,
    });
    await h.transfer({ name: 'wt-late-1', fingerprint, seed: live, receivers: [receiver], ranks: 1 });
    const won = await h.finished('wt-late-1', receiver);
    assert.equal(won.phase, 'Succeeded', JSON.stringify(won));
    const lost = await h.finished('wt-late-0', receiver);
    assert.equal(lost.phase, 'Failed', JSON.stringify(lost));
    // A later transfer naming the verified pod again (stale or recreated) is refused untouched.
    await h.transfer({ name: 'wt-late-2', fingerprint, seed: ghost, receivers: [receiver], ranks: 1 });
    const again = await h.finished('wt-late-2', receiver);
    assert.equal(again.phase, 'Failed', JSON.stringify(again));
    assert.match(again.message ?? '', /already holds verified weights/);
    await new Promise((r) => setTimeout(r, 500)); // anything the engine was told lands by now
    const ranks = h.engineStatus(receiver)?.ranks ?? [];
    assert.equal(ranks[0]?.state, 'loaded', JSON.stringify(ranks));
    assert.equal(ranks[0]?.digest, h.engineStatus(live)?.ranks[0]?.digest);
  });

  it('a transfer failed while its seed waited for the engine: the seed never listens for it', async () => {
    // The seed serves a paced transfer (8 MiB at 2 MiB/s) while a second one naming it arrives and
    // waits for the engine; the controller fails the second meanwhile. The seed must let it go
    // when the first ends — not listen for it until its step timeout (found by the fault suite:
    // an abort that fired before the listener was added was never seen, the seed held its ports
    // for 60 s and the next transfer from it waited behind).
    const seed = await h.pod({
      name: 'busy-seed',
      tp: 1,
      size: '8Mi',
      state: 'loaded',
      agentFlags: { 'bandwidth-limit': '2Mi', 'step-timeout-ms': '30000' },
    });
    const first = await h.pod({ name: 'busy-recv-1', tp: 1, size: '8Mi', state: 'empty' });
    const second = await h.pod({ name: 'busy-recv-2', tp: 1, size: '8Mi', state: 'empty' });
    const fingerprint = await h.fingerprint(seed);
    await h.transfer({ name: 'wt-busy-1', fingerprint, seed, receivers: [first], ranks: 1 });
    await waitFor(
      () => h.status('wt-busy-1')?.seed?.phase === 'Transferring',
      15_000,
      'the first transfer sending',
    );
    await h.transfer({ name: 'wt-busy-2', fingerprint, seed, receivers: [second], ranks: 1 });
    await waitFor(async () => (await h.health(seed)).activeTransfers === 2, 10_000, 'the second waiting');
    h.setPhase('wt-busy-2', 'Failed');
    const served = await h.finished('wt-busy-1', first);
    assert.equal(served.phase, 'Succeeded', JSON.stringify(served));
    // Within a few seconds of the first ending, not the 30 s step timeout.
    await waitFor(async () => (await h.health(seed)).activeTransfers === 0, 10_000, 'the seed idle');
    const listened = h
      .agentLog(seed)
      .split('\n')
      .filter((line) => line.includes('wt-busy-2') && line.includes('seed listening'));
    assert.deepEqual(listened, [], 'never listened for the failed transfer');
  });

  it('a transfer deleted and recreated under its name: nothing of the old one is written into the new', async () => {
    // The old seed role fails ("deleted") and its final write finds no object; it must not retry
    // into the object recreated under the same name a moment later (found by the fault suite: the
    // retried "seed Failed" made the controller fail the recreated transfer at once).
    const oldSeed = await h.pod({
      name: 'gone-seed',
      tp: 1,
      size: '8Mi',
      state: 'loaded',
      agentFlags: { 'bandwidth-limit': '2Mi' },
    });
    const newSeed = await h.pod({ name: 'gone-seed-2', tp: 1, size: '8Mi', state: 'loaded' });
    const first = await h.pod({ name: 'gone-recv-1', tp: 1, size: '8Mi', state: 'empty' });
    const second = await h.pod({ name: 'gone-recv-2', tp: 1, size: '8Mi', state: 'empty' });
    const fingerprint = await h.fingerprint(oldSeed);
    await h.transfer({ name: 'wt-again', fingerprint, seed: oldSeed, receivers: [first], ranks: 1 });
    await waitFor(() => h.status('wt-again')?.seed?.phase === 'Transferring', 15_000, 'the old one sending');
    h.deleteTransfer('wt-again');
    await waitFor(
      () => h.agentLog(oldSeed).includes('the WeightTransfer was deleted'),
      10_000,
      'the old role failing',
    );
    await new Promise((r) => setTimeout(r, 200));
    await h.transfer({ name: 'wt-again', fingerprint, seed: newSeed, receivers: [second], ranks: 1 });
    const served = await h.finished('wt-again', second);
    assert.equal(served.phase, 'Succeeded', JSON.stringify(served));
    // The old role's retries (a second apart) would have landed by now.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(
      h.fragment('wt-again', oldSeed),
      undefined,
      'the old seed wrote nothing into the new object',
    );
    assert.equal(h.fragment('wt-again', first), undefined, 'nor did the old receiver');
  });

  it('a receiver without the pod-to-pod token is refused', async () => {
    const seed = await h.pod({ name: 'tok-seed', tp: 1, size: '2Mi', state: 'loaded' });
    const receiver = await h.pod({
      name: 'tok-recv',
      tp: 1,
      size: '2Mi',
      state: 'empty',
      token: 'not-the-shared-token-at-all',
    });
    const fingerprint = await h.fingerprint(seed);
    await h.transfer({ name: 'wt-tok', fingerprint, seed, receivers: [receiver], ranks: 1 });
    const entry = await h.finished('wt-tok', receiver);
    assert.equal(entry.phase, 'Failed');
    assert.match(
      entry.message ?? '',
      /SEEDCAST_ERR_UNAUTHORIZED: hello not signed with the pod-to-pod token/,
    );
    assert.equal(entry.verified, false);
    assert.equal(entry.bytesDone, 0);
  });

  it('a seed killed mid-transfer makes every receiver fail within the deadline, nothing verified', async () => {
    const seed = await h.pod({
      name: 'kill-seed',
      tp: 2,
      size: '24Mi',
      state: 'loaded',
      agentFlags: { 'bandwidth-limit': '6Mi' },
    });
    const receivers = await Promise.all(
      ['kill-a', 'kill-b'].map((name) => h.pod({ name, tp: 2, size: '24Mi', state: 'empty' })),
    );
    const fingerprint = await h.fingerprint(seed);
    for (const r of receivers) await h.fingerprint(r);
    await h.transfer({ name: 'wt-kill', fingerprint, seed, receivers, ranks: 2, deadlineSeconds: 25 });
    await waitFor(
      () => receivers.every((r) => (h.receiverEntry('wt-kill', r)?.bytesDone ?? 0) > 0),
      20_000,
      'bytes to flow',
    );
    const killedAt = Date.now();
    seed.agent.kill('SIGKILL');
    for (const r of receivers) {
      const entry = await h.finished('wt-kill', r);
      assert.equal(entry.phase, 'Failed', JSON.stringify(entry));
      assert.equal(entry.reason, 'SeedLost', JSON.stringify(entry));
      assert.equal(entry.verified, false);
      assert.ok(entry.bytesDone < entry.bytesTotal);
      const ranks = (h.receiverEntry('wt-kill', r) as unknown as { ranks: Array<{ verified: boolean }> })
        .ranks;
      assert.ok(ranks.every((rank: { verified: boolean }) => rank.verified === false));
      const engine = await waitFor(
        () => {
          const s = h.engineStatus(r);
          return s?.ranks.every(
            (rank) => rank.state === 'empty' && (rank as { lastOutcome?: string }).lastOutcome === 'failed',
          )
            ? s
            : undefined;
        },
        10_000,
        `${r.name} engine told the transfer failed`,
      );
      assert.ok(engine.ranks.every((rank) => rank.digest === undefined));
    }
    assert.ok(Date.now() - killedAt < 15_000, `receivers took ${Date.now() - killedAt} ms to fail`);
  });
});
