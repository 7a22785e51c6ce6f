// `scale-out`: time from the scale-up decision (the /scale write HPA makes) to all new replicas
// Ready, for 1, 4 and 16 new replicas with the same bytes per replica, on the dev cluster with
// the real controller, agents and fixture engines. The fan-out ratio t(16)/t(1) shows what one
// broadcast group buys: serving 16 receivers should cost close to serving one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScaleOutScenario } from '../src/demo/scenario.ts';
import { createLogger } from '../src/shared/log.ts';
import { createNamespace, deleteNamespace, startCluster } from '../test/support/cluster.ts';
import type { Benchmark, BenchOptions, Figure } from './types.ts';

async function measure(
  cluster: Awaited<ReturnType<typeof startCluster>>,
  added: number,
  bytesPerRank: string,
): Promise<{ seconds: number; transferSeconds: number; summary: ReturnType<ScaleOutScenario['summary']> }> {
  const namespace = await createNamespace(cluster.client, `bench-scale-${added}`);
  const workDir = await mkdtemp(join(tmpdir(), 'sc-bench-'));
  const scenario = new ScaleOutScenario({
    kube: cluster.client,
    kubeconfig: cluster.kubeconfig,
    namespace,
    workDir,
    bytesPerRank,
    coldLoadMs: 1000,
    batchWindowSeconds: 2,
    log: createLogger({ name: 'bench', level: process.env.SEEDCAST_LOG_LEVEL ?? 'warn' }),
  });
  try {
    await scenario.setUp();
    await scenario.waitForReady(1, 300_000);
    const started = Date.now();
    await scenario.scaleTo(1 + added);
    await scenario.waitForReady(1 + added, 600_000);
    const summary = scenario.summary();
    // The transfer phase alone: from the last new pod's agent announcing to the last one Ready.
    // On 2 cores, starting 2 × N processes dominates the whole; this isolates the fan-out.
    const warm = summary.pods.filter(
      (p) => p.source !== 'storage' && p.agentUpAt !== null && p.readyAt !== null,
    );
    const lastUp = Math.max(...warm.map((p) => Date.parse(p.agentUpAt!)));
    const lastReady = Math.max(...warm.map((p) => Date.parse(p.readyAt!)));
    return { seconds: (Date.now() - started) / 1000, transferSeconds: (lastReady - lastUp) / 1000, summary };
  } finally {
    await scenario.tearDown().catch(() => undefined);
    await deleteNamespace(cluster.client, namespace).catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'scale-out',
  description:
    'scale-up decision → all new replicas Ready, for 1, 4, 16 new replicas; fan-out ratio t(16)/t(1)',
  async run(options: BenchOptions): Promise<Figure[]> {
    const sizes = (options.sizes ?? '1,4,16').split(',').map(Number);
    const bytesPerRank = options['bytes-per-rank'] ?? '64MiB';
    const cluster = await startCluster({ nodes: 5, gpusPerNode: 8 });
    const figures: Figure[] = [];
    const seconds = new Map<number, number>();
    const transferSeconds = new Map<number, number>();
    try {
      for (const added of sizes) {
        const { seconds: s, transferSeconds: ts, summary } = await measure(cluster, added, bytesPerRank);
        seconds.set(added, s);
        transferSeconds.set(added, ts);
        const groups = summary.groups.map((g) => g.receivers).join('+');
        figures.push({
          name: `scale-up → ${added} new replica(s) Ready`,
          value: s,
          unit: 's',
          notes: `${bytesPerRank} per rank, TP=2; warm starts ${summary.warmStarts}, groups ${groups}, ${(summary.totalBytes / 1e9).toFixed(2)} GB moved`,
        });
      }
      const one = seconds.get(1);
      const largest = Math.max(...sizes);
      const big = seconds.get(largest);
      if (one !== undefined && big !== undefined && largest > 1) {
        figures.push({
          name: `fan-out ratio t(${largest})/t(1)`,
          value: big,
          unit: 's',
          baseline: { name: 'scale-up → 1 new replica Ready', value: one, unit: 's' },
          ratio: big / one,
          target: 1.5,
          better: 'lower',
          notes: 'all receivers share 2 cores and loopback on this machine',
        });
        const oneT = transferSeconds.get(1)!;
        const bigT = transferSeconds.get(largest)!;
        figures.push({
          name: `fan-out ratio of the transfer phase (last agent up → last Ready) t(${largest})/t(1)`,
          value: bigT,
          unit: 's',
          baseline: { name: 'transfer phase, 1 new replica', value: oneT, unit: 's' },
          ratio: bigT / oneT,
          target: 1.5,
          better: 'lower',
          notes: 'excludes pod start-up (2 processes per pod on 2 cores); includes the batch window',
        });
      }
      return figures;
    } finally {
      await cluster.stop();
    }
  },
};
