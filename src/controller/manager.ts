// Wires the controller: informers → keyed queues → reconcilers, leader election, /healthz,
// /readyz and /metrics, graceful shutdown. `startController` is what the CLI and the
// integration tests call.
import { createServer, type Server } from 'node:http';
import { Labels } from '../api/v1alpha1/index.ts';
import { type Clock, systemClock } from '../shared/clock.ts';
import { Informer } from '../shared/informer.ts';
import type { KubeClient, KubeObject } from '../shared/kube.ts';
import { Resources } from '../shared/kube.ts';
import { LeaderElector } from '../shared/leader.ts';
import type { Logger } from '../shared/log.ts';
import { METRICS_CONTENT_TYPE } from '../shared/metrics.ts';
import { WorkQueue } from '../shared/queue.ts';
import type { ControllerConfig } from './config.ts';
import { EventRecorder } from './events.ts';
import { InferenceDeploymentReconciler } from './inferencedeployment/reconciler.ts';
import { type ControllerMetrics, controllerMetrics } from './metrics.ts';
import { type PodObject, WeightSourceReconciler, WeightSourceRefs } from './weightsource/reconciler.ts';

/** Pod events touch InferenceDeployment status counters only; bursts of them share one pass. */
const ID_STATUS_COALESCE_MS = 250;

export type ManagerConfig = Pick<
  ControllerConfig,
  | 'namespace'
  | 'identity'
  | 'leaderElect'
  | 'leaseNamespace'
  | 'leaseName'
  | 'leaseDurationSeconds'
  | 'agentImage'
  | 'agentGpuSharing'
  | 'agentPort'
  | 'agentServiceAccount'
  | 'agentTokenSecret'
  | 'agentResources'
  | 'workers'
  | 'resyncSeconds'
  | 'retentionSeconds'
  | 'watchNodes'
> & { metricsPort?: number; healthPort?: number; bindAddress?: string };

export interface RunningController {
  metrics: ControllerMetrics;
  /** Ports actually bound (0 in the config picks a free one). */
  metricsPort?: number;
  healthPort?: number;
  leading(): boolean;
  /** Waits until the informers synced (after winning the election). */
  synced(): Promise<void>;
  /** Waits until both queues are empty and idle; for tests. */
  idle(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when the controller stopped (shutdown or lost leadership). */
  done: Promise<void>;
}

export async function startController(
  client: KubeClient,
  config: ManagerConfig,
  logger: Logger,
  clock: Clock = systemClock,
): Promise<RunningController> {
  const metrics = controllerMetrics();
  const abort = new AbortController();
  const resyncMs = config.resyncSeconds * 1000;
  const namespace = config.namespace;
  const informer = <T extends KubeObject = KubeObject>(
    resource: ConstructorParameters<typeof Informer>[1]['resource'],
    extra: { labelSelector?: string; clusterScoped?: boolean } = {},
  ) =>
    new Informer<T>(client, {
      resource,
      namespace: extra.clusterScoped ? undefined : namespace,
      labelSelector: extra.labelSelector,
      resyncMs,
      logger,
    });
  const sources = informer(WeightSourceRefs.sources);
  const transfers = informer(WeightSourceRefs.transfers);
  const inferenceDeployments = informer(WeightSourceRefs.deployments);
  const pods = informer<PodObject>(Resources.pods, { labelSelector: Labels.weightSource });
  const deployments = informer(Resources.deployments, { labelSelector: Labels.inferenceDeployment });
  const nodes = config.watchNodes ? informer(Resources.nodes, { clusterScoped: true }) : undefined;
  const all = [sources, transfers, inferenceDeployments, pods, deployments, ...(nodes ? [nodes] : [])];

  const events = new EventRecorder(client, config.identity, logger);
  const sourceReconciler = new WeightSourceReconciler({
    client,
    sources,
    transfers,
    pods,
    inferenceDeployments,
    nodes,
    clock,
    logger,
    events,
    metrics,
    retentionMs: config.retentionSeconds * 1000,
  });
  const idReconciler = new InferenceDeploymentReconciler({
    client,
    inferenceDeployments,
    deployments,
    sources,
    pods,
    clock,
    logger,
    events,
    injection: {
      image: config.agentImage,
      agentPort: config.agentPort,
      gpuSharing: config.agentGpuSharing,
      resources: config.agentResources,
      tokenSecret: config.agentTokenSecret,
      serviceAccountName: config.agentServiceAccount,
    },
  });
  const observe = (controller: string) => (outcome: string, seconds: number) => {
    metrics.reconciles.inc({ controller, outcome });
    metrics.reconcileSeconds.observe({ controller }, seconds);
  };
  // Sources serialise every decision about their pods and transfers: one reconcile per source.
  const sourceQueue = new WorkQueue((key) => sourceReconciler.reconcile(key), {
    name: 'weightsource',
    workers: config.workers,
    logger,
    onResult: observe('weightsource'),
  });
  const idQueue = new WorkQueue((key) => idReconciler.reconcile(key), {
    name: 'inferencedeployment',
    workers: config.workers,
    logger,
    onResult: observe('inferencedeployment'),
  });
  const ns = (o: KubeObject) => o.metadata.namespace ?? '';
  // Nothing is reconciled before every cache synced: a transfer seen before its pods would look
  // like its seed and receivers vanished (and be failed). After the sync every key is enqueued.
  let accepting = false;
  const on = <T extends KubeObject>(i: Informer<T>, handler: (o: T) => void) =>
    i.on((_t, o) => {
      if (accepting) handler(o);
    });
  const enqueueAll = () => {
    accepting = true;
    for (const o of sources.list()) sourceQueue.add(`${ns(o)}/${o.metadata.name}`);
    for (const o of [...transfers.list(), ...pods.list()]) {
      const source = o.metadata.labels?.[Labels.weightSource];
      if (source !== undefined) sourceQueue.add(`${ns(o)}/${source}`);
    }
    for (const o of inferenceDeployments.list()) idQueue.add(`${ns(o)}/${o.metadata.name}`);
  };
  on(sources, (o) => sourceQueue.add(`${ns(o)}/${o.metadata.name}`));
  on(transfers, (o) => {
    const source = o.metadata.labels?.[Labels.transferSource];
    if (source !== undefined) sourceQueue.add(`${ns(o)}/${source}`);
  });
  on(pods, (o) => {
    const source = o.metadata.labels?.[Labels.weightSource];
    if (source !== undefined) sourceQueue.add(`${ns(o)}/${source}`);
    // Pod churn only moves counters in the InferenceDeployment status: coalesce bursts.
    const id = o.metadata.labels?.[Labels.inferenceDeployment];
    if (id !== undefined) idQueue.addAfter(`${ns(o)}/${id}`, ID_STATUS_COALESCE_MS);
  });
  on(inferenceDeployments, (o) => {
    idQueue.add(`${ns(o)}/${o.metadata.name}`);
    const source = (o.spec as { weightSource?: unknown } | undefined)?.weightSource;
    if (typeof source === 'string') sourceQueue.add(`${ns(o)}/${source}`);
  });
  on(sources, (o) => {
    for (const id of inferenceDeployments.list((d) => ns(d) === ns(o))) {
      if ((id.spec as { weightSource?: unknown } | undefined)?.weightSource === o.metadata.name) {
        idQueue.add(`${ns(id)}/${id.metadata.name}`);
      }
    }
  });
  on(deployments, (o) => {
    const id = o.metadata.labels?.[Labels.inferenceDeployment];
    if (id !== undefined) idQueue.add(`${ns(o)}/${id}`);
  });

  let leading = !config.leaderElect;
  let syncedAll = false;
  const syncWaiters: Array<() => void> = [];
  const runInformers = async (signal: AbortSignal) => {
    const running = all.map((i) => i.run(signal));
    await Promise.all(all.map((i) => i.waitForSync()));
    syncedAll = true;
    enqueueAll();
    for (const resolve of syncWaiters.splice(0)) resolve();
    logger.info({ namespace: namespace ?? '<all>' }, 'caches synced');
    await Promise.all(running);
  };

  // Health and metrics servers.
  const servers: Server[] = [];
  const handler = (paths: string[]) =>
    createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (paths.includes('/metrics') && path === '/metrics') {
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
        res.end(metrics.registry.render());
      } else if (paths.includes('/healthz') && path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
      } else if (paths.includes('/readyz') && path === '/readyz') {
        // A standby is ready (it serves metrics and waits); a leader once its caches synced.
        const ready = !leading || syncedAll;
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ready ? 'ok\n' : 'caches not synced\n');
      } else {
        res.writeHead(404).end();
      }
    });
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, config.bindAddress ?? '0.0.0.0', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  let metricsPort: number | undefined;
  let healthPort: number | undefined;
  if (
    config.metricsPort !== undefined &&
    config.healthPort !== undefined &&
    config.metricsPort !== 0 &&
    config.metricsPort === config.healthPort
  ) {
    const server = handler(['/metrics', '/healthz', '/readyz']);
    servers.push(server);
    metricsPort = healthPort = await listen(server, config.metricsPort);
  } else {
    if (config.metricsPort !== undefined) {
      const server = handler(['/metrics']);
      servers.push(server);
      metricsPort = await listen(server, config.metricsPort);
    }
    if (config.healthPort !== undefined) {
      const server = handler(['/healthz', '/readyz']);
      servers.push(server);
      healthPort = await listen(server, config.healthPort);
    }
  }

  const lead = async (signal: AbortSignal) => {
    leading = true;
    metrics.leader.set({}, 1);
    try {
      await runInformers(signal);
    } finally {
      leading = false;
      metrics.leader.set({}, 0);
      await Promise.all([sourceQueue.shutdown(), idQueue.shutdown()]);
      await Promise.race([events.flush(), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
  };
  const done = (async () => {
    try {
      if (config.leaderElect) {
        const elector = new LeaderElector(client, {
          namespace: config.leaseNamespace,
          name: config.leaseName,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationSeconds * 1000,
          renewDeadlineMs: Math.max(1000, Math.floor(config.leaseDurationSeconds * 1000 * 0.66)),
          retryPeriodMs: Math.max(200, Math.floor((config.leaseDurationSeconds * 1000) / 7)),
          logger,
        });
        await elector.run(abort.signal, lead);
      } else {
        await lead(abort.signal);
      }
    } finally {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
  })();

  return {
    metrics,
    metricsPort,
    healthPort,
    leading: () => leading,
    synced: () => (syncedAll ? Promise.resolve() : new Promise((resolve) => syncWaiters.push(resolve))),
    idle: async () => {
      await Promise.all([sourceQueue.idle(), idQueue.idle()]);
    },
    stop: async () => {
      abort.abort();
      await done;
    },
    done,
  };
}
