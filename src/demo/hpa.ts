// The real HorizontalPodAutoscaler on the dev cluster, and the load knob that drives it.
//
// Pipeline (all real components, only the kubelet is simulated): a pod's CPU usage is its
// annotation DEMO_CPU_USAGE_ANNOTATION -> KWOK's simulated kubelet `/metrics/resource` ->
// metrics-server (every METRIC_RESOLUTION_SECONDS) -> metrics.k8s.io -> the HPA controller in
// kube-controller-manager (synced every second on the dev cluster) -> the target's `/scale`.
// Needs a cluster started with `up({ metrics: true })` (`dev-cluster up --metrics`).
//
// The knob models traffic, not per-pod numbers: `set(total)` spreads `total` milli-CPU evenly over
// the target's Ready pods (a Service only sends requests to Ready pods) and re-spreads whenever
// pods come, turn Ready or go. The HPA then settles at ceil(total / target) replicas — a stable
// point, where a fixed per-pod load would have it scale to max (or to min) and stay there.
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_POD_CPU_USAGE, DEMO_CPU_USAGE_ANNOTATION } from '../devcluster/kwok.ts';
import { errorMessage, SeedcastError } from '../shared/errors.ts';
import { type KubeClient, type KubeObject, Resources } from '../shared/kube.ts';
import type { Logger } from '../shared/log.ts';

export const HPA_RESOURCE = {
  group: 'autoscaling',
  version: 'v2',
  plural: 'horizontalpodautoscalers',
} as const;
export { DEMO_CPU_USAGE_ANNOTATION };

const FIELD_MANAGER = 'seedcast-demo';

export interface HpaOptions {
  name: string;
  /** What the HPA scales through its `/scale` subresource (needs `status.selector`). */
  target: { apiVersion: string; kind: string; name: string };
  minReplicas: number;
  maxReplicas: number;
  /**
   * Average CPU per pod the HPA aims for, in milli-CPU (an AverageValue target: no CPU requests
   * needed), or `{ utilization: percent }` of the pods' CPU requests.
   */
  targetCpu: number | { utilization: number };
  /**
   * Scale-down guards against the metrics' lag (CPU is a rate over a scrape interval):
   * recommendations are held this long (default 10 s: a load drop half-way through a scrape
   * interval first shows half-way) …
   */
  scaleDownStabilizationSeconds?: number;
  /**
   * … and at most half the replicas go per this period (default 30 s): right after a scale-in
   * the remaining pods' metrics still show their old, lower share for up to two scrapes.
   */
  scaleDownPeriodSeconds?: number;
}

/** An `autoscaling/v2` HorizontalPodAutoscaler with fast, dev-cluster behaviour. */
export function hpaManifest(options: HpaOptions) {
  const target =
    typeof options.targetCpu === 'number'
      ? { type: 'AverageValue', averageValue: `${Math.round(options.targetCpu)}m` }
      : { type: 'Utilization', averageUtilization: options.targetCpu.utilization };
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: options.name },
    spec: {
      scaleTargetRef: options.target,
      minReplicas: options.minReplicas,
      maxReplicas: options.maxReplicas,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target } }],
      behavior: {
        // Scale up at once, as far as the metric says.
        scaleUp: {
          stabilizationWindowSeconds: 0,
          selectPolicy: 'Max',
          policies: [
            { type: 'Percent', value: 1000, periodSeconds: 1 },
            { type: 'Pods', value: 16, periodSeconds: 1 },
          ],
        },
        scaleDown: {
          stabilizationWindowSeconds: options.scaleDownStabilizationSeconds ?? 10,
          selectPolicy: 'Max',
          policies: [{ type: 'Percent', value: 50, periodSeconds: options.scaleDownPeriodSeconds ?? 30 }],
        },
      },
    },
  };
}

export async function applyHpa(kube: KubeClient, namespace: string, options: HpaOptions): Promise<void> {
  await kube.apply({ ...HPA_RESOURCE, namespace, name: options.name }, hpaManifest(options), FIELD_MANAGER);
}

export async function deleteHpa(kube: KubeClient, namespace: string, name: string): Promise<void> {
  await kube.delete({ ...HPA_RESOURCE, namespace, name });
}

interface HpaObject {
  status?: {
    currentReplicas?: number;
    desiredReplicas?: number;
    lastScaleTime?: string;
    currentMetrics?: Array<{
      resource?: { name: string; current?: { averageValue?: string; averageUtilization?: number } };
    }>;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

export interface HpaStatus {
  currentReplicas: number;
  desiredReplicas: number;
  lastScaleTime?: string;
  /** The average CPU per pod the HPA last saw (a quantity), once metrics arrived. */
  currentCpu?: string;
  /** `ScalingActive` False says why the HPA can't compute (e.g. no metrics yet). */
  conditions: Array<{ type: string; status: string; reason?: string; message?: string }>;
}

export async function readHpa(kube: KubeClient, namespace: string, name: string): Promise<HpaStatus> {
  const hpa = await kube.get<HpaObject>({ ...HPA_RESOURCE, namespace, name });
  const cpu = hpa.status?.currentMetrics?.find((m) => m.resource?.name === 'cpu')?.resource?.current;
  const currentCpu =
    cpu?.averageValue ?? (cpu?.averageUtilization === undefined ? undefined : `${cpu.averageUtilization}%`);
  return {
    currentReplicas: hpa.status?.currentReplicas ?? 0,
    desiredReplicas: hpa.status?.desiredReplicas ?? 0,
    ...(hpa.status?.lastScaleTime === undefined ? {} : { lastScaleTime: hpa.status.lastScaleTime }),
    ...(currentCpu === undefined ? {} : { currentCpu }),
    conditions: hpa.status?.conditions ?? [],
  };
}

/** Waits until the HPA decided on `replicas` (status.desiredReplicas); returns when it saw it. */
export async function waitForHpaDesired(
  kube: KubeClient,
  namespace: string,
  name: string,
  replicas: number,
  timeoutMs: number,
): Promise<HpaStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: HpaStatus | undefined;
  for (;;) {
    last = await readHpa(kube, namespace, name).catch(() => last);
    if (last?.desiredReplicas === replicas) return last;
    if (Date.now() > deadline) {
      const why = last?.conditions.map((c) => `${c.type}=${c.status} ${c.reason ?? ''}`).join('; ');
      throw new SeedcastError(
        'SEEDCAST_ERR_TIMEOUT',
        `HPA ${namespace}/${name}: desiredReplicas ${last?.desiredReplicas ?? '?'} (cpu ${last?.currentCpu ?? '?'}), not ${replicas} after ${timeoutMs} ms (${why ?? 'no status'})`,
      );
    }
    await sleep(200);
  }
}

interface PodLike {
  metadata: KubeObject['metadata'] & { deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

const isServing = (pod: PodLike): boolean =>
  pod.metadata.deletionTimestamp === undefined &&
  pod.status?.phase === 'Running' &&
  (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

export interface LoadKnobOptions {
  kube: KubeClient;
  namespace: string;
  /** The target's pods (its `status.selector`, e.g. `app=tiny`). */
  labelSelector: string;
  /** How often pods are re-checked (default 500 ms). */
  intervalMs?: number;
  log?: Logger;
}

/**
 * The load knob: sets DEMO_CPU_USAGE_ANNOTATION on the target's pods so that `total` milli-CPU
 * is spread evenly over the Ready ones; pods not Ready idle. Runs until `stop()`.
 */
export class LoadKnob {
  readonly options: LoadKnobOptions;
  #total = 0;
  #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: LoadKnobOptions) {
    this.options = options;
  }

  /** Total load in milli-CPU across the Ready pods. */
  get total(): number {
    return this.#total;
  }

  /** Sets the total load and applies it to the pods now (and keeps it applied). */
  async set(totalMilliCpu: number): Promise<void> {
    if (!Number.isFinite(totalMilliCpu) || totalMilliCpu < 0) {
      throw new SeedcastError('SEEDCAST_ERR_INVALID', `load must be >= 0 milli-CPU, got ${totalMilliCpu}`, {
        retryable: false,
      });
    }
    this.#total = totalMilliCpu;
    this.options.log?.info({ totalMilliCpu }, 'load set');
    await this.#apply();
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const interval = this.options.intervalMs ?? 500;
    while (!this.#stop.signal.aborted) {
      await sleep(interval, undefined, { signal: this.#stop.signal }).catch(() => undefined);
      if (this.#stop.signal.aborted) break;
      await this.#apply().catch((err) => this.options.log?.warn({ err: errorMessage(err) }, 'load knob'));
    }
  }

  /** One pass: the share each pod should carry, patched where it differs. */
  async #apply(): Promise<void> {
    const { kube, namespace, labelSelector } = this.options;
    const pods = (await kube.list<PodLike>({ ...Resources.pods, namespace }, { labelSelector })).items;
    const serving = pods.filter(isServing);
    const share = serving.length === 0 ? 0 : Math.max(1, Math.round(this.#total / serving.length));
    await Promise.all(
      pods
        .filter((p) => p.metadata.deletionTimestamp === undefined)
        .map(async (pod) => {
          const want = serving.includes(pod) && share > 0 ? `${share}m` : DEFAULT_POD_CPU_USAGE;
          if (pod.metadata.annotations?.[DEMO_CPU_USAGE_ANNOTATION] === want) return;
          await kube
            .mergePatch(
              { ...Resources.pods, namespace, name: pod.metadata.name },
              { metadata: { annotations: { [DEMO_CPU_USAGE_ANNOTATION]: want } } },
              FIELD_MANAGER,
            )
            .catch(() => undefined); // gone meanwhile: the next pass sees the new set
        }),
    );
  }
}
