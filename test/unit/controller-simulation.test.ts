// A whole scale-out (1 → 16 replicas) through the pure planner: the test plays the API server,
// the agents (status entries per docs/agent-contract.md) and the kubelet (Ready follows the
// readiness gate), and checks the DESIGN.md invariants after every step.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TERMINAL_PHASES, type WeightTransferStatus } from '../../src/api/v1alpha1/index.ts';
import {
  type ObservedPod,
  type ObservedTransfer,
  planSource,
} from '../../src/controller/weightsource/plan.ts';
import { FP, sourceSpec, T0 } from './controller-builders.ts';

interface SimOptions {
  replicas: number;
  maxReceiversPerGroup: number;
  maxConcurrentPerSeed: number;
  batchWindowSeconds: number;
  ranks: number;
  transferMs: number;
  coldLoadMs: number;
  /** Fail the first transfer of this seed by deleting the seed mid-transfer. */
  killSeedAtMs?: number;
}

function simulate(options: SimOptions) {
  const spec = sourceSpec({
    layout: { tensorParallel: options.ranks },
    transfer: {
      transports: ['nccl'],
      batchWindowSeconds: options.batchWindowSeconds,
      maxReceiversPerGroup: options.maxReceiversPerGroup,
      maxConcurrentPerSeed: options.maxConcurrentPerSeed,
      ports: { start: 29500, count: 16 },
    },
  });
  let now = T0;
  const pods = new Map<string, ObservedPod>();
  const transfers = new Map<string, ObservedTransfer>();
  const verifiedAt = new Map<string, number>(); // uid → when its receiver entry said verified
  let storageLoads = 0;
  let maxGroup = 0;
  const groupSizes: number[] = [];
  let killed = false;
  const addPod = (i: number, at: number) => {
    const name = `p${i}`;
    // The agent announces 1–3 s after the pod starts.
    pods.set(name, {
      name,
      uid: `uid-${name}-${at}`,
      createdAt: at,
      deleting: false,
      podReady: false,
      nodeName: `n${i % 4}`,
      nodeLabels: { 'topology.kubernetes.io/zone': `z${i % 2}` },
      announcedAt: at + 1000 + ((i * 577) % 2000),
    });
  };
  addPod(0, now);

  for (let step = 0; step < 2000; step++) {
    // Agents announce.
    for (const pod of pods.values()) {
      if (pod.fingerprint === undefined && pod.announcedAt !== undefined && now >= pod.announcedAt) {
        pod.fingerprint = FP;
        pod.agentEndpoint = '10.0.0.1:9400';
      }
    }
    const visible = [...pods.values()].map((p) => ({
      ...p,
      announcedAt: p.fingerprint === undefined ? undefined : p.announcedAt,
    }));
    const plan = planSource({
      namespace: 'ns',
      sourceName: 'src',
      source: { state: 'ok', spec },
      pods: visible,
      transfers: [...transfers.values()],
      now,
      minSeeds: 1,
      retentionMs: 3_600_000,
    });
    // Apply, as the reconciler would.
    for (const t of plan.create) {
      assert.ok(!transfers.has(t.name), `duplicate transfer name ${t.name}`);
      transfers.set(t.name, { name: t.name, spec: t.spec, createdAt: now, status: { phase: 'Pending' } });
      if (t.spec.source.type === 'Storage') storageLoads += 1;
      else {
        groupSizes.push(t.spec.receivers.length);
        maxGroup = Math.max(maxGroup, t.spec.receivers.length);
      }
    }
    for (const update of plan.statuses) {
      const t = transfers.get(update.name) as ObservedTransfer;
      t.status = { ...(t.status as WeightTransferStatus), ...update.status } as WeightTransferStatus;
    }
    for (const name of plan.delete) transfers.delete(name);
    for (const decision of plan.pods) {
      const pod = pods.get(decision.pod) as ObservedPod;
      // Invariant 1: never weights-ready before a verified report for this uid.
      if (decision.condition.status === 'True') {
        const at = verifiedAt.get(pod.uid);
        assert.ok(at !== undefined && at <= now, `${pod.name} marked ready without a verified transfer`);
      }
      pod.weightsReady = { status: decision.condition.status, reason: decision.condition.reason };
    }

    // Invariant 2: no port used twice on one pod among active transfers.
    const active = [...transfers.values()].filter((t) => !TERMINAL_PHASES.has(t.status?.phase ?? 'Pending'));
    const used = new Map<string, Set<number>>();
    for (const t of active) {
      const parties = [
        ...(t.spec.source.seed ? [t.spec.source.seed.uid] : []),
        ...t.spec.receivers.map((r) => r.uid),
      ];
      for (const uid of parties) {
        const set = used.get(uid) ?? new Set<number>();
        for (const { port } of t.spec.ports) {
          assert.ok(!set.has(port), `port ${port} double-booked on ${uid}`);
          set.add(port);
        }
        used.set(uid, set);
      }
      // Exactly one active transfer per receiver.
    }
    const perReceiver = new Map<string, number>();
    for (const t of active)
      for (const r of t.spec.receivers) perReceiver.set(r.uid, (perReceiver.get(r.uid) ?? 0) + 1);
    for (const [uid, n] of perReceiver) assert.equal(n, 1, `${uid} is in ${n} active transfers`);
    // Invariant 3: at most one cold load per fingerprint with Single.
    assert.ok(active.filter((t) => t.spec.source.type === 'Storage').length <= 1);
    // Seeds never exceed maxConcurrentPerSeed.
    const load = new Map<string, number>();
    for (const t of active)
      if (t.spec.source.seed) load.set(t.spec.source.seed.uid, (load.get(t.spec.source.seed.uid) ?? 0) + 1);
    for (const n of load.values()) assert.ok(n <= options.maxConcurrentPerSeed);

    // Kubelet: Ready follows the readiness gate.
    for (const pod of pods.values()) pod.podReady = pod.weightsReady?.status === 'True';

    // Agents: report progress, succeed after the transfer time.
    for (const t of active) {
      const duration = t.spec.source.type === 'Storage' ? options.coldLoadMs : options.transferMs;
      const done = now - t.createdAt >= duration;
      const seedPod = t.spec.source.seed
        ? [...pods.values()].find((p) => p.uid === t.spec.source.seed?.uid)
        : undefined;
      if (
        seedPod !== undefined &&
        options.killSeedAtMs !== undefined &&
        !killed &&
        now >= options.killSeedAtMs &&
        seedPod.name !== 'p0'
      ) {
        killed = true;
        pods.delete(seedPod.name);
        addPod(options.replicas + 1, now); // the ReplicaSet replaces it
        continue;
      }
      t.status = {
        ...(t.status as WeightTransferStatus),
        receivers: t.spec.receivers.map((r) => {
          if (done) verifiedAt.set(r.uid, now);
          return {
            pod: r.pod,
            phase: done ? 'Succeeded' : 'Transferring',
            verified: done,
            bytesDone: done ? 100 : 50,
            bytesTotal: 100,
          };
        }),
      };
    }

    // The user scales to N once the first replica serves.
    if (pods.size === 1 && pods.get('p0')?.podReady) {
      for (let i = 1; i < options.replicas; i++) addPod(i, now);
    }
    const ready = [...pods.values()].filter((p) => p.weightsReady?.status === 'True').length;
    if (pods.size >= options.replicas && ready === pods.size) {
      return {
        elapsedMs: now - T0,
        storageLoads,
        maxGroup,
        groupSizes,
        transfers: [...transfers.values()],
        killed,
      };
    }
    now += 250;
  }
  throw new Error('scale-out did not finish');
}

describe('scale-out simulation 1 → 16', () => {
  it('one cold load, batched fan-out, seeds growing as transfers complete', () => {
    const result = simulate({
      replicas: 16,
      maxReceiversPerGroup: 8,
      maxConcurrentPerSeed: 1,
      batchWindowSeconds: 5,
      ranks: 4,
      transferMs: 10_000,
      coldLoadMs: 60_000,
    });
    assert.equal(result.storageLoads, 1, 'one cold load');
    assert.equal(result.maxGroup, 8, 'receivers of one window share a group');
    // 15 receivers: the first group takes 8 from the only seed, the other 7 go once 9 seeds exist.
    assert.equal(
      result.groupSizes.reduce((a, b) => a + b, 0),
      15,
    );
    assert.ok(result.groupSizes.length <= 4, `groups: ${result.groupSizes}`);
    // Two broadcast rounds after the cold load (plus windows), not fifteen.
    assert.ok(result.elapsedMs < 60_000 + 2 * 10_000 + 20_000, `took ${result.elapsedMs} ms`);
  });

  it('more seeds per round with maxConcurrentPerSeed 2 and small groups', () => {
    const result = simulate({
      replicas: 16,
      maxReceiversPerGroup: 2,
      maxConcurrentPerSeed: 2,
      batchWindowSeconds: 1,
      ranks: 8,
      transferMs: 5_000,
      coldLoadMs: 20_000,
    });
    assert.equal(result.storageLoads, 1);
    assert.ok(result.groupSizes.every((n) => n <= 2));
  });

  it('a seed deleted mid-transfer: its receivers retry from another seed, nothing double-booked', () => {
    const result = simulate({
      replicas: 16,
      maxReceiversPerGroup: 4,
      maxConcurrentPerSeed: 1,
      batchWindowSeconds: 2,
      ranks: 2,
      transferMs: 8_000,
      coldLoadMs: 10_000,
      killSeedAtMs: T0 + 20_000,
    });
    assert.ok(result.killed, 'a seed was deleted mid-transfer');
    const lost = result.transfers.filter((t) => t.status?.reason === 'SeedLost');
    assert.ok(lost.length >= 1);
    assert.ok(result.transfers.some((t) => t.spec.attempt > 0 && t.spec.source.type === 'Seed'));
    assert.equal(result.storageLoads, 1);
  });
});
