// control-plane: the controller's overhead on the dev cluster (real kube-apiserver, etcd,
// controller-manager, scheduler, KWOK), with the agents played by test/support/fake-agent.ts
// answering at once. For 1, 16 and 64 receivers it measures, per receiver:
//   - /scale patch → a WeightTransfer naming the receiver exists (includes pod creation by the
//     ReplicaSet, scheduling, KWOK start, the agent's announce and the batch window),
//   - agent-reported verified success → pod Ready (controller sets weights-ready, KWOK flips Ready).
// `--sizes 1,16,64` `--batch-window 1` `--group 8` `--per-seed 1` tune it.
import {
  Annotations,
  API_VERSION,
  GROUP,
  Kinds,
  Labels,
  Plurals,
  TERMINAL_PHASES,
  VERSION,
  WEIGHTS_READY,
} from '../src/api/v1alpha1/index.ts';
import { startController } from '../src/controller/manager.ts';
import { Informer } from '../src/shared/informer.ts';
import { Resources } from '../src/shared/kube.ts';
import { silentLogger } from '../src/shared/log.ts';
import {
  applyObjects,
  conditionOf,
  createNamespace,
  deleteNamespace,
  installCrds,
  startCluster,
} from '../test/support/cluster.ts';
import { FakeAgents, type PodObject, TRANSFERS, type TransferObject } from '../test/support/fake-agent.ts';
import type { Benchmark, BenchOptions, Figure } from './types.ts';

const IDS = { group: GROUP, version: VERSION, plural: Plurals.InferenceDeployment } as const;

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

async function measure(
  client: Awaited<ReturnType<typeof startCluster>>['client'],
  receivers: number,
  options: { batchWindow: number; group: number; perSeed: number },
): Promise<{
  toTransfer: number[];
  successToReady: number[];
  successToGate: number[];
  allCreatedMs: number;
}> {
  const namespace = await createNamespace(client, `bench-${receivers}`);
  const controller = await startController(
    client,
    {
      namespace,
      identity: 'bench',
      leaderElect: false,
      leaseNamespace: namespace,
      leaseName: 'seedcast-controller',
      leaseDurationSeconds: 15,
      agentImage: 'seedcast:bench',
      agentGpuSharing: 'EnvVar',
      agentPort: 9400,
      agentServiceAccount: undefined,
      agentTokenSecret: undefined,
      agentResources: undefined,
      workers: 4,
      resyncSeconds: 300,
      retentionSeconds: 3600,
      watchNodes: true,
    },
    silentLogger(),
  );
  const agents = new FakeAgents(client, namespace);
  try {
    await applyObjects(
      client,
      [
        {
          apiVersion: API_VERSION,
          kind: Kinds.WeightSource,
          metadata: { name: 'model' },
          spec: {
            model: 'bench/model',
            engine: { name: 'fixture', version: '1' },
            transfer: {
              transports: ['tcp'],
              batchWindowSeconds: options.batchWindow,
              maxReceiversPerGroup: options.group,
              maxConcurrentPerSeed: options.perSeed,
              ports: { start: 29500, count: 64 },
            },
          },
        },
        {
          apiVersion: API_VERSION,
          kind: Kinds.InferenceDeployment,
          metadata: { name: 'llm' },
          spec: {
            replicas: 1,
            weightSource: 'model',
            template: {
              spec: { containers: [{ name: 'engine', image: 'engine:bench', command: ['serve'] }] },
            },
          },
        },
      ],
      { namespace },
    );
    const announced = new Set<string>();
    const handled = new Set<string>();
    const transferSeen = new Map<string, number>(); // receiver uid → first seen in a transfer
    const successAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    const gateAt = new Map<string, number>(); // weights-ready True seen (the controller's part)
    let scaledAt = 0;
    let target = 1;
    // Watches, not polls: timestamps at event arrival, and no list storm skewing the server.
    const abort = new AbortController();
    const pods = new Informer<PodObject>(client, {
      resource: Resources.pods,
      namespace,
      labelSelector: `${Labels.weightSource}=model`,
    });
    const transfers = new Informer<TransferObject>(client, { resource: TRANSFERS, namespace });
    let wake: (() => void) | undefined;
    const notify = () => wake?.();
    const observe = (p: PodObject, now: number) => {
      const uid = p.metadata.uid ?? '';
      if (successAt.has(uid) && !gateAt.has(uid) && conditionOf(p, WEIGHTS_READY)?.status === 'True') {
        gateAt.set(uid, now);
      }
      if (successAt.has(uid) && !readyAt.has(uid) && conditionOf(p, 'Ready')?.status === 'True') {
        readyAt.set(uid, now);
        notify();
      }
    };
    pods.on((type, p) => {
      const now = performance.now();
      const uid = p.metadata.uid ?? '';
      if (type === 'delete' || p.metadata.deletionTimestamp !== undefined) return;
      if (
        p.status?.phase === 'Running' &&
        !announced.has(uid) &&
        p.metadata.annotations?.[Annotations.fingerprint] === undefined
      ) {
        announced.add(uid);
        void agents.announce(p.metadata.name).catch(() => announced.delete(uid));
      }
      observe(p, now);
    });
    transfers.on((type, t) => {
      const now = performance.now();
      if (type === 'delete') return;
      for (const r of t.spec.receivers) if (!transferSeen.has(r.uid)) transferSeen.set(r.uid, now);
      if (handled.has(t.metadata.name) || TERMINAL_PHASES.has(t.status?.phase ?? 'Pending')) return;
      handled.add(t.metadata.name);
      void (async () => {
        // Each receiver's agent reports on its own; success counts from its own write.
        if (t.spec.source.type === 'Seed') await agents.seedRendezvous(t, 'Succeeded');
        await Promise.all(
          t.spec.receivers.map(async (r) => {
            await agents.receiver(t, r.pod, { phase: 'Succeeded', gbps: 12.5 });
            const at = performance.now();
            successAt.set(r.uid, at);
            // The pod may already be Ready (events raced the write's response).
            const pod = pods.list((p) => p.metadata.uid === r.uid)[0];
            if (pod !== undefined) observe(pod, at);
          }),
        );
      })();
    });
    const watching = Promise.all([pods.run(abort.signal), transfers.run(abort.signal)]);
    const until = async (what: string) => {
      const deadline = Date.now() + 600_000;
      while (readyAt.size < target) {
        if (Date.now() > deadline) throw new Error(`${what} did not finish`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
    };
    await until('the first replica');
    const firstUids = new Set(transferSeen.keys());
    target = receivers + 1;
    scaledAt = performance.now();
    await client.mergePatch(
      { ...IDS, namespace, name: 'llm', subresource: 'scale' },
      { spec: { replicas: receivers + 1 } },
    );
    await until(`scale-out to ${receivers + 1}`);
    abort.abort();
    await watching;
    const uids = [...transferSeen.keys()].filter((u) => !firstUids.has(u));
    const toTransfer = uids.map((u) => (transferSeen.get(u) as number) - scaledAt);
    const successToReady = uids.map((u) => (readyAt.get(u) as number) - (successAt.get(u) as number));
    const successToGate = uids.map(
      (u) => (gateAt.get(u) ?? (readyAt.get(u) as number)) - (successAt.get(u) as number),
    );
    if (process.env.SEEDCAST_BENCH_DEBUG === '1') {
      process.stderr.write(
        controller.metrics.registry
          .render()
          .split('\n')
          .filter((l) => /reconcile|transfers/.test(l) && !l.includes('_bucket'))
          .join('\n'),
      );
    }
    return { toTransfer, successToReady, successToGate, allCreatedMs: Math.max(...toTransfer) };
  } finally {
    await agents.stop();
    await controller.stop();
    await deleteNamespace(client, namespace);
  }
}

export const benchmark: Benchmark = {
  name: 'control-plane',
  description:
    'controller overhead on the dev cluster: /scale → WeightTransfers, verified → pod Ready (p50/p99)',
  async run(options: BenchOptions): Promise<Figure[]> {
    const sizes = (options.sizes ?? '1,16,64').split(',').map(Number);
    const settings = {
      batchWindow: Number(options['batch-window'] ?? 1),
      group: Number(options.group ?? 8),
      perSeed: Number(options['per-seed'] ?? 1),
    };
    const cluster = await startCluster({ nodes: 4, gpusPerNode: 8 });
    const figures: Figure[] = [];
    try {
      await installCrds(cluster.client);
      for (const n of sizes) {
        const r = await measure(cluster.client, n, settings);
        const notes = `batchWindowSeconds ${settings.batchWindow}, maxReceiversPerGroup ${settings.group}, maxConcurrentPerSeed ${settings.perSeed}; agents answer at once`;
        figures.push(
          {
            name: `scale→transfer created p50, ${n} receivers`,
            value: percentile(r.toTransfer, 50),
            unit: 'ms',
            notes,
          },
          {
            name: `scale→transfer created p99, ${n} receivers`,
            value: percentile(r.toTransfer, 99),
            unit: 'ms',
          },
          { name: `scale→all transfers created, ${n} receivers`, value: r.allCreatedMs, unit: 'ms' },
          {
            name: `verified→weights-ready p50, ${n} receivers`,
            value: percentile(r.successToGate, 50),
            unit: 'ms',
          },
          {
            name: `verified→weights-ready p99, ${n} receivers`,
            value: percentile(r.successToGate, 99),
            unit: 'ms',
          },
          {
            name: `verified→pod Ready p50, ${n} receivers`,
            value: percentile(r.successToReady, 50),
            unit: 'ms',
          },
          {
            name: `verified→pod Ready p99, ${n} receivers`,
            value: percentile(r.successToReady, 99),
            unit: 'ms',
          },
        );
      }
    } finally {
      await cluster.stop();
    }
    return figures;
  },
};
