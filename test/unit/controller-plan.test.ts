import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Annotations, WEIGHTS_READY } from '../../src/api/v1alpha1/index.ts';
import {
  allocatePorts,
  BATCH_WINDOW_CAP,
  DeletionCost,
  type ObservedPod,
  PROGRESS_WRITE_MS,
  planSource,
  proximity,
  type SourcePlan,
} from '../../src/controller/weightsource/plan.ts';
import {
  FP,
  input,
  makePod,
  makeTransfer,
  ref,
  sourceSpec,
  T0,
  transferPolicy,
} from './controller-builders.ts';

const condition = (plan: SourcePlan, pod: string) => plan.pods.find((p) => p.pod === pod)?.condition;
const seedOf = (plan: SourcePlan, i = 0) => plan.create[i]?.spec.source.seed?.pod;
const receiversOf = (plan: SourcePlan, i = 0) => plan.create[i]?.spec.receivers.map((r) => r.pod);

describe('seed choice', () => {
  const zone = (z: string, clique?: string) => ({
    'topology.kubernetes.io/zone': z,
    ...(clique === undefined ? {} : { 'seedcast.dev/nvlink-domain': clique }),
  });
  const table: Array<{
    name: string;
    seeds: ObservedPod[];
    receiver: ObservedPod;
    expect: string | undefined;
  }> = [
    {
      name: 'prefers the same node',
      seeds: [
        makePod('s-far').seed().on('n2', zone('a')).obj(),
        makePod('s-near').seed().on('n1', zone('a')).obj(),
      ],
      receiver: makePod('r').on('n1', zone('a')).obj(),
      expect: 's-near',
    },
    {
      name: 'then the nearest topology key (NVLink domain before zone)',
      seeds: [
        makePod('s-zone').seed().on('n2', zone('a', 'x')).obj(),
        makePod('s-clique').seed().on('n3', zone('b', 'c1')).obj(),
      ],
      receiver: makePod('r').on('n1', zone('a', 'c1')).obj(),
      expect: 's-clique',
    },
    {
      name: 'then the zone',
      seeds: [
        makePod('s-other').seed().on('n2', zone('b')).obj(),
        makePod('s-zone').seed().on('n3', zone('a')).obj(),
      ],
      receiver: makePod('r').on('n1', zone('a')).obj(),
      expect: 's-zone',
    },
    {
      name: 'ignores seeds of another fingerprint',
      seeds: [
        makePod('s-other-fp').seed().fingerprint('fp-b').on('n1').obj(),
        makePod('s').seed().on('n9').obj(),
      ],
      receiver: makePod('r').on('n1').obj(),
      expect: 's',
    },
    {
      name: 'ignores seeds that are terminating or not Ready',
      seeds: [
        makePod('s-deleting').seed().deleting().obj(),
        { ...makePod('s-not-ready').seed().obj(), podReady: false },
        makePod('s-ok').seed().on('n5').obj(),
      ],
      receiver: makePod('r').on('n1').obj(),
      expect: 's-ok',
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const plan = planSource(input([...row.seeds, row.receiver]));
      assert.equal(seedOf(plan), row.expect);
      assert.deepEqual(receiversOf(plan), ['r']);
    });
  }

  it('prefers the seed with the fewest active transfers, never beyond maxConcurrentPerSeed', () => {
    const spec = sourceSpec(transferPolicy({ maxConcurrentPerSeed: 1, maxReceiversPerGroup: 1 }));
    const a = makePod('a').seed().obj();
    const b = makePod('b').seed().obj();
    const busy = makePod('busy').obj();
    const active = makeTransfer('t-busy', { source: { type: 'Seed', seed: ref(a) }, receivers: [ref(busy)] });
    const r1 = makePod('r1').created(1).obj();
    const r2 = makePod('r2').created(2).obj();
    const plan = planSource(input([a, b, busy, r1, r2], [active], { spec }));
    assert.deepEqual(
      plan.create.map((t) => [t.spec.source.seed?.pod, t.spec.receivers[0]?.pod]),
      [['b', 'r1']],
    );
    assert.equal(condition(plan, 'r2')?.reason, 'WaitingForSeed');
    assert.match(condition(plan, 'r2')?.message ?? '', /busy/);
  });

  it('proximity levels', () => {
    const keys = ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'];
    const r = makePod('r').on('n1', { 'topology.kubernetes.io/zone': 'a' }).obj();
    assert.equal(proximity(r, makePod('s').on('n1').obj(), keys), 0);
    assert.equal(proximity(r, makePod('s').on('n2', { 'topology.kubernetes.io/zone': 'a' }).obj(), keys), 2);
    assert.equal(proximity(r, makePod('s').on('n2').obj(), keys), 3);
  });
});

describe('fan-out batching', () => {
  const seed = makePod('seed').seed().obj();
  it('holds receivers while announcements keep coming within the window, then sends one group', () => {
    const spec = sourceSpec(transferPolicy({ batchWindowSeconds: 5, maxReceiversPerGroup: 8 }));
    const pods = [
      seed,
      makePod('r1').announced(0).obj(),
      makePod('r2').announced(2000).obj(),
      makePod('r3').announced(4000).obj(),
    ];
    const early = planSource(input(pods, [], { spec, now: T0 + 5000 }));
    assert.equal(early.create.length, 0, 'the window slides: r3 announced 1 s ago');
    assert.equal(early.requeueAfterMs, 4000);
    assert.match(condition(early, 'r1')?.message ?? '', /batching/);
    const due = planSource(input(pods, [], { spec, now: T0 + 9000 }));
    assert.equal(due.create.length, 1);
    assert.deepEqual(receiversOf(due), ['r1', 'r2', 'r3']);
  });

  it('bounds the sliding window, and keeps it open while pods of the source are still starting', () => {
    const spec = sourceSpec(transferPolicy({ batchWindowSeconds: 1, maxReceiversPerGroup: 8 }));
    const starting = makePod('r9').unannounced().obj();
    const pods = [seed, makePod('r1').announced(0).obj(), starting];
    const held = planSource(input(pods, [], { spec, now: T0 + 2000 }));
    assert.equal(held.create.length, 0, 'r9 has no agent yet: wait for it');
    const capped = planSource(input(pods, [], { spec, now: T0 + BATCH_WINDOW_CAP * 1000 }));
    assert.deepEqual(receiversOf(capped), ['r1'], 'but never longer than the cap');
  });

  it('sends at once when a group is full, and splits at maxReceiversPerGroup', () => {
    const spec = sourceSpec(
      transferPolicy({ batchWindowSeconds: 60, maxReceiversPerGroup: 2, maxConcurrentPerSeed: 2 }),
    );
    const pods = [seed, ...['r1', 'r2', 'r3'].map((n, i) => makePod(n).announced(i).obj())];
    const plan = planSource(input(pods, [], { spec, now: T0 + 10 }));
    assert.deepEqual(
      plan.create.map((t) => t.spec.receivers.map((r) => r.pod)),
      [['r1', 'r2'], ['r3']],
    );
    assert.notDeepEqual(plan.create[0]?.spec.ports, plan.create[1]?.spec.ports);
  });
});

describe('cold start', () => {
  const receivers = () => ['a', 'b', 'c'].map((n, i) => makePod(n).created(i).obj());
  it('Single: one pod per fingerprint loads from storage, the others wait', () => {
    const plan = planSource(input(receivers()));
    assert.equal(plan.create.length, 1);
    assert.equal(plan.create[0]?.spec.source.type, 'Storage');
    assert.deepEqual(receiversOf(plan), ['a']);
    assert.equal(condition(plan, 'b')?.reason, 'WaitingForSeed');
    assert.equal(plan.source?.conditions[0]?.reason, 'ColdStarting');
  });

  it('Single: one cold load per fingerprint, two fingerprints load in parallel', () => {
    const pods = [...receivers(), makePod('x').fingerprint('fp-b').created(5).obj()];
    const plan = planSource(input(pods));
    assert.deepEqual(plan.create.map((t) => t.spec.receivers[0]?.pod).sort(), ['a', 'x']);
  });

  it('Single: nobody else loads while a storage transfer runs or its pod is not Ready yet', () => {
    const [a, b] = receivers() as [ObservedPod, ObservedPod];
    const loading = makeTransfer('t-a', { source: { type: 'Storage' }, receivers: [ref(a)] });
    assert.equal(planSource(input([a, b], [loading])).create.length, 0);
    const verifiedNotReady: ObservedPod = { ...a, weightsReady: { status: 'True', reason: 'ColdLoaded' } };
    assert.equal(planSource(input([verifiedNotReady, b])).create.length, 0);
  });

  it('Single: after maxWaitSeconds the waiting pods load from storage too', () => {
    const spec = sourceSpec({ ...transferPolicy({}), coldStart: { policy: 'Single', maxWaitSeconds: 30 } });
    const [a, b] = receivers() as [ObservedPod, ObservedPod];
    const loading = makeTransfer('t-a', { source: { type: 'Storage' }, receivers: [ref(a)] });
    const before = planSource(input([a, b], [loading], { spec, now: T0 + 20_000 }));
    assert.equal(before.create.length, 0);
    assert.equal(before.requeueAfterMs, 10_001);
    const after = planSource(input([a, b], [loading], { spec, now: T0 + 31_000 }));
    assert.deepEqual(receiversOf(after), ['b']);
    assert.equal(after.create[0]?.spec.source.type, 'Storage');
  });

  it('All: every pod loads from storage', () => {
    const spec = sourceSpec({ ...transferPolicy({}), coldStart: { policy: 'All', maxWaitSeconds: 30 } });
    const plan = planSource(input(receivers(), [], { spec }));
    assert.equal(plan.create.filter((t) => t.spec.source.type === 'Storage').length, 3);
  });
});

describe('ports', () => {
  it('allocates the lowest free ports on seed and receivers', () => {
    assert.deepEqual(
      allocatePorts({ start: 100, count: 4 }, 2, [new Set([100]), new Set([102])]),
      [101, 103],
    );
    assert.equal(allocatePorts({ start: 100, count: 2 }, 2, [new Set([100])]), undefined);
  });

  it('never reuses a port of a live transfer on the same pod, derived from the transfers alone', () => {
    const spec = sourceSpec({
      ...transferPolicy({ maxConcurrentPerSeed: 2, maxReceiversPerGroup: 1 }),
      layout: { tensorParallel: 2 },
    });
    const seed = makePod('seed').seed().obj();
    const old = makePod('old').obj();
    const active = makeTransfer('t-old', {
      source: { type: 'Seed', seed: ref(seed) },
      receivers: [ref(old)],
      ranks: 2,
      ports: [
        { rank: 0, port: 29500 },
        { rank: 1, port: 29501 },
      ],
    });
    const plan = planSource(input([seed, old, makePod('r').obj()], [active], { spec }));
    assert.deepEqual(plan.create[0]?.spec.ports, [
      { rank: 0, port: 29502 },
      { rank: 1, port: 29503 },
    ]);
  });

  it('an exhausted range waits with a condition and one event, not a failure', () => {
    const spec = sourceSpec(transferPolicy({ maxConcurrentPerSeed: 2, ports: { start: 29500, count: 1 } }));
    const seed = makePod('seed').seed().obj();
    const old = makePod('old').obj();
    const active = makeTransfer('t-old', {
      source: { type: 'Seed', seed: ref(seed) },
      receivers: [ref(old)],
    });
    const plan = planSource(input([seed, old, makePod('r').obj()], [active], { spec }));
    assert.equal(plan.create.length, 0);
    assert.equal(condition(plan, 'r')?.reason, 'WaitingForSeed');
    assert.match(condition(plan, 'r')?.message ?? '', /exhausted/);
    assert.equal(plan.source?.conditions[1]?.status, 'True');
    assert.match(plan.source?.conditions[1]?.message ?? '', /^spec\.transfer\.ports/);
    assert.equal(plan.events.filter((e) => e.reason === 'PortsExhausted').length, 1);
  });
});

describe('failures and retries', () => {
  const a = makePod('a').seed().obj();
  const b = makePod('b').seed().obj();
  const r = makePod('r').obj();
  const failedFrom = (seed: ObservedPod, attempt: number, reason = 'SeedLost') =>
    makeTransfer(
      `t${attempt}`,
      { source: { type: 'Seed', seed: ref(seed) }, receivers: [ref(r)], attempt },
      {
        phase: 'Failed',
        reason,
        completionTime: new Date(T0).toISOString(),
      },
    );

  it('fails a transfer past its deadline, once', () => {
    const t = makeTransfer('t', {
      source: { type: 'Seed', seed: ref(a) },
      receivers: [ref(r)],
      deadline: new Date(T0 + 5000).toISOString(),
    });
    const plan = planSource(input([a, b, r], [t]));
    assert.equal(plan.statuses[0]?.status.phase, 'Failed');
    assert.equal(plan.statuses[0]?.status.reason, 'DeadlineExceeded');
    assert.deepEqual(
      plan.finished.map((f) => f.reason),
      ['DeadlineExceeded'],
    );
    assert.ok(plan.events.some((e) => e.reason === 'TransferFailed'));
  });

  it('fails a transfer whose seed is gone and retries from another seed', () => {
    const t = makeTransfer('t', { source: { type: 'Seed', seed: ref(a) }, receivers: [ref(r)] });
    const plan = planSource(input([{ ...a, deleting: true }, b, r], [t]));
    assert.equal(plan.statuses[0]?.status.reason, 'SeedLost');
    assert.equal(seedOf(plan), 'b');
    assert.equal(plan.create[0]?.spec.attempt, 1);
    assert.ok(plan.events.some((e) => e.reason === 'RetryScheduled'));
  });

  it('an agent-reported failure retries from another seed', () => {
    const t = makeTransfer(
      't',
      { source: { type: 'Seed', seed: ref(a) }, receivers: [ref(r)] },
      {
        phase: 'Transferring',
        receivers: [
          {
            pod: 'r',
            phase: 'Failed',
            reason: 'FingerprintMismatch',
            message: 'x',
            bytesDone: 0,
            bytesTotal: 0,
            verified: false,
          },
        ],
      },
    );
    const plan = planSource(input([a, b, r], [t]));
    assert.equal(plan.statuses[0]?.status.phase, 'Failed');
    assert.equal(plan.statuses[0]?.status.reason, 'FingerprintMismatch');
    assert.equal(seedOf(plan), 'b');
  });

  it('after maxRetries seed failures it loads from storage', () => {
    const spec = sourceSpec(transferPolicy({ maxRetries: 1 }));
    const plan = planSource(input([a, b, r], [failedFrom(a, 0), failedFrom(b, 1)], { spec }));
    assert.equal(plan.create[0]?.spec.source.type, 'Storage');
    assert.equal(plan.create[0]?.spec.attempt, 2);
  });

  it('a group failed by another receiver vanishing does not count against the others', () => {
    const spec = sourceSpec(transferPolicy({ maxRetries: 0 }));
    const plan = planSource(input([a, r], [failedFrom(a, 0, 'ReceiverLost')], { spec }));
    assert.equal(plan.create[0]?.spec.source.type, 'Seed');
  });

  it('the transfer name is stable per receiver and attempt', () => {
    const first = planSource(input([a, r]));
    const again = planSource(input([a, r]));
    assert.equal(first.create[0]?.name, again.create[0]?.name);
    const retry = planSource(input([a, b, r], [failedFrom(a, 0)]));
    assert.notEqual(retry.create[0]?.name, first.create[0]?.name);
  });
});

describe('readiness (invariant 1)', () => {
  const seed = makePod('seed').seed().obj();
  const r = makePod('r').obj();
  const entry = (phase: 'Transferring' | 'Succeeded', verified: boolean) => ({
    pod: 'r',
    phase,
    verified,
    bytesDone: 10,
    bytesTotal: 10,
  });
  const table: Array<[string, ReturnType<typeof entry> | undefined, 'True' | 'False', string]> = [
    ['no report yet', undefined, 'False', 'TransferInProgress'],
    ['in flight', entry('Transferring', false), 'False', 'TransferInProgress'],
    ['Succeeded without verified', entry('Succeeded', false), 'False', 'TransferInProgress'],
    ['Succeeded and verified', entry('Succeeded', true), 'True', 'WeightsVerified'],
  ];
  for (const [name, report, status, reason] of table) {
    it(name, () => {
      const t = makeTransfer(
        't',
        { source: { type: 'Seed', seed: ref(seed) }, receivers: [ref(r)] },
        {
          phase: 'Pending',
          ...(report === undefined ? {} : { receivers: [report] }),
        },
      );
      const plan = planSource(input([seed, r], [t]));
      assert.equal(condition(plan, 'r')?.status, status);
      assert.equal(condition(plan, 'r')?.type, WEIGHTS_READY);
      if (status === 'False')
        assert.ok(['TransferInProgress', 'WaitingForSeed'].includes(condition(plan, 'r')?.reason ?? ''));
      else assert.equal(condition(plan, 'r')?.reason, reason);
    });
  }

  it('a success for an earlier pod with the same name (other uid) does not count', () => {
    const t = makeTransfer(
      't',
      { source: { type: 'Seed', seed: ref(seed) }, receivers: [{ pod: 'r', uid: 'old-uid' }] },
      {
        phase: 'Succeeded',
        receivers: [entry('Succeeded', true)],
      },
    );
    const plan = planSource(input([seed, r], [t]));
    assert.equal(condition(plan, 'r')?.status, 'False');
  });

  it("the agent's record on the pod stands in for a deleted verifying transfer; the pod is never named again", () => {
    for (const [source, reason] of [
      ['Seed', 'WeightsVerified'],
      ['Storage', 'ColdLoaded'],
    ] as const) {
      const verified = makePod('r').verifiedBy(source, 'gone-0-abc').obj();
      const plan = planSource(input([seed, verified]));
      assert.equal(condition(plan, 'r')?.status, 'True');
      assert.equal(condition(plan, 'r')?.reason, reason);
      assert.match(condition(plan, 'r')?.message ?? '', /transfer gone-0-abc/);
      assert.equal(plan.create.length, 0, 'no new transfer names the pod');
      assert.deepEqual(
        plan.newlyReady.map((x) => x.pod),
        ['r'],
      );
    }
    // Without the record the same pod is a receiver again.
    assert.deepEqual(receiversOf(planSource(input([seed, r]))), ['r']);
  });

  it("the agent's record counts for a live transfer naming the pod before its status says so, never for another's", () => {
    const live = makeTransfer(
      't-live',
      { source: { type: 'Seed', seed: ref(seed) }, receivers: [ref(r)] },
      { phase: 'Transferring', receivers: [entry('Transferring', false)] },
    );
    const early = planSource(input([seed, makePod('r').verifiedBy('Seed', 't-live').obj()], [live]));
    assert.equal(condition(early, 'r')?.status, 'True');
    assert.match(condition(early, 'r')?.message ?? '', /from seed seed \(transfer t-live;/);
    const other = makeTransfer(
      't-other',
      { source: { type: 'Seed', seed: ref(seed) }, receivers: [{ pod: 'x', uid: 'uid-x' }] },
      { phase: 'Succeeded' },
    );
    for (const wrong of [
      makePod('r').verifiedBy('Seed', 't-other').obj(),
      makePod('r').verifiedBy('Storage', 't-live').obj(),
    ]) {
      const plan = planSource(input([seed, wrong], [live, other]));
      assert.equal(condition(plan, 'r')?.status, 'False', JSON.stringify(wrong.verifiedBy));
    }
  });

  it('an engine that lost its weights turns the pod not ready and no seed, and gets them again; earlier transfers do not count', () => {
    const old = makeTransfer(
      't-old',
      { source: { type: 'Seed', seed: ref(seed) }, receivers: [ref(r)] },
      { phase: 'Succeeded', receivers: [entry('Succeeded', true)] },
    );
    // Verified at T0+1 s (transfer t-old), then the engine restarted empty at T0+5.4 s.
    const lost = makePod('r').readySince(1000).lost(5400).obj();
    const plan = planSource(input([seed, lost], [old]));
    assert.equal(condition(plan, 'r')?.status, 'False');
    assert.deepEqual(receiversOf(plan), ['r'], 'a new transfer from the seed');
    assert.equal(plan.create[0]?.spec.attempt, 1, 'numbered after the old one');
    assert.notEqual(plan.create[0]?.name, 't-old');
    assert.ok(
      plan.events.some((e) => e.reason === 'WeightsLost' && e.regarding.name === 'r' && e.type === 'Warning'),
    );
    assert.deepEqual(plan.pods.find((p) => p.pod === 'r')?.annotations, {}, 'no longer a seed');
    // Not a seed for anyone meanwhile: a new receiver beside it waits for the real seed only.
    const x = makePod('x').obj();
    const alone = planSource(input([lost, x]));
    assert.equal(
      alone.create.some((t) => t.spec.source.seed?.pod === 'r'),
      false,
      'the pod that lost its weights serves nobody',
    );
    // Weights-ready already False since the loss: the old success still does not count.
    const waiting = {
      ...makePod('r').lost(5400).obj(),
      weightsReady: { status: 'False' as const, reason: 'TransferInProgress', since: T0 + 6000 },
    };
    assert.equal(condition(planSource(input([seed, waiting], [old])), 'r')?.status, 'False');
    // A transfer created after the loss that verified brings it back; so does one verified in the
    // same second as the loss (whole-second timestamps).
    const again = {
      ...makeTransfer(
        't-new',
        { source: { type: 'Seed', seed: ref(seed) }, receivers: [ref(r)], attempt: 1 },
        { phase: 'Succeeded', receivers: [entry('Succeeded', true)] },
      ),
      createdAt: T0 + 6000,
    };
    assert.equal(condition(planSource(input([seed, waiting], [old, again])), 'r')?.status, 'True');
    assert.equal(
      condition(planSource(input([seed, makePod('r').readySince(5000).lost(5400).obj()], [old])), 'r')
        ?.status,
      'True',
    );
  });

  it('aggregate progress is written at most every PROGRESS_WRITE_MS; a change of phase at once', () => {
    const receiver = makePod('r').obj();
    const now = T0 + 10_000;
    const transfer = (phase: 'Transferring' | 'Succeeded', writtenAgoMs: number) => ({
      ...makeTransfer(
        't',
        { source: { type: 'Seed', seed: ref(seed) }, receivers: [ref(receiver)] },
        {
          phase: 'Transferring',
          startTime: new Date(T0).toISOString().replace(/\.\d+Z$/, 'Z'),
          bytesTotal: 10,
          bytesDone: 2,
          progress: '20%',
          conditions: [
            {
              type: 'Complete',
              status: 'False',
              reason: 'Transferring',
              message: 'phase Transferring',
              lastTransitionTime: new Date(T0).toISOString().replace(/\.\d+Z$/, 'Z'),
            },
          ],
          receivers: [{ ...entry(phase, phase === 'Succeeded'), bytesDone: phase === 'Succeeded' ? 10 : 5 }],
        },
      ),
      statusWrittenAt: now - writtenAgoMs,
    });
    const recent = planSource(input([seed, receiver], [transfer('Transferring', 1000)], { now }));
    assert.deepEqual(recent.statuses, [], 'progress only, written 1 s ago: deferred');
    assert.ok((recent.requeueAfterMs ?? Number.POSITIVE_INFINITY) <= PROGRESS_WRITE_MS - 1000);
    const due = planSource(input([seed, receiver], [transfer('Transferring', PROGRESS_WRITE_MS)], { now }));
    assert.equal(due.statuses[0]?.status.progress, '50%', 'progress only, due: written');
    const finished = planSource(input([seed, receiver], [transfer('Succeeded', 0)], { now }));
    assert.equal(finished.statuses[0]?.status.phase, 'Succeeded', 'a new phase goes out at once');
  });

  it('an unannounced pod waits for its agent', () => {
    const plan = planSource(input([makePod('r').unannounced().obj()]));
    assert.equal(condition(plan, 'r')?.reason, 'WaitingForAgent');
    assert.equal(plan.create.length, 0);
  });

  it('a labelled pod of a missing WeightSource gets a condition and an event naming the field', () => {
    const plan = planSource({ ...input([r]), source: { state: 'missing' } });
    assert.equal(condition(plan, 'r')?.reason, 'WeightSourceMissing');
    assert.match(condition(plan, 'r')?.message ?? '', /^metadata\.labels\[seedcast\.dev\/weight-source\]/);
    assert.equal(plan.events[0]?.reason, 'WeightSourceMissing');
  });
});

describe('scale-in and garbage collection', () => {
  it('seeds get a deletion cost; the oldest minSeeds the highest; non-seeds none', () => {
    const pods = [
      makePod('s-old').seed().created(0).obj(),
      makePod('s-mid').seed().created(1).obj(),
      makePod('s-new').seed().created(2).obj(),
      makePod('plain').created(3).unannounced().obj(),
    ];
    const plan = planSource(input(pods, [], { minSeeds: 2 }));
    const cost = (n: string) => plan.pods.find((p) => p.pod === n)?.annotations.deletionCost;
    assert.equal(cost('s-old'), DeletionCost.protectedSeed);
    assert.equal(cost('s-mid'), DeletionCost.protectedSeed);
    assert.equal(cost('s-new'), DeletionCost.seed);
    assert.equal(cost('plain'), undefined);
    assert.equal(plan.pods.find((p) => p.pod === 's-new')?.annotations.role, 'seed');
    assert.ok(Annotations.podDeletionCost);
  });

  it('deletes finished transfers after the retention period', () => {
    const t = makeTransfer(
      'done',
      { source: { type: 'Storage' }, receivers: [{ pod: 'gone', uid: 'x' }] },
      {
        phase: 'Succeeded',
        completionTime: new Date(T0).toISOString(),
      },
    );
    assert.deepEqual(planSource(input([], [t], { now: T0 + 299_000 })).delete, []);
    assert.deepEqual(planSource(input([], [t], { now: T0 + 301_000 })).delete, ['done']);
  });

  it('fingerprint statistics', () => {
    const plan = planSource(input([makePod('s').seed().obj(), makePod('r').obj()]));
    assert.deepEqual(plan.source?.fingerprints, [{ fingerprint: FP, seeds: 1, pods: 2 }]);
  });
});

describe('bandwidth limit', () => {
  it("copies the source's transfer.bandwidthLimit into seed transfers for the seed agent", () => {
    const spec = sourceSpec(transferPolicy({ batchWindowSeconds: 0, bandwidthLimit: '10Gi' }));
    const pods = [makePod('seed').seed().obj(), makePod('r1').announced(0).obj()];
    const plan = planSource(input(pods, [], { spec, now: T0 + 1000 }));
    assert.equal(plan.create[0]?.spec.source.type, 'Seed');
    assert.equal(plan.create[0]?.spec.bandwidthLimit, '10Gi');
  });
});

describe('deadlines', () => {
  it('a load from storage gets coldStart.timeoutSeconds, a seed transfer transfer.timeoutSeconds', () => {
    const spec = sourceSpec({
      transfer: { transports: ['tcp'], batchWindowSeconds: 0, timeoutSeconds: 60 },
      coldStart: { policy: 'Single', timeoutSeconds: 3600 },
    });
    const cold = planSource(input([makePod('r1').announced(0).obj()], [], { spec, now: T0 }));
    assert.equal(cold.create[0]?.spec.source.type, 'Storage');
    assert.equal(Date.parse(cold.create[0]!.spec.deadline) - T0, 3600 * 1000);
    const warm = planSource(
      input([makePod('seed').seed().obj(), makePod('r2').announced(0).obj()], [], { spec, now: T0 }),
    );
    assert.equal(warm.create[0]?.spec.source.type, 'Seed');
    assert.equal(Date.parse(warm.create[0]!.spec.deadline) - T0, 60 * 1000);
  });
});
