// The real ReplicaSet controller creates a Deployment's pods, the real scheduler places them on
// fake GPU nodes, KWOK runs them; a pod stays not Ready until its readiness gate
// (seedcast.dev/weights-ready) is True, and turns not Ready again when the gate goes False.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WEIGHTS_READY } from '../../src/api/v1alpha1/names.ts';
import { type KubeObject, Resources } from '../../src/shared/kube.ts';
import { applyObjects, conditionOf, useCluster, waitFor, waitForCondition } from '../support/cluster.ts';

const cluster = useCluster({ nodes: 2, gpusPerNode: 8 });

interface Pod extends KubeObject {
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: Array<{ type: string; status: string; reason?: string }>;
    containerStatuses?: Array<{ name: string; ready: boolean }>;
  };
}

function gatedDeployment(name: string, replicas: number): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          readinessGates: [{ conditionType: WEIGHTS_READY }],
          containers: [
            {
              name: 'engine',
              image: 'example.invalid/engine:1',
              resources: { limits: { 'nvidia.com/gpu': '4' } },
            },
          ],
        },
      },
    },
  };
}

const setGate = (ns: string, pod: string, status: 'True' | 'False') =>
  cluster.client.apply(
    { ...Resources.pods, namespace: ns, name: pod, subresource: 'status' },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod, namespace: ns },
      status: { conditions: [{ type: WEIGHTS_READY, status, reason: 'Test' }] },
    },
    'seedcast-tests',
  );

test('a Deployment pod runs on a fake GPU node and is Ready only while its readiness gate is True', async (t) => {
  const ns = await cluster.namespace(t, 'gated');
  await applyObjects(cluster.client, [gatedDeployment('gated', 2)], { namespace: ns });

  const pods = await waitFor(
    '2 Running pods with pod IPs',
    async () => {
      const list = await cluster.client.list<Pod>(
        { ...Resources.pods, namespace: ns },
        { labelSelector: 'app=gated' },
      );
      const running = list.items.filter((p) => p.status.phase === 'Running' && p.status.podIP !== undefined);
      return running.length === 2 ? running : undefined;
    },
    { timeoutMs: 60_000 },
  );
  // Pod IPs are loopback addresses (bindable by local processes), distinct per pod.
  const cidr = cluster.cluster.state?.podCidr;
  const prefix = cidr === undefined ? '127' : cidr.split('.').slice(0, 2).join('.');
  assert.equal(new Set(pods.map((p) => p.status.podIP)).size, pods.length, 'distinct pod IPs');
  for (const pod of pods) {
    assert.equal(
      pod.metadata.ownerReferences?.[0]?.kind,
      'ReplicaSet',
      'created by the ReplicaSet controller',
    );
    assert.match(pod.spec.nodeName ?? '', /^gpu-node-\d+$/, 'scheduled onto a fake node');
    assert.ok(
      pod.status.podIP?.startsWith(`${prefix}.`),
      `pod IP ${pod.status.podIP} in ${cidr ?? '127.0.0.0/8'}`,
    );
    assert.ok(pod.status.containerStatuses?.every((c) => c.ready));
    assert.equal(conditionOf(pod, 'ContainersReady')?.status, 'True');
    assert.equal(conditionOf(pod, 'Ready')?.status, 'False');
    assert.equal(conditionOf(pod, 'Ready')?.reason, 'ReadinessGatesNotReady');
  }
  // Two 4-GPU pods on 8-GPU nodes: the scheduler counted nvidia.com/gpu.
  const [first, second] = pods.map((p) => p.metadata.name) as [string, string];

  // Nothing but the gate makes it Ready: still not Ready a moment later.
  await new Promise((r) => setTimeout(r, 1000));
  const still = await cluster.client.get<Pod>({ ...Resources.pods, namespace: ns, name: first });
  assert.equal(conditionOf(still, 'Ready')?.status, 'False');

  await setGate(ns, first, 'True');
  await waitForCondition(cluster.client, { ...Resources.pods, namespace: ns, name: first }, 'Ready', 'True');
  const other = await cluster.client.get<Pod>({ ...Resources.pods, namespace: ns, name: second });
  assert.equal(conditionOf(other, 'Ready')?.status, 'False', 'the other pod is still gated');
  await waitFor('Deployment readyReplicas=1', async () => {
    const d = await cluster.client.get<{ status: { readyReplicas?: number } }>({
      ...Resources.deployments,
      namespace: ns,
      name: 'gated',
    });
    return d.status.readyReplicas === 1;
  });

  await setGate(ns, first, 'False');
  const notReady = await waitForCondition<Pod>(
    cluster.client,
    { ...Resources.pods, namespace: ns, name: first },
    'Ready',
    'False',
  );
  assert.equal(
    conditionOf(notReady, WEIGHTS_READY)?.status,
    'False',
    "the test's gate condition survived KWOK",
  );
});

test('deleting a pod lets the ReplicaSet controller replace it', async (t) => {
  const ns = await cluster.namespace(t, 'replace');
  await applyObjects(cluster.client, [gatedDeployment('replace', 1)], { namespace: ns });
  const ref = { ...Resources.pods, namespace: ns };
  const first = await waitFor('a Running pod', async () => {
    const list = await cluster.client.list<Pod>(ref, { labelSelector: 'app=replace' });
    return list.items.find((p) => p.status.phase === 'Running');
  });
  await cluster.client.delete({ ...ref, name: first.metadata.name });
  await waitFor('a replacement pod Running', async () => {
    const list = await cluster.client.list<Pod>(ref, { labelSelector: 'app=replace' });
    return list.items.length === 1 && list.items[0]!.metadata.name !== first.metadata.name
      ? list.items[0]!.status.phase === 'Running'
      : false;
  });
});
