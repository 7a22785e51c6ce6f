// Test helper on top of src/devcluster: one real control plane per test file (or the one named
// by SEEDCAST_KUBECONFIG, reused and left running), a fresh namespace per test, server-side apply
// of YAML, and waits on conditions.
//
//   const cluster = useCluster();               // before/after hooks of the file
//   test('x', async (t) => {
//     const ns = await cluster.namespace(t);    // deleted when the test ends
//     await applyYaml(cluster.client, text, { namespace: ns });
//   });
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import { type DevClusterState, down, readState, up } from '../../src/devcluster/cluster.ts';
import { errorMessage, SeedcastError } from '../../src/shared/errors.ts';
import { KubeClient, type KubeObject, type ResourceRef, Resources } from '../../src/shared/kube.ts';

export const FIELD_MANAGER = 'seedcast-tests';

export interface TestCluster {
  kubeconfig: string;
  /** For @kubernetes/client-node users. */
  kubeConfig: KubeConfig;
  /** seedcast's own client (server-side apply, subresources, watches). */
  client: KubeClient;
  /** Set when this process started the cluster (and stops it in `stop`). */
  dir?: string;
  /** The dev cluster's state (pod CIDR, ports, nodes) when it is one (next to the kubeconfig). */
  state?: DevClusterState;
  stop(): Promise<void>;
}

export interface StartOptions {
  nodes?: number;
  gpusPerNode?: number;
  /** Also start metrics-server (for HPA tests). */
  metrics?: boolean;
}

/**
 * A cluster for this process: the one SEEDCAST_KUBECONFIG names (reused, never stopped here), or
 * a fresh one in a temporary directory, stopped and removed by `stop()`.
 */
export async function startCluster(options: StartOptions = {}): Promise<TestCluster> {
  const existing = process.env.SEEDCAST_KUBECONFIG;
  if (existing !== undefined && existing !== '') {
    const client = await KubeClient.create({ kubeconfig: existing });
    const state = await readState(dirname(existing)).catch(() => undefined);
    return {
      kubeconfig: existing,
      kubeConfig: loadKubeConfig(existing),
      client,
      ...(state === undefined ? {} : { state }),
      stop: () => client.close(),
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'seedcast-cluster-'));
  const quiet = process.env.SEEDCAST_TEST_CLUSTER_LOG !== '1';
  const log = (line: string) => {
    if (!quiet) process.stderr.write(`[test-cluster] ${line}\n`);
  };
  try {
    const state = await up({
      dir,
      nodes: options.nodes ?? 2,
      gpusPerNode: options.gpusPerNode ?? 8,
      metrics: options.metrics ?? false,
      log,
    });
    const client = await KubeClient.create({ kubeconfig: state.kubeconfig });
    // If the test process ends without `stop()` (a crash, a cancelled run), take the cluster
    // along: the components run detached and would otherwise outlive it.
    const killOnExit = () => {
      for (const c of state.components) {
        try {
          process.kill(-c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    process.once('exit', killOnExit);
    return {
      kubeconfig: state.kubeconfig,
      kubeConfig: loadKubeConfig(state.kubeconfig),
      client,
      dir,
      state,
      stop: async () => {
        process.off('exit', killOnExit);
        await client.close();
        await down({ dir, log });
        if (process.env.SEEDCAST_KEEP_TEST_CLUSTER !== '1') await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    // Logs stay in `dir` for the post-mortem.
    throw new SeedcastError(
      'SEEDCAST_ERR_CLUSTER',
      `test cluster in ${dir} did not start: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
}

function loadKubeConfig(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

export interface ClusterFixture {
  /** Resolves once the cluster is up (starts it if no hook did yet). */
  ready(): Promise<TestCluster>;
  readonly cluster: TestCluster;
  readonly client: KubeClient;
  /** A fresh namespace (with its default ServiceAccount), deleted after the test. */
  namespace(t: TestContext, prefix?: string): Promise<string>;
}

/**
 * Registers before/after hooks: starts a cluster for this file and stops it at the end. Other
 * root-level hooks may run before the start finished: they `await fixture.ready()`.
 */
export function useCluster(options: StartOptions = {}): ClusterFixture {
  let cluster: TestCluster | undefined;
  let starting: Promise<TestCluster> | undefined;
  const ready = (): Promise<TestCluster> => {
    starting ??= startCluster(options).then((c) => {
      cluster = c;
      return c;
    });
    return starting;
  };
  before(ready);
  after(async () => {
    if (starting !== undefined) await (await starting.catch(() => undefined))?.stop();
  });
  const get = (): TestCluster => {
    if (cluster === undefined)
      throw new Error('useCluster(): the cluster is not started yet (await ready())');
    return cluster;
  };
  return {
    ready,
    get cluster() {
      return get();
    },
    get client() {
      return get().client;
    },
    namespace: async (t, prefix = 'test') => {
      const client = (await ready()).client;
      const name = await createNamespace(client, prefix);
      t.after(() => deleteNamespace(client, name));
      return name;
    },
  };
}

let namespaceCounter = 0;

export async function createNamespace(client: KubeClient, prefix = 'test'): Promise<string> {
  const slug = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 30)
    .replace(/-+$/, '');
  const name = `${slug}-${process.pid}-${++namespaceCounter}`;
  await client.create(Resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  // The ServiceAccount admission plugin refuses pods until the controller made `default`.
  await waitFor(`ServiceAccount default in ${name}`, () =>
    client.find({ group: '', version: 'v1', plural: 'serviceaccounts', namespace: name, name: 'default' }),
  );
  return name;
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await client.delete({ ...Resources.namespaces, name });
}

/** Polls `probe` until it returns something other than undefined/false; returns that value. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : ` (last error: ${errorMessage(lastError)})`;
      throw new SeedcastError(
        'SEEDCAST_ERR_TIMEOUT',
        `timed out after ${timeoutMs} ms waiting for ${what}${why}`,
      );
    }
    await sleep(options.intervalMs ?? 100);
  }
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export function conditionOf(obj: unknown, type: string): Condition | undefined {
  const conditions = (obj as { status?: { conditions?: Condition[] } }).status?.conditions ?? [];
  return conditions.find((c) => c.type === type);
}

/** Waits until `ref`'s condition `type` has `status` (default "True"); returns the object. */
export function waitForCondition<T = KubeObject>(
  client: KubeClient,
  ref: ResourceRef & { name: string },
  type: string,
  status = 'True',
  options: { timeoutMs?: number } = {},
): Promise<T> {
  return waitFor(
    `${ref.plural}/${ref.name} condition ${type}=${status}`,
    async () => {
      const obj = await client.get<T>(ref);
      return conditionOf(obj, type)?.status === status ? obj : undefined;
    },
    options,
  );
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

const discoveryCache = new WeakMap<KubeClient, Map<string, ApiResource[]>>();

/** Maps apiVersion+kind to a resource through discovery (cached per client). */
export async function resourceFor(
  client: KubeClient,
  apiVersion: string,
  kind: string,
): Promise<Omit<ResourceRef, 'namespace' | 'name'> & { namespaced: boolean }> {
  let cache = discoveryCache.get(client);
  if (cache === undefined) {
    cache = new Map();
    discoveryCache.set(client, cache);
  }
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const find = async (refresh: boolean) => {
    let resources = refresh ? undefined : cache.get(apiVersion);
    if (resources === undefined) {
      const path = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
      resources = (await client.request<{ resources: ApiResource[] }>('GET', path)).resources;
      cache.set(apiVersion, resources);
    }
    return resources.find((r) => r.kind === kind && !r.name.includes('/'));
  };
  // A CRD applied a moment ago may not be in the cached list yet.
  const found = (await find(false).catch(() => undefined)) ?? (await find(true).catch(() => undefined));
  if (found === undefined) {
    throw new SeedcastError(
      'SEEDCAST_ERR_NOT_FOUND',
      `the API server does not serve kind ${kind} in ${apiVersion}`,
    );
  }
  return { group: group ?? '', version: version ?? '', plural: found.name, namespaced: found.namespaced };
}

/** Parses multi-document YAML (text or file) into objects, skipping empty documents. */
export async function loadYaml(source: { text: string } | { file: string }): Promise<KubeObject[]> {
  const text = 'text' in source ? source.text : await readFile(source.file, 'utf8');
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJSON() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object');
}

/**
 * Server-side applies each object (namespaced ones into `namespace` when given, replacing what
 * the YAML says) and returns the objects as the API server stored them.
 */
export async function applyObjects(
  client: KubeClient,
  objects: readonly KubeObject[],
  options: { namespace?: string; fieldManager?: string } = {},
): Promise<KubeObject[]> {
  const applied: KubeObject[] = [];
  for (const obj of objects) {
    const resource = await resourceFor(client, obj.apiVersion, obj.kind);
    const namespace = resource.namespaced
      ? (options.namespace ?? obj.metadata.namespace ?? 'default')
      : undefined;
    const body = { ...obj, metadata: { ...obj.metadata, ...(namespace === undefined ? {} : { namespace }) } };
    const { namespaced: _, ...ref } = resource;
    applied.push(
      await client.apply(
        { ...ref, ...(namespace === undefined ? {} : { namespace }), name: obj.metadata.name },
        body,
        options.fieldManager ?? FIELD_MANAGER,
      ),
    );
  }
  return applied;
}

export async function applyYaml(
  client: KubeClient,
  source: string | { file: string },
  options: { namespace?: string; fieldManager?: string } = {},
): Promise<KubeObject[]> {
  const objects = await loadYaml(typeof source === 'string' ? { text: source } : source);
  return applyObjects(client, objects, options);
}

/** Applies the generated CRDs in crds/ and waits until each is Established. */
export async function installCrds(
  client: KubeClient,
  dir = new URL('../../crds/', import.meta.url),
): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  const names: string[] = [];
  for (const file of files) {
    for (const crd of await applyYaml(client, { file: new URL(file, dir).pathname })) {
      names.push(crd.metadata.name);
    }
  }
  for (const name of names) {
    await waitForCondition(
      client,
      { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name },
      'Established',
    );
  }
  return names;
}
