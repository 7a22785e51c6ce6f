// `seedcast dev-cluster`: a real control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, all built from source) plus KWOK playing the kubelet of fake GPU nodes, on
// free loopback ports, started the way controller-runtime's envtest starts the API server.
// Everything lives in one directory: pki/, etcd data, logs/, kubeconfig and state.json.

import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { errorMessage, SeedcastError } from '../shared/errors.ts';
import { KubeClient, Resources } from '../shared/kube.ts';
import { type BinaryName, CONTROL_PLANE_BINARIES, cacheDir, ensureBinaries } from './binaries.ts';
import { createPki, type Pki } from './certs.ts';
import {
  FAKE_NODE_SELECTOR,
  fakeNodes,
  isLoopbackCidr,
  kwokConfigYaml,
  podCidrFor,
  resourceMetricsPathFor,
} from './kwok.ts';
import { METRICS_SERVER, metricsServerArgs, registerMetricsApi, waitForMetricsApi } from './metrics.ts';
import {
  freePorts,
  isListening,
  isOurProcess,
  killGroup,
  LOOPBACK,
  listProcesses,
  logTail,
  spawnComponent,
  waitUntil,
} from './processes.ts';

export const SERVICE_CIDR = '10.0.0.0/24';
const SERVICE_IP = '10.0.0.1';
const STATE_FILE = 'state.json';

export type ComponentName =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kwok'
  | 'metrics-server';
/** Start order; `down` stops in reverse. metrics-server comes last, only with `metrics: true`. */
export const COMPONENTS: readonly ComponentName[] = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
];

export interface ComponentState {
  name: ComponentName;
  /** Also the process group id: each component leads its own group. */
  pid: number;
  port: number;
  log: string;
  binary: string;
}

export interface DevClusterState {
  version: 1;
  dir: string;
  kubeconfig: string;
  server: string;
  /** Pod IPs come from here (loopback: bindable by local processes). */
  podCidr: string;
  startedAt: string;
  nodes: string[];
  components: ComponentState[];
  /** metrics-server runs and serves metrics.k8s.io (`up({ metrics: true })`). */
  metrics?: boolean;
}

export interface UpOptions {
  dir?: string;
  nodes?: number;
  gpusPerNode?: number;
  /** Loopback CIDR for pod IPs (default 127.X.0.0/16 derived from `dir`). */
  podCidr?: string;
  /** Build missing binaries (default true); false fails instead. */
  build?: boolean;
  /**
   * Also run metrics-server behind the aggregation layer, scraping KWOK's simulated per-pod
   * usage (pod annotations, see kwok.ts): the metrics API the HPA reads (default false).
   */
  metrics?: boolean;
  /** Progress lines (the CLI prints them to stderr). */
  log?: (line: string) => void;
}

export function defaultDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), 'dev-cluster');
}

export async function readState(dir: string): Promise<DevClusterState | undefined> {
  try {
    return JSON.parse(await readFile(join(resolve(dir), STATE_FILE), 'utf8')) as DevClusterState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SeedcastError(
      'SEEDCAST_ERR_CLUSTER',
      `cannot read ${join(dir, STATE_FILE)}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
}

function kubeconfigYaml(server: string, pki: { ca: string; cert: string; key: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'seedcast-dev', cluster: { server, 'certificate-authority-data': b64(pki.ca) } }],
    users: [
      {
        name: 'seedcast-admin',
        user: { 'client-certificate-data': b64(pki.cert), 'client-key-data': b64(pki.key) },
      },
    ],
    contexts: [{ name: 'seedcast-dev', context: { cluster: 'seedcast-dev', user: 'seedcast-admin' } }],
    'current-context': 'seedcast-dev',
  });
}

/** GET over HTTPS; true on 2xx. `tls` undefined: the component's self-signed cert, loopback only. */
function httpsOk(url: string, tls?: { ca: string; cert: string; key: string }): Promise<boolean> {
  return new Promise((done) => {
    const req = httpsRequest(
      url,
      { method: 'GET', timeout: 2000, ...(tls ?? { rejectUnauthorized: false }) },
      (res) => {
        res.resume();
        done((res.statusCode ?? 500) < 300);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
    req.end();
  });
}

function httpOk(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.ok,
    () => false,
  );
}

/**
 * Starts a fresh dev cluster in `dir` (an old one there is stopped first) and returns its state;
 * the kubeconfig is at `state.kubeconfig`. On any failure everything started is stopped again.
 */
export async function up(options: UpOptions = {}): Promise<DevClusterState> {
  const log = options.log ?? (() => {});
  const dir = resolve(options.dir ?? defaultDir());
  const nodeCount = options.nodes ?? 4;
  const gpusPerNode = options.gpusPerNode ?? 8;
  if (!Number.isInteger(nodeCount) || nodeCount < 0 || nodeCount > 1000) {
    throw new SeedcastError('SEEDCAST_ERR_INVALID', `--nodes must be an integer 0..1000, got ${nodeCount}`, {
      retryable: false,
    });
  }
  if (!Number.isInteger(gpusPerNode) || gpusPerNode < 0 || gpusPerNode > 64) {
    throw new SeedcastError(
      'SEEDCAST_ERR_INVALID',
      `--gpus-per-node must be an integer 0..64, got ${gpusPerNode}`,
      {
        retryable: false,
      },
    );
  }

  const podCidr = options.podCidr ?? podCidrFor(dir);
  if (!isLoopbackCidr(podCidr)) {
    throw new SeedcastError(
      'SEEDCAST_ERR_INVALID',
      `--pod-cidr must be a loopback CIDR (127.x.y.z/8..24), got ${podCidr}`,
      {
        retryable: false,
      },
    );
  }
  const metrics = options.metrics ?? false;
  const needed = metrics ? [...CONTROL_PLANE_BINARIES, METRICS_SERVER] : CONTROL_PLANE_BINARIES;
  const bins = await ensureBinaries(needed, { build: options.build ?? true, log });
  if ((await readState(dir)) !== undefined) {
    log(`stopping the previous dev cluster in ${dir}`);
    await down({ dir, log });
  }
  // Ports are picked free and then bound by the components: another process can take one in
  // between (parallel test files). That shows as a bind error; start again on fresh ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(dir, bins, { nodeCount, gpusPerNode, podCidr, metrics }, log);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test(errorMessage(err))) throw err;
      log(`a port was taken meanwhile; starting again on fresh ports (attempt ${attempt + 1})`);
    }
  }
}

async function startOnce(
  dir: string,
  bins: Record<BinaryName, string>,
  {
    nodeCount,
    gpusPerNode,
    podCidr,
    metrics,
  }: { nodeCount: number; gpusPerNode: number; podCidr: string; metrics: boolean },
  log: (line: string) => void,
): Promise<DevClusterState> {
  const started = Date.now();
  const logs = join(dir, 'logs');
  // Fresh etcd data and certificates every time; keep nothing from an earlier cluster.
  await rm(join(dir, 'etcd'), { recursive: true, force: true });
  await rm(join(dir, 'pki'), { recursive: true, force: true });
  await rm(logs, { recursive: true, force: true });
  await mkdir(logs, { recursive: true });

  const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedulerPort, kwokPort, metricsPort] = (await freePorts(
    7,
  )) as [number, number, number, number, number, number, number];
  const server = `https://${LOOPBACK}:${apiPort}`;
  const state: DevClusterState = {
    version: 1,
    dir,
    kubeconfig: join(dir, 'kubeconfig'),
    server,
    podCidr,
    startedAt: new Date().toISOString(),
    nodes: [],
    components: [],
    ...(metrics ? { metrics: true } : {}),
  };

  const pki = await createPki(join(dir, 'pki'), {
    ips: [LOOPBACK, SERVICE_IP],
    dns: [
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ],
  });
  const adminTls = {
    ca: await readFile(pki.caCert, 'utf8'),
    cert: await readFile(pki.adminCert, 'utf8'),
    key: await readFile(pki.adminKey, 'utf8'),
  };
  await writeFile(state.kubeconfig, kubeconfigYaml(server, adminTls), { mode: 0o600 });
  await writeFile(join(dir, 'kwok.yaml'), kwokConfigYaml({ metrics }));

  // Components start in parallel: serialize the state writes, each writing the latest state.
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() => writeState(state));
    return saving;
  };

  const start = async (
    name: ComponentName,
    port: number,
    args: string[],
    ready: () => Promise<boolean>,
    timeoutMs: number,
    env?: NodeJS.ProcessEnv,
  ): Promise<void> => {
    const binary = bins[name];
    const logFile = join(logs, `${name}.log`);
    const pid = spawnComponent(binary, args, logFile, env);
    state.components.push({ name, pid, port, log: logFile, binary });
    await save();
    const t0 = Date.now();
    await waitUntil(`${name} (pid ${pid}, port ${port})`, ready, {
      timeoutMs,
      alive: () => isOurProcess(pid, dir),
      describe: () => logTail(logFile),
    });
    log(`${name} ready on ${LOOPBACK}:${port} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  };

  try {
    await start(
      'etcd',
      etcdPort,
      etcdArgs(dir, etcdPort, etcdPeerPort),
      () => httpOk(`http://${LOOPBACK}:${etcdPort}/health`),
      20_000,
    );
    await start(
      'kube-apiserver',
      apiPort,
      apiServerArgs(dir, pki, apiPort, etcdPort),
      () => httpsOk(`${server}/readyz`, adminTls),
      90_000,
    );
    // The rest need only the API server: start them together.
    await Promise.all([
      start(
        'kube-controller-manager',
        kcmPort,
        controllerManagerArgs(dir, pki, state.kubeconfig, kcmPort),
        () => httpsOk(`https://${LOOPBACK}:${kcmPort}/healthz`),
        60_000,
      ),
      start(
        'kube-scheduler',
        schedulerPort,
        schedulerArgs(dir, state.kubeconfig, schedulerPort),
        () => httpsOk(`https://${LOOPBACK}:${schedulerPort}/healthz`),
        60_000,
      ),
      start(
        'kwok',
        kwokPort,
        kwokArgs(dir, state.kubeconfig, kwokPort, podCidr),
        () => httpOk(`http://${LOOPBACK}:${kwokPort}/healthz`),
        60_000,
        // kwok also reads ~/.kwok/kwok.yaml when it exists: keep a developer's stages out.
        { ...process.env, HOME: join(dir, 'kwok-home') },
      ),
    ]);
    state.nodes = await createNodes(state.kubeconfig, nodeCount, gpusPerNode, metrics, log);
    await save();
    if (metrics) {
      // After the API server (it reads the aggregation-layer CA from kube-system) and the nodes.
      const t0 = Date.now();
      // KWOK fills its pod cache on the first metrics read (that read finds no pods): do it now,
      // not in metrics-server's first scrape.
      if (state.nodes[0] !== undefined) {
        await httpOk(`http://${LOOPBACK}:${kwokPort}${resourceMetricsPathFor(state.nodes[0])}`);
      }
      await registerMetricsApi(state.kubeconfig, pki, metricsPort);
      await start(
        'metrics-server',
        metricsPort,
        await metricsServerArgs(dir, pki, state.kubeconfig, metricsPort),
        // /readyz waits for two scrapes (a metric resolution); serving is what `up` needs.
        () => httpsOk(`https://${LOOPBACK}:${metricsPort}/livez`),
        60_000,
      );
      await waitForMetricsApi(state.kubeconfig, 60_000);
      log(`metrics.k8s.io available (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    }
    log(
      `dev cluster up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${nodeCount} nodes x ${gpusPerNode} GPUs, pod IPs from ${podCidr}`,
    );
    return state;
  } catch (err) {
    log(`start failed, stopping what was started: ${errorMessage(err)}`);
    await down({ dir, log: () => {} }).catch(() => {});
    throw err;
  }
}

async function writeState(state: DevClusterState): Promise<void> {
  const file = join(state.dir, STATE_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

function etcdArgs(dir: string, port: number, peerPort: number): string[] {
  const client = `http://${LOOPBACK}:${port}`;
  const peer = `http://${LOOPBACK}:${peerPort}`;
  return [
    '--name=seedcast-dev',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=seedcast-dev=${peer}`,
    // A throwaway test cluster: durability is not worth the fsync latency.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

function apiServerArgs(dir: string, pki: Pki, port: number, etcdPort: number): string[] {
  return [
    `--etcd-servers=http://${LOOPBACK}:${etcdPort}`,
    `--bind-address=${LOOPBACK}`,
    `--advertise-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'pki')}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caCert}`,
    '--authorization-mode=RBAC',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--service-account-issuer=https://${LOOPBACK}:${port}/`,
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    '--allow-privileged=true',
    // No kube-proxy and a loopback advertise address: the `kubernetes` Endpoints would be invalid.
    '--endpoint-reconciler-type=none',
    // Aggregation layer (metrics-server for the HPA). No kube-proxy, so no ClusterIP routing; and
    // endpoint routing (--enable-aggregator-routing) can't reach a loopback process either:
    // EndpointSlices refuse 127.0.0.0/8 addresses. The APIService's Service is an ExternalName
    // one (`localhost`), which only the default cluster resolver follows: leave routing off.
    `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
    '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${pki.frontProxyClientCert}`,
    `--proxy-client-key-file=${pki.frontProxyClientKey}`,
    '--enable-aggregator-routing=false',
    // SEEDCAST_DEV_PROFILING=1: /debug/pprof on the API server (`kubectl get --raw
    // '/debug/pprof/profile?seconds=20'`), to see where a large scale-out spends its CPU.
    `--profiling=${process.env.SEEDCAST_DEV_PROFILING === '1'}`,
  ];
}

function controllerManagerArgs(dir: string, pki: Pki, kubeconfig: string, port: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'kube-controller-manager')}`,
    '--leader-elect=false',
    `--root-ca-file=${pki.caCert}`,
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    // One client for all controllers starts faster than a token per controller.
    '--use-service-account-credentials=false',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--cluster-name=seedcast-dev',
    // HPA: react within seconds (the default 15 s sync and 5 min downscale stabilization are
    // for production). An HPA's own spec.behavior overrides the stabilization.
    '--horizontal-pod-autoscaler-sync-period=1s',
    '--horizontal-pod-autoscaler-downscale-stabilization=5s',
    '--profiling=false',
  ];
}

function schedulerArgs(dir: string, kubeconfig: string, port: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'kube-scheduler')}`,
    '--leader-elect=false',
    '--profiling=false',
  ];
}

function kwokArgs(dir: string, kubeconfig: string, port: number, podCidr: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--config=${join(dir, 'kwok.yaml')}`,
    `--manage-nodes-with-annotation-selector=${FAKE_NODE_SELECTOR}`,
    `--cidr=${podCidr}`,
    `--node-ip=${LOOPBACK}`,
    `--server-address=${LOOPBACK}:${port}`,
    `--node-port=${port}`,
    '--node-lease-duration-seconds=40',
  ];
}

async function createNodes(
  kubeconfig: string,
  count: number,
  gpusPerNode: number,
  resourceMetrics: boolean,
  log: (line: string) => void,
): Promise<string[]> {
  const client = await KubeClient.create({ kubeconfig });
  try {
    const nodes = fakeNodes({ count, gpusPerNode, resourceMetrics });
    const names = nodes.map((n) => (n.metadata as { name: string }).name);
    await Promise.all(nodes.map((node) => client.create(Resources.nodes, node)));
    const t0 = Date.now();
    await waitUntil(
      `${count} fake nodes Ready`,
      async () => {
        const list = await client.list<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          Resources.nodes,
        );
        const ready = list.items.filter((n) =>
          (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length >= count;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    log(`${count} fake GPU nodes Ready (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    if (names[0] !== undefined) await warmPodIpPool(client, names[0]);
    return names;
  } finally {
    await client.close();
  }
}

/**
 * KWOK (v0.8.0, pod_controller.go `ipPool`) creates its pod-IP pool lazily with a Load-then-Store
 * that is not atomic: when the first two pods of a cluster get their IPs at the same moment, each
 * can create its own pool and both receive the pool's first address (seen in CI: two pods, one
 * IP). One pod given an IP before anyone else's creates the pool alone; later pods share it.
 */
async function warmPodIpPool(client: KubeClient, node: string): Promise<void> {
  const ref = { ...Resources.pods, namespace: 'default', name: 'seedcast-pod-ip-pool-warmup' };
  await client.create(
    { ...Resources.pods, namespace: 'default' },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: ref.name },
      spec: { nodeName: node, containers: [{ name: 'warmup', image: 'example.invalid/warmup:1' }] },
    },
  );
  await waitUntil(
    'the KWOK pod-IP pool (a warm-up pod with an IP)',
    async () => {
      const pod = await client.get<{ status?: { podIP?: string } }>(ref);
      return pod.status?.podIP !== undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  // KWOK's delete stage finishes the deletion (there is no kubelet).
  await client.delete(ref);
  await waitUntil('the warm-up pod gone', async () => (await client.find(ref)) === undefined, {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
}

export interface DownOptions {
  dir?: string;
  log?: (line: string) => void;
}

/**
 * Stops every component of the cluster in `dir` (process groups, reverse start order), checks
 * that no process and no port is left, and removes state.json (logs stay for post-mortems).
 * Returns false when there was no cluster.
 */
export async function down(options: DownOptions = {}): Promise<boolean> {
  const log = options.log ?? (() => {});
  const dir = resolve(options.dir ?? defaultDir());
  const state = await readState(dir);
  if (state === undefined) return false;
  for (const c of [...state.components].reverse()) {
    // Guard against pid reuse: only a process still running with our directory in its args.
    if (await isOurProcess(c.pid, dir)) {
      const t0 = Date.now();
      await killGroup(c.pid);
      log(`stopped ${c.name} (pid ${c.pid}, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    }
  }
  const leftovers = await leftoverProcesses(dir);
  if (leftovers.length > 0) {
    throw new SeedcastError(
      'SEEDCAST_ERR_CLUSTER',
      `processes of the dev cluster in ${dir} are still running: ${leftovers.map((p) => `${p.pid} (${p.cmdline.slice(0, 80)})`).join(', ')}`,
    );
  }
  for (const c of state.components) {
    await waitUntil(`port ${c.port} of ${c.name} to close`, async () => !(await isListening(c.port)), {
      timeoutMs: 5000,
    });
  }
  await rm(join(dir, STATE_FILE), { force: true });
  await rm(join(dir, 'etcd'), { recursive: true, force: true });
  return true;
}

/** Processes whose command line names `dir` (every component's does): none after `down`. */
export async function leftoverProcesses(dir: string): Promise<Array<{ pid: number; cmdline: string }>> {
  const marker = resolve(dir);
  return (await listProcesses()).filter((p) => p.pid !== process.pid && p.cmdline.includes(`${marker}/`));
}

export interface ComponentStatus {
  name: ComponentName;
  pid: number;
  port: number;
  running: boolean;
  listening: boolean;
}

export interface StatusReport {
  dir: string;
  state?: DevClusterState;
  components: ComponentStatus[];
  apiServerReady: boolean;
  /** Every component running and listening, and the API server ready. */
  healthy: boolean;
}

export async function status(options: { dir?: string } = {}): Promise<StatusReport> {
  const dir = resolve(options.dir ?? defaultDir());
  const state = await readState(dir);
  if (state === undefined) return { dir, components: [], apiServerReady: false, healthy: false };
  const components = await Promise.all(
    state.components.map(async (c) => ({
      name: c.name,
      pid: c.pid,
      port: c.port,
      running: await isOurProcess(c.pid, dir),
      listening: await isListening(c.port),
    })),
  );
  let apiServerReady = false;
  try {
    const kc = YAML.parse(await readFile(state.kubeconfig, 'utf8')) as {
      clusters: Array<{ cluster: Record<string, string> }>;
      users: Array<{ user: Record<string, string> }>;
    };
    const d = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();
    apiServerReady = await httpsOk(`${state.server}/readyz`, {
      ca: d(kc.clusters[0]?.cluster['certificate-authority-data']),
      cert: d(kc.users[0]?.user['client-certificate-data']),
      key: d(kc.users[0]?.user['client-key-data']),
    });
  } catch {
    apiServerReady = false;
  }
  const expected = COMPONENTS.length + (state.metrics === true ? 1 : 0);
  const healthy =
    apiServerReady && components.length === expected && components.every((c) => c.running && c.listening);
  return { dir, state, components, apiServerReady, healthy };
}

/** Waits (briefly) for the API server of a running cluster; used by reusers of a cluster. */
export async function waitForApiServer(dir: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await status({ dir })).apiServerReady) {
    if (Date.now() > deadline) {
      throw new SeedcastError('SEEDCAST_ERR_TIMEOUT', `the dev cluster API server in ${dir} is not ready`);
    }
    await sleep(200);
  }
}
