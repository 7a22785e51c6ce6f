// `scale-out`: time from the scale-up decision (the /scale write HPA makes) to all new replicas
// Ready, for 1, 4 and 16 new replicas with the same bytes per replica, on the dev cluster with
// the real controller, agents and fixture engines. The fan-out ratio t(16)/t(1) shows what one
// broadcast group buys: serving 16 receivers should cost close to serving one.
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Annotations,
  FieldManagers,
  GROUP,
  Plurals,
  VERSION,
  WEIGHTS_READY,
} from '../src/api/v1alpha1/names.ts';
import type { WeightTransfer } from '../src/api/v1alpha1/weighttransfer.ts';
import { ScaleOutScenario } from '../src/demo/scenario.ts';
import { Resources } from '../src/shared/kube.ts';
import { createLogger } from '../src/shared/log.ts';
import { createNamespace, deleteNamespace, startCluster } from '../test/support/cluster.ts';
import type { Benchmark, BenchOptions, Figure } from './types.ts';

/**
 * When each step of the new pods was done, in seconds after the scale-up decision: the last pod
 * (and the median) to be scheduled, to have its agent up, to start its transfer, to be verified,
 * to be Ready. Says where a large scale-out spends its time.
 */
function phases(started: number, pods: ReturnType<ScaleOutScenario['summary']>['pods']): string {
  const steps = [
    'scheduledAt',
    'agentUpAt',
    'transferStartAt',
    'verifiedAt',
    'weightsReadyAt',
    'readyAt',
  ] as const;
  return steps
    .map((step) => {
      const at = pods
        .map((p) => p[step])
        .filter((t): t is string => t !== null)
        .map((t) => (Date.parse(t) - started) / 1000)
        .sort((a, b) => a - b);
      if (at.length === 0) return `${step} -`;
      const median = at[Math.floor((at.length - 1) / 2)] as number;
      return `${step.replace(/At$/, '')} ${median.toFixed(1)}/${(at.at(-1) as number).toFixed(1)} s`;
    })
    .join(', ');
}

/** apiserver_request_total by verb and resource (+subresource), from the API server's /metrics. */
async function apiRequests(cluster: Awaited<ReturnType<typeof startCluster>>): Promise<Map<string, number>> {
  const text = await cluster.client.request<string>('GET', '/metrics', { text: true });
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
    );
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

/**
 * How long after a receiver verified its final status write landed: `verifiedAt` (the agent's
 * clock, ms) against the `time` of its field manager's entry in managedFields (the API server's,
 * whole seconds, so ±1 s). Splits "verified → weights-ready" into the write and the controller.
 */
async function statusLag(
  cluster: Awaited<ReturnType<typeof startCluster>>,
  namespace: string,
): Promise<string> {
  const list = await cluster.client.list<WeightTransfer & { metadata: { managedFields?: ManagedField[] } }>({
    group: GROUP,
    version: VERSION,
    plural: Plurals.WeightTransfer,
    namespace,
  });
  const lags: number[] = [];
  for (const t of list.items) {
    if (t.spec.source.type !== 'Seed') continue;
    for (const r of t.status?.receivers ?? []) {
      if (r.verifiedAt === undefined) continue;
      const entry = t.metadata.managedFields?.find(
        (f) => f.manager === FieldManagers.agent(r.pod) && f.subresource === 'status',
      );
      if (entry?.time === undefined) continue;
      lags.push((Date.parse(entry.time) - Date.parse(r.verifiedAt)) / 1000);
    }
  }
  // The receivers' records on their pods (contract §3a: written before the status entry) and the
  // controller's answer to them: the weights-ready condition's transition.
  const verifiedAt = new Map<string, number>();
  for (const t of list.items)
    for (const r of t.status?.receivers ?? [])
      if (t.spec.source.type === 'Seed' && r.verifiedAt !== undefined)
        verifiedAt.set(r.pod, Date.parse(r.verifiedAt));
  const pods = await cluster.client.list<{
    metadata: { name: string; managedFields?: ManagedField[]; annotations?: Record<string, string> };
    status?: { conditions?: Array<{ type: string; lastTransitionTime?: string }> };
  }>({ ...Resources.pods, namespace });
  const recordLags: number[] = [];
  const answerLags: number[] = [];
  for (const pod of pods.items) {
    const verified = verifiedAt.get(pod.metadata.name);
    if (verified === undefined || pod.metadata.annotations?.[Annotations.weightsVerified] === undefined)
      continue;
    const entry = pod.metadata.managedFields?.find(
      (f) => f.manager === FieldManagers.agent(pod.metadata.name) && f.subresource === undefined,
    );
    const ready = pod.status?.conditions?.find((c) => c.type === WEIGHTS_READY)?.lastTransitionTime;
    if (entry?.time === undefined) continue;
    recordLags.push((Date.parse(entry.time) - verified) / 1000);
    if (ready !== undefined) answerLags.push((Date.parse(ready) - Date.parse(entry.time)) / 1000);
  }
  return [
    ['final receiver status write landed after verified', lags],
    ['record on the pod landed after verified', recordLags],
    ['weights-ready after the record', answerLags],
  ]
    .map(([what, values]) => `${what} (median/last, ±1 s): ${medianLast(values as number[])}`)
    .join('; ');
}

function medianLast(values: number[]): string {
  if (values.length === 0) return '-';
  const sorted = [...values].sort((a, b) => a - b);
  return `${(sorted[Math.floor((sorted.length - 1) / 2)] as number).toFixed(1)}/${(sorted.at(-1) as number).toFixed(1)} s`;
}

interface ManagedField {
  manager?: string;
  subresource?: string;
  time?: string;
}

/** What the API server served during one scale-out: the total and the busiest verb/resource pairs. */
function requestSummary(before: Map<string, number>, after: Map<string, number>): string {
  const diff = [...after]
    .map(([key, n]) => [key, n - (before.get(key) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = diff.reduce((sum, [, n]) => sum + n, 0);
  return `${total} API requests (${diff
    .slice(0, 6)
    .map(([key, n]) => `${key} ${n}`)
    .join(', ')})`;
}

async function measure(
  cluster: Awaited<ReturnType<typeof startCluster>>,
  added: number,
  bytesPerRank: string,
): Promise<{
  seconds: number;
  transferSeconds: number;
  summary: ReturnType<ScaleOutScenario['summary']>;
  phases: string;
  requests: string;
}> {
  const namespace = await createNamespace(cluster.client, `bench-scale-${added}`);
  const workDir = await mkdtemp(join(tmpdir(), 'sc-bench-'));
  const scenario = new ScaleOutScenario({
    kube: cluster.client,
    kubeconfig: cluster.kubeconfig,
    namespace,
    workDir,
    bytesPerRank,
    coldLoadMs: 1000,
    // What is timed is the scale-out; the fixture engines' sha256 of every received rank (a test
    // aid, ~0.7 s of CPU per GB) would compete with it for the 2 cores. Tests keep it on.
    digests: false,
    batchWindowSeconds: 2,
    log: createLogger({ name: 'bench', level: process.env.SEEDCAST_LOG_LEVEL ?? 'warn' }),
  });
  try {
    await scenario.setUp();
    await scenario.waitForReady(1, 300_000);
    const requestsBefore = await apiRequests(cluster);
    const started = Date.now();
    await scenario.scaleTo(1 + added);
    await scenario.waitForReady(1 + added, 600_000, { reported: true });
    const summary = scenario.summary();
    const requests = `${requestSummary(requestsBefore, await apiRequests(cluster))}; ${await statusLag(cluster, namespace)}`;
    // The transfer phase alone: from the last new pod's agent announcing to the last one Ready.
    // On 2 cores, starting 2 × N processes dominates the whole; this isolates the fan-out.
    const warm = summary.pods.filter(
      (p) => p.source !== 'storage' && p.agentUpAt !== null && p.readyAt !== null,
    );
    const lastUp = Math.max(...warm.map((p) => Date.parse(p.agentUpAt!)));
    const lastReady = Math.max(...warm.map((p) => Date.parse(p.readyAt!)));
    return {
      // Decision → the last new pod seen Ready (the observer polls every 250 ms); not the end of
      // the wait above, which also waits for the status entries the summary reads.
      seconds: (Math.max(...summary.pods.map((p) => Date.parse(p.readyAt ?? '0'))) - started) / 1000,
      transferSeconds: (lastReady - lastUp) / 1000,
      summary,
      phases: phases(started, warm),
      requests,
    };
  } finally {
    await scenario.tearDown().catch(() => undefined);
    await deleteNamespace(cluster.client, namespace).catch(() => undefined);
    // SEEDCAST_KEEP_POD_DIRS=1 keeps every pod's container logs (the pod runner keeps them too).
    if (process.env.SEEDCAST_KEEP_POD_DIRS !== '1') await rm(workDir, { recursive: true, force: true });
    else process.stderr.write(`  pod logs kept in ${workDir}\n`);
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
        const {
          seconds: s,
          transferSeconds: ts,
          summary,
          phases,
          requests,
        } = await measure(cluster, added, bytesPerRank);
        seconds.set(added, s);
        transferSeconds.set(added, ts);
        const groups = summary.groups.map((g) => g.receivers).join('+');
        figures.push({
          name: `scale-up → ${added} new replica(s) Ready`,
          value: s,
          unit: 's',
          notes: `${bytesPerRank} per rank, TP=2; warm starts ${summary.warmStarts}, groups ${groups}, ${(summary.totalBytes / 1e9).toFixed(2)} GB moved; after the decision (median/last): ${phases}; ${requests}`,
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
          notes: `all receivers share this machine's ${availableParallelism()} CPUs and loopback`,
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
          notes: `excludes pod start-up (2 processes per pod on ${availableParallelism()} CPUs); includes the batch window`,
        });
      }
      return figures;
    } finally {
      await cluster.stop();
    }
  },
};
