// The controller's surroundings against a real control plane: leader election, health and
// metrics endpoints, pods of a plain Deployment (any workload), a missing WeightSource, an
// invalid InferenceDeployment, and template roll-outs.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  API_VERSION,
  GROUP,
  Kinds,
  Labels,
  Plurals,
  VERSION,
  WEIGHTS_READY,
} from '../../src/api/v1alpha1/index.ts';
import { type ManagerConfig, startController } from '../../src/controller/manager.ts';
import { WeightSourceRefs } from '../../src/controller/weightsource/reconciler.ts';
import { type KubeObject, Resources } from '../../src/shared/kube.ts';
import { silentLogger } from '../../src/shared/log.ts';
import { applyObjects, conditionOf, installCrds, useCluster, waitFor } from '../support/cluster.ts';
import { FakeAgents, type PodObject } from '../support/fake-agent.ts';

const cluster = useCluster({ nodes: 2, gpusPerNode: 8 });
const IDS = { group: GROUP, version: VERSION, plural: Plurals.InferenceDeployment } as const;
let crds: Promise<unknown> | undefined;

function config(namespace: string, overrides: Partial<ManagerConfig> = {}): ManagerConfig {
  return {
    namespace,
    identity: 'test',
    leaderElect: false,
    leaseNamespace: namespace,
    leaseName: 'seedcast-controller',
    leaseDurationSeconds: 3,
    agentImage: 'seedcast:test',
    agentGpuSharing: 'EnvVar',
    agentPort: 9400,
    agentServiceAccount: undefined,
    agentTokenSecret: undefined,
    agentResources: undefined,
    workers: 2,
    resyncSeconds: 30,
    retentionSeconds: 600,
    watchNodes: true,
    ...overrides,
  };
}

async function namespaceWithSource(t: TestContext): Promise<string> {
  crds ??= installCrds(cluster.client);
  await crds;
  const namespace = await cluster.namespace(t, 'ctrl-api');
  await applyObjects(
    cluster.client,
    [
      {
        apiVersion: API_VERSION,
        kind: Kinds.WeightSource,
        metadata: { name: 'model' },
        spec: {
          model: 'm',
          engine: { name: 'fixture', version: '1' },
          transfer: { transports: ['tcp'], batchWindowSeconds: 0 },
        },
      },
    ],
    { namespace },
  );
  return namespace;
}

function plainDeployment(name: string, source: string, replicas: number): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, [Labels.weightSource]: source } },
        spec: {
          readinessGates: [{ conditionType: WEIGHTS_READY }],
          containers: [{ name: 'engine', image: 'engine:test' }],
        },
      },
    },
  };
}

async function podsOf(namespace: string, app: string): Promise<PodObject[]> {
  const list = await cluster.client.list<PodObject>(
    { ...Resources.pods, namespace },
    { labelSelector: `app=${app}` },
  );
  return list.items.filter((p) => p.metadata.deletionTimestamp === undefined);
}

describe('controller surroundings', () => {
  it('one leader at a time; the standby takes over when the leader stops', async (t) => {
    const namespace = await namespaceWithSource(t);
    const a = await startController(
      cluster.client,
      config(namespace, { identity: 'a', leaderElect: true }),
      silentLogger(),
    );
    t.after(() => a.stop());
    await waitFor('a leads', async () => a.leading());
    const b = await startController(
      cluster.client,
      config(namespace, { identity: 'b', leaderElect: true }),
      silentLogger(),
    );
    t.after(() => b.stop());
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(b.leading(), false, 'b stands by');
    await a.stop();
    await waitFor('b leads', async () => b.leading(), { timeoutMs: 10_000 });
    // The new leader does the work: a pod of a plain Deployment gets its cold load.
    await applyObjects(cluster.client, [plainDeployment('plain', 'model', 1)], { namespace });
    const agents = new FakeAgents(cluster.client, namespace);
    agents.start('model');
    t.after(() => agents.stop());
    await waitFor('plain pod Ready through the gate', async () => {
      const [pod] = await podsOf(namespace, 'plain');
      return pod !== undefined && conditionOf(pod, 'Ready')?.status === 'True' ? pod : undefined;
    });
  });

  it('serves /healthz, /readyz and /metrics', async (t) => {
    const namespace = await namespaceWithSource(t);
    const c = await startController(
      cluster.client,
      config(namespace, { metricsPort: 0, healthPort: 0, bindAddress: '127.0.0.1' }),
      silentLogger(),
    );
    t.after(() => c.stop());
    await c.synced();
    const get = (port: number | undefined, path: string) => fetch(`http://127.0.0.1:${port}${path}`);
    assert.equal((await get(c.healthPort, '/healthz')).status, 200);
    assert.equal((await get(c.healthPort, '/readyz')).status, 200);
    await c.idle();
    const metrics = await (await get(c.metricsPort, '/metrics')).text();
    assert.match(metrics, /# TYPE seedcast_reconcile_total counter/);
    assert.match(metrics, /seedcast_seeds\{namespace="[^"]+",weight_source="model"\} 0/);
    assert.equal((await get(c.metricsPort, '/healthz')).status, 404);
  });

  it('pods of any workload take part; a missing WeightSource is a condition naming the label', async (t) => {
    const namespace = await namespaceWithSource(t);
    const c = await startController(cluster.client, config(namespace), silentLogger());
    t.after(() => c.stop());
    await applyObjects(
      cluster.client,
      [plainDeployment('ok', 'model', 2), plainDeployment('orphan', 'nope', 1)],
      {
        namespace,
      },
    );
    const agents = new FakeAgents(cluster.client, namespace);
    const started = new Set<string>();
    agents.start('model');
    t.after(() => agents.stop());
    await waitFor(
      'both plain pods Ready',
      async () => {
        const pods = await podsOf(namespace, 'ok');
        return pods.length === 2 && pods.every((p) => conditionOf(p, 'Ready')?.status === 'True')
          ? true
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const [orphan] = await podsOf(namespace, 'orphan');
    assert.ok(orphan !== undefined);
    started.add(orphan.metadata.name);
    await agents.announce(orphan.metadata.name);
    const condition = await waitFor('WeightSourceMissing', async () => {
      const p = await cluster.client.get<PodObject>({
        ...Resources.pods,
        namespace,
        name: orphan.metadata.name,
      });
      const c = conditionOf(p, WEIGHTS_READY);
      return c?.reason === 'WeightSourceMissing' ? c : undefined;
    });
    assert.equal(condition.status, 'False');
    assert.match(
      condition.message ?? '',
      /^metadata\.labels\[seedcast\.dev\/weight-source\]: WeightSource .*\/nope not found/,
    );
    const events = await cluster.client.list<KubeObject & { reason?: string; regarding?: { name?: string } }>(
      {
        ...Resources.events,
        namespace,
      },
    );
    assert.ok(
      events.items.some(
        (e) => e.reason === 'WeightSourceMissing' && e.regarding?.name === orphan.metadata.name,
      ),
    );
  });

  it('an invalid InferenceDeployment gets Invalid naming the field; fixing it renders the Deployment; template changes roll out', async (t) => {
    const namespace = await namespaceWithSource(t);
    const c = await startController(cluster.client, config(namespace), silentLogger());
    t.after(() => c.stop());
    const id = (command?: string[], env?: string) => ({
      apiVersion: API_VERSION,
      kind: Kinds.InferenceDeployment,
      metadata: { name: 'llm' },
      spec: {
        replicas: 1,
        weightSource: 'model',
        agent: { mode: 'InContainer' },
        template: {
          spec: {
            containers: [
              {
                name: 'engine',
                image: 'engine:test',
                ...(command === undefined ? {} : { command }),
                ...(env === undefined ? {} : { env: [{ name: 'V', value: env }] }),
              },
            ],
          },
        },
      },
    });
    await applyObjects(cluster.client, [id()], { namespace });
    const invalid = await waitFor('Invalid', async () => {
      const o = await cluster.client.get({ ...IDS, namespace, name: 'llm' });
      return conditionOf(o, 'Invalid')?.status === 'True' ? conditionOf(o, 'Invalid') : undefined;
    });
    assert.match(invalid.message ?? '', /spec\.template\.spec\.containers\[0\]\.command/);
    assert.equal(await cluster.client.find({ ...Resources.deployments, namespace, name: 'llm' }), undefined);

    await applyObjects(cluster.client, [id(['serve'], '1')], { namespace });
    const deployment = await waitFor('Deployment', async () =>
      cluster.client.find<
        KubeObject & { spec: { template: { spec: { containers: Array<{ command: string[] }> } } } }
      >({
        ...Resources.deployments,
        namespace,
        name: 'llm',
      }),
    );
    assert.deepEqual(deployment.spec.template.spec.containers[0]?.command.slice(-2), ['--', 'serve']);
    await waitFor('Invalid cleared', async () => {
      const o = await cluster.client.get({ ...IDS, namespace, name: 'llm' });
      return conditionOf(o, 'Invalid') === undefined ? true : undefined;
    });
    const generation = deployment.metadata.generation ?? 0;
    await applyObjects(cluster.client, [id(['serve'], '2')], { namespace });
    await waitFor('template rolled out', async () => {
      const d = await cluster.client.get({ ...Resources.deployments, namespace, name: 'llm' });
      return (d.metadata.generation ?? 0) > generation ? true : undefined;
    });
  });

  it("the WeightSource's bucket size reaches every agent it serves, and a change rolls the pods", async (t) => {
    const namespace = await namespaceWithSource(t);
    const c = await startController(cluster.client, config(namespace), silentLogger());
    t.after(() => c.stop());
    await applyObjects(
      cluster.client,
      [
        {
          apiVersion: API_VERSION,
          kind: Kinds.InferenceDeployment,
          metadata: { name: 'llm' },
          spec: {
            replicas: 1,
            weightSource: 'model',
            template: { spec: { containers: [{ name: 'engine', image: 'engine:test' }] } },
          },
        },
      ],
      { namespace },
    );
    type Env = Array<{ name: string; value?: string }>;
    type Agent = { name: string; env?: Env };
    const bucketEnv = async (): Promise<string | null | undefined> => {
      const d = await cluster.client.find<
        KubeObject & { spec: { template: { spec: { initContainers?: Agent[] } } } }
      >({ ...Resources.deployments, namespace, name: 'llm' });
      if (d === undefined) return undefined;
      const agent = d.spec.template.spec.initContainers?.find((x) => x.name === 'seedcast-agent');
      return agent?.env?.find((e) => e.name === 'SEEDCAST_BUCKET_BYTES')?.value ?? null;
    };
    assert.equal(
      await waitFor('Deployment', async () => ((await bucketEnv()) === undefined ? undefined : true)),
      true,
    );
    assert.equal(await bucketEnv(), null, 'no bucket setting without transfer.bucketMiB');
    const source = await cluster.client.get({ ...WeightSourceRefs.sources, namespace, name: 'model' });
    await applyObjects(
      cluster.client,
      [
        {
          apiVersion: API_VERSION,
          kind: Kinds.WeightSource,
          metadata: { name: 'model' },
          spec: {
            ...(source.spec as object),
            transfer: { transports: ['tcp'], batchWindowSeconds: 0, bucketMiB: 1024 },
          },
        },
      ],
      { namespace },
    );
    assert.equal(
      await waitFor('bucket size injected', async () =>
        (await bucketEnv()) === '1024Mi' ? '1024Mi' : undefined,
      ),
      '1024Mi',
    );
  });
});
