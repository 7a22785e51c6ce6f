// `seedcast demo`: the README's main job. Starts a dev cluster (building it from source the
// first time), installs seedcast with Helm, applies a WeightSource and an InferenceDeployment
// (TP=2, fixture engine), lets the real HPA scale it 1 → 4 → 2 (metrics-server reading KWOK's
// simulated pod CPU, driven by a load knob) with a live view, then a timeline per pod and the
// totals. Cleans up after itself.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseOrThrow } from '../api/v1alpha1/validate.ts';
import { LiveView } from '../demo/live-view.ts';
import { ScaleOutScenario } from '../demo/scenario.ts';
import { renderSummary } from '../demo/timeline.ts';
import { down, up } from '../devcluster/cluster.ts';
import { errorMessage } from '../shared/errors.ts';
import { KubeClient } from '../shared/kube.ts';
import { createLogger } from '../shared/log.ts';

const HELP = `usage: seedcast demo [options]

  --steps LIST          replica counts to scale through (default 1,4,2)
  --bytes-per-rank SIZE weights per rank held by each fixture engine (default 256MiB)
  --summary-json FILE   also write the summary as JSON
  --keep                leave the dev cluster running (prints its kubeconfig)
  --log-level LEVEL     log level of the demo's own logs (default warn)
`;

const options = z.object({
  steps: z
    .string()
    .regex(/^\d+(,\d+)*$/, { message: 'must be comma-separated replica counts, e.g. 1,4,2' })
    .transform((s) => s.split(',').map(Number))
    .refine((s) => s[0] === 1, { message: 'must start at 1 (the first replica cold-loads)' }),
  bytesPerRank: z
    .string()
    .regex(/^\d+(Ki|Mi|Gi|KiB|MiB|GiB)?$/, { message: 'must be a size such as 256MiB' }),
  summaryJson: z.string().optional(),
  keep: z.boolean(),
  logLevel: z.string(),
});

/** The HPA's per-pod CPU target; the load knob spreads a total over the Ready pods. */
const TARGET_MILLI_CPU = 500;

/** A total load under which the HPA settles at `replicas` (well above the max: one jump). */
function loadFor(replicas: number, max: number): number {
  return replicas === max ? max * 2 * TARGET_MILLI_CPU : Math.round(replicas * 0.8 * TARGET_MILLI_CPU);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '1,4,2' },
      'bytes-per-rank': { type: 'string', default: '256MiB' },
      'summary-json': { type: 'string' },
      keep: { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = parseOrThrow(
    options,
    {
      steps: values.steps,
      bytesPerRank: values['bytes-per-rank'],
      summaryJson: values['summary-json'],
      keep: values.keep,
      logLevel: values['log-level'],
    },
    'demo options',
  );
  const log = createLogger({ name: 'seedcast-demo', level: config.logLevel });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const workDir = await mkdtemp(join(tmpdir(), 'sc-demo-'));
  const clusterDir = join(workDir, 'cluster');
  let scenario: ScaleOutScenario | undefined;
  let kube: KubeClient | undefined;
  let code = 0;
  let cleaned = false;
  const cleanUp = async () => {
    if (cleaned) return;
    cleaned = true;
    if (config.keep) {
      say(`cluster left running: seedcast dev-cluster down --dir ${clusterDir}`);
      return;
    }
    await scenario?.tearDown().catch(() => undefined);
    await kube?.close();
    await down({ dir: clusterDir }).catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  };
  // Ctrl-C still stops every process the demo started.
  const interrupted = (signal: NodeJS.Signals) => {
    say(`\n${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    say(
      '▶ starting a local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, KWOK, metrics-server)',
    );
    const t0 = Date.now();
    const state = await up({
      dir: clusterDir,
      nodes: 4,
      gpusPerNode: 8,
      metrics: true,
      log: (line) => say(`  ${line}`),
    });
    say(`  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s — kubeconfig: ${state.kubeconfig}`);
    kube = await KubeClient.create({ kubeconfig: state.kubeconfig });
    scenario = new ScaleOutScenario({
      kube,
      kubeconfig: state.kubeconfig,
      namespace: 'demo',
      workDir,
      bytesPerRank: config.bytesPerRank,
      driver: 'hpa',
      hpa: { min: 1, max: Math.max(...config.steps), targetMilliCpu: TARGET_MILLI_CPU },
      log,
    });
    const view = new LiveView(scenario.observer, scenario.startedAt, say);
    say(
      '▶ helm install seedcast; apply WeightSource "tiny" (TP=2), InferenceDeployment "tiny" and an HPA on its /scale',
    );
    await scenario.setUp();
    view.start();
    const max = Math.max(...config.steps);
    for (const [i, replicas] of config.steps.entries()) {
      const load = loadFor(replicas, max);
      if (i > 0 && replicas < config.steps[i - 1]!) {
        say('  waiting until metrics-server reports every pod (the HPA needs their samples to scale in)');
        await scenario.waitForPodMetrics(120_000);
      }
      await scenario.setLoad(load);
      if (i > 0)
        say(
          `▶ load → ${load}m CPU in total: the HPA (target ${TARGET_MILLI_CPU}m per pod) scales to ${replicas}`,
        );
      await scenario.waitForReady(replicas, 300_000, { reported: true });
      say(`  ${replicas} replica(s) Ready`);
    }
    view.stop();
    const summary = scenario.summary();
    say('\n▶ timeline (seconds since the demo applied the workload)\n');
    say(renderSummary(summary, scenario.startedAt));
    if (config.summaryJson !== undefined) {
      await writeFile(config.summaryJson, `${JSON.stringify(summary, null, 2)}\n`);
      say(`\nsummary written to ${config.summaryJson}`);
    }
    if (summary.readyBeforeVerified.length > 0) code = 1;
  } catch (err) {
    process.stderr.write(`seedcast demo: ${errorMessage(err)}\n`);
    code = 1;
  } finally {
    await cleanUp();
  }
  return code;
}
