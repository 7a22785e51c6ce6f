// The warm-start scale-out scene, run by the real components on a dev cluster: Helm installs
// seedcast (the controller runs as a pod, started by the pod runner as a local process with its
// ServiceAccount's token), a WeightSource and an InferenceDeployment are applied, replicas change
// through /scale (as HPA does) and an observer records every pod's timeline. Shared by
// `seedcast demo`, the e2e test and the `scale-out` benchmark.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { API_VERSION, GROUP, Kinds, Plurals, VERSION } from '../api/v1alpha1/names.ts';
import { RUN_VOLUME } from '../controller/inferencedeployment/inject.ts';
import { ensureBinaries, REPO_ROOT } from '../devcluster/binaries.ts';
import { PodRunner, type RunnablePod } from '../devcluster/pod-runner.ts';
import { SeedcastError } from '../shared/errors.ts';
import { type KubeClient, Resources } from '../shared/kube.ts';
import type { Logger } from '../shared/log.ts';
import { applyHpa, deleteHpa, type HpaStatus, LoadKnob, readHpa } from './hpa.ts';
import { ScaleOutObserver } from './observer.ts';
import { type ScaleOutSummary, summarize } from './timeline.ts';

const run = promisify(execFile);

export const SYSTEM_NAMESPACE = 'seedcast-system';
export const RELEASE = 'seedcast';
// Inside the shared run volume, so the pod runner (and so the observer) can read it.
const ENGINE_STATUS_FILE = '/var/run/seedcast/engine-status.json';

export interface ScenarioOptions {
  kube: KubeClient;
  /** Admin kubeconfig (Helm, the CA for minted pod kubeconfigs). */
  kubeconfig: string;
  namespace: string;
  workDir: string;
  name?: string;
  tensorParallel?: number;
  /** Bytes per rank held by the fixture engine, e.g. `256MiB`. */
  bytesPerRank?: string;
  /** Simulated cold-load time per rank, so a storage load costs something. */
  coldLoadMs?: number;
  /**
   * Fixture engines hash their weights after a load or receive, so the summary can say every pod
   * holds the seed's bytes (default true). A benchmark may turn it off: a real engine does not
   * hash, and on a small machine the hashing competes with the scale-out it measures.
   */
  digests?: boolean;
  batchWindowSeconds?: number;
  /**
   * Who changes replicas: `scale` (default) — the caller, through `scaleTo` (what HPA writes);
   * `hpa` — the real HPA (needs a cluster with metrics: `up({ metrics: true })`), created by
   * `setUp` with `hpa`'s settings, and driven by `setLoad`.
   */
  driver?: 'scale' | 'hpa';
  hpa?: HpaSettings;
  log: Logger;
}

export interface HpaSettings {
  /** Default 1. */
  min?: number;
  /** Default 4. */
  max?: number;
  /** Average CPU per Ready pod the HPA aims for, milli-CPU (default 500). */
  targetMilliCpu?: number;
}

/**
 * SEEDCAST_POD_NODE_FLAGS: extra Node flags for every local pod process, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile agents and engines during a scale-out.
 */
const POD_NODE_FLAGS = (process.env.SEEDCAST_POD_NODE_FLAGS ?? '').split(' ').filter((f) => f.length > 0);

/** The command line a container of the seedcast image runs, as a local process. */
export function localCommand(container: { image?: string; command?: string[]; args?: string[] }) {
  const entrypoint = container.command ?? (container.image?.includes('seedcast') ? ['seedcast'] : []);
  const argv = [...entrypoint, ...(container.args ?? [])];
  if (argv[0] !== 'seedcast') return undefined;
  // The script path is local and must never be mistaken for a path inside a volume (a pod with
  // an emptyDir at /tmp would otherwise remap a checkout under /tmp).
  return {
    command: process.execPath,
    localArgs: [...POD_NODE_FLAGS, join(REPO_ROOT, 'bin', 'seedcast.js')],
    args: argv.slice(1),
  };
}

export function weightSourceManifest(
  options: Required<Pick<ScenarioOptions, 'name' | 'tensorParallel'>> & {
    batchWindowSeconds: number;
  },
) {
  return {
    apiVersion: API_VERSION,
    kind: Kinds.WeightSource,
    metadata: { name: options.name },
    spec: {
      model: `seedcast/${options.name}-fixture`,
      revision: 'v1',
      layout: { tensorParallel: options.tensorParallel, pipelineParallel: 1 },
      engine: { name: 'fixture', version: '0.1.0' },
      transfer: {
        transports: ['tcp'],
        ports: { start: 40000, count: 64 },
        batchWindowSeconds: options.batchWindowSeconds,
        maxReceiversPerGroup: 16,
        maxConcurrentPerSeed: 2,
        timeoutSeconds: 120,
      },
      coldStart: { policy: 'Single', maxWaitSeconds: 120 },
    },
  };
}

export function inferenceDeploymentManifest(options: {
  name: string;
  tensorParallel: number;
  bytesPerRank: string;
  coldLoadMs: number;
  replicas: number;
  digests?: boolean;
}) {
  return {
    apiVersion: API_VERSION,
    kind: Kinds.InferenceDeployment,
    metadata: { name: options.name },
    spec: {
      replicas: options.replicas,
      weightSource: options.name,
      minSeeds: 1,
      template: {
        metadata: { labels: { app: options.name } },
        spec: {
          containers: [
            {
              name: 'engine',
              image: 'ghcr.io/seedcast/seedcast:0.1.0',
              command: ['seedcast', 'fixture-engine'],
              args: [
                `--tp=${options.tensorParallel}`,
                `--size=${options.bytesPerRank}`,
                `--model=seedcast/${options.name}-fixture`,
                '--revision=v1',
                '--engine-version=0.1.0',
                `--load-delay-ms=${options.coldLoadMs}`,
                `--status-file=${ENGINE_STATUS_FILE}`,
                ...(options.digests === false ? ['--digest=off'] : []),
              ],
              resources: { limits: { 'nvidia.com/gpu': String(options.tensorParallel) } },
            },
          ],
        },
      },
    },
  };
}

export class ScaleOutScenario {
  readonly options: ScenarioOptions & { name: string; tensorParallel: number; bytesPerRank: string };
  readonly observer: ScaleOutObserver;
  readonly startedAt = Date.now();
  #runner: PodRunner | undefined;
  #helm = '';
  #installed = false;
  #knob: LoadKnob | undefined;

  constructor(options: ScenarioOptions) {
    this.options = {
      ...options,
      name: options.name ?? 'tiny',
      tensorParallel: options.tensorParallel ?? 2,
      bytesPerRank: options.bytesPerRank ?? '64MiB',
    };
    this.observer = new ScaleOutObserver({
      kube: options.kube,
      namespace: options.namespace,
      weightSource: this.options.name,
      ...(options.digests === false ? {} : { readDigests: (pod) => this.readDigests(pod) }),
    });
  }

  get runner(): PodRunner | undefined {
    return this.#runner;
  }

  /** Installs seedcast with Helm, starts the pod runner, applies the workload with one replica. */
  async setUp(): Promise<void> {
    const { kube, namespace, log } = this.options;
    const binaries = await ensureBinaries(['helm'], { log: (line: string) => log.info(line) });
    this.#helm = binaries.helm;
    for (const ns of [namespace, SYSTEM_NAMESPACE]) {
      await kube.apply(
        { ...Resources.namespaces, name: ns },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
        'seedcast-demo',
      );
    }
    log.info({ namespace }, 'installing seedcast with helm');
    await this.#helmRun([
      'upgrade',
      '--install',
      RELEASE,
      join(REPO_ROOT, 'charts', 'seedcast'),
      '--namespace',
      SYSTEM_NAMESPACE,
      '--set',
      `namespaces={${namespace}}`,
      '--set',
      'controller.replicas=1',
      '--set',
      'controller.logLevel=info',
      '--wait=false',
    ]);
    this.#installed = true;
    await mkdir(this.options.workDir, { recursive: true });
    this.#runner = new PodRunner({
      kube,
      workDir: join(this.options.workDir, 'p'),
      images: localCommand,
      kubeconfig: (pod) => this.#kubeconfigFor(pod),
      log: log.child({ component: 'pod-runner' }),
      // The dev cluster's engines are CPU fixtures staging in host memory: their agents set up no
      // GPU, even on a machine that has one (16 agents each opening a CUDA context on one shared
      // GPU took 1.3-3.5 s to start instead of ~0.3 on the lent 16-core H200 host).
      env: { SEEDCAST_LOG_LEVEL: process.env.SEEDCAST_LOG_LEVEL ?? 'info', SEEDCAST_GPU: 'off' },
    });
    this.#runner.start();
    this.observer.start();
    const batchWindowSeconds = this.options.batchWindowSeconds ?? 2;
    const { name, tensorParallel, bytesPerRank } = this.options;
    await this.#apply(
      Plurals.WeightSource,
      weightSourceManifest({ name, tensorParallel, batchWindowSeconds }),
    );
    await this.#apply(
      Plurals.InferenceDeployment,
      inferenceDeploymentManifest({
        name,
        tensorParallel,
        bytesPerRank,
        coldLoadMs: this.options.coldLoadMs ?? 3000,
        ...(this.options.digests === undefined ? {} : { digests: this.options.digests }),
        replicas: 1,
      }),
    );
    if (this.options.driver === 'hpa') await this.enableHpa(this.options.hpa);
  }

  /**
   * Puts a real HorizontalPodAutoscaler (autoscaling/v2, CPU AverageValue target) on the
   * InferenceDeployment's /scale and starts the load knob. Replicas then follow `setLoad`:
   * ceil(total / targetMilliCpu), within [min, max]. Don't mix with `scaleTo`.
   */
  async enableHpa(settings: HpaSettings = {}): Promise<void> {
    const { kube, namespace, name, log } = this.options;
    const min = settings.min ?? 1;
    const max = settings.max ?? 4;
    const targetCpu = settings.targetMilliCpu ?? 500;
    log.info({ min, max, targetMilliCpu: targetCpu }, 'creating the HPA');
    await applyHpa(kube, namespace, {
      name,
      target: { apiVersion: API_VERSION, kind: Kinds.InferenceDeployment, name },
      minReplicas: min,
      maxReplicas: max,
      targetCpu,
    });
    this.#knob ??= new LoadKnob({
      kube,
      namespace,
      labelSelector: `app=${name}`,
      log: log.child({ component: 'load' }),
    });
  }

  /**
   * The load knob: `totalMilliCpu` of simulated CPU spread evenly over the Ready pods (KWOK reports
   * it, metrics-server serves it, the HPA reacts within about 10–20 s). With the default 500m
   * target and max 4: `setLoad(2000)` → 4 replicas, `setLoad(800)` → 2.
   */
  async setLoad(totalMilliCpu: number): Promise<void> {
    if (this.#knob === undefined) {
      throw new SeedcastError('SEEDCAST_ERR_INVALID', 'setLoad needs the HPA: enableHpa() or driver "hpa"', {
        retryable: false,
      });
    }
    await this.#knob.set(totalMilliCpu);
  }

  /** The HPA's view: current/desired replicas and the average CPU it last saw. */
  hpaStatus(): Promise<HpaStatus> {
    return readHpa(this.options.kube, this.options.namespace, this.options.name);
  }

  /** Sets replicas through the /scale subresource — exactly what HPA writes. */
  async scaleTo(replicas: number): Promise<void> {
    const { kube, namespace, name, log } = this.options;
    log.info({ replicas }, 'scaling through /scale');
    await kube.mergePatch(
      {
        group: GROUP,
        version: VERSION,
        plural: Plurals.InferenceDeployment,
        namespace,
        name,
        subresource: 'scale',
      },
      { spec: { replicas } },
    );
  }

  /** Waits until exactly `replicas` pods exist and all of them are Ready. */
  /**
   * Waits for `replicas` Ready pods. `reported`: also until each one's receiver entry says
   * verified in a transfer — a pod turns Ready on its agent's record on the pod, which lands before
   * that entry; a summary (warm starts, bytes, GB/s) is read from the entries.
   */
  async waitForReady(
    replicas: number,
    timeoutMs: number,
    options: { reported?: boolean } = {},
  ): Promise<void> {
    const reported = (name: string, uid: string) =>
      this.observer.transfers.some(
        (t) =>
          t.spec.receivers.some((r) => r.uid === uid) &&
          t.status?.receivers?.some((e) => e.pod === name && e.phase === 'Succeeded' && e.verified),
      );
    await this.observer.waitFor(
      () => {
        const current = this.observer.current();
        // With local pods, also until each Ready pod's engine published its digests (the fixture
        // engine hashes its weights just after it acknowledged them).
        return (
          current.length === replicas &&
          current.every(
            (p) =>
              p.readyAt !== undefined &&
              (this.#runner === undefined || this.options.digests === false || p.rankDigests !== undefined) &&
              (options.reported !== true || reported(p.name, p.uid)),
          )
        );
      },
      timeoutMs,
      `${replicas} Ready replicas`,
    );
  }

  /**
   * Waits until metrics-server reports every current pod. The HPA computes with stale or
   * missing samples right after a scale-up; lowering the load before the new pods have metrics
   * makes it overshoot downwards (4 → 1 → 2 instead of 4 → 2).
   */
  async waitForPodMetrics(timeoutMs: number): Promise<void> {
    const { kube, namespace } = this.options;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const metrics = await kube
        .request<{ items: Array<{ metadata: { name: string } }> }>(
          'GET',
          `/apis/metrics.k8s.io/v1beta1/namespaces/${namespace}/pods`,
        )
        .catch(() => ({ items: [] }));
      const reported = new Set(metrics.items.map((m) => m.metadata.name));
      if (this.observer.current().every((p) => reported.has(p.name))) return;
      if (Date.now() > deadline) {
        throw new SeedcastError('SEEDCAST_ERR_TIMEOUT', `pod metrics not reported within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  summary(): ScaleOutSummary {
    return summarize([...this.observer.pods.values()], this.observer.transfers);
  }

  async tearDown(): Promise<void> {
    const { kube, namespace, log } = this.options;
    await this.observer.stop();
    if (this.#knob !== undefined) {
      await this.#knob.stop();
      await deleteHpa(kube, namespace, this.options.name).catch(() => undefined);
    }
    await kube
      .delete({
        group: GROUP,
        version: VERSION,
        plural: Plurals.InferenceDeployment,
        namespace,
        name: this.options.name,
      })
      .catch(() => undefined);
    if (this.#installed)
      await this.#helmRun(['uninstall', RELEASE, '--namespace', SYSTEM_NAMESPACE]).catch(() => undefined);
    await this.#runner?.stop();
    log.info('scenario torn down');
  }

  async #apply(plural: string, manifest: { metadata: { name: string } }): Promise<void> {
    await this.options.kube.apply(
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace: this.options.namespace,
        name: manifest.metadata.name,
      },
      manifest,
      'seedcast-demo',
    );
  }

  async #helmRun(args: string[]): Promise<string> {
    try {
      const { stdout } = await run(this.#helm, [...args, '--kubeconfig', this.options.kubeconfig], {
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new SeedcastError('SEEDCAST_ERR_CLUSTER', `helm ${args[0]} failed: ${e.stderr ?? e.message}`);
    }
  }

  /**
   * A kubeconfig carrying a token of the pod's own ServiceAccount (TokenRequest API), so each
   * process has exactly the rights its RBAC grants — as in a real cluster.
   */
  async #kubeconfigFor(pod: RunnablePod): Promise<string> {
    const { kube, kubeconfig, workDir } = this.options;
    const namespace = pod.metadata.namespace ?? 'default';
    const account = pod.spec.serviceAccountName ?? 'default';
    const request = await kube.create<{ status: { token: string } }>(
      { ...Resources.serviceAccounts, namespace, name: account, subresource: 'token' },
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
    );
    const admin = YAML.parse(await readFile(kubeconfig, 'utf8')) as {
      clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
    };
    const cluster = admin.clusters[0]!;
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster.name, cluster: cluster.cluster }],
      users: [{ name: account, user: { token: request.status.token } }],
      contexts: [{ name: 'pod', context: { cluster: cluster.name, user: account, namespace } }],
      'current-context': 'pod',
    };
    const dir = join(workDir, 'kubeconfigs');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${namespace}-${pod.metadata.name}-${randomBytes(4).toString('hex')}.yaml`);
    await writeFile(file, YAML.stringify(config), { mode: 0o600 });
    return file;
  }

  /** The sha256 per rank a local pod's fixture engine published; undefined while any is missing. */
  async readDigests(pod: { namespace: string; name: string }): Promise<string[] | undefined> {
    const dir = this.#runner?.podDir(pod.namespace, pod.name);
    if (dir === undefined) return undefined;
    const file = join(dir, 'v', RUN_VOLUME, 'engine-status.json');
    const status = JSON.parse(await readFile(file, 'utf8')) as {
      ranks: Array<{ rank: number; digest?: string }>;
    };
    const digests = status.ranks.sort((a, b) => a.rank - b.rank).map((r) => r.digest);
    return digests.every((d): d is string => d !== undefined) ? digests : undefined;
  }
}
