// The real HPA on the dev cluster: metrics-server reads KWOK's simulated pod usage (a pod
// annotation), the HPA controller scales a Deployment through /scale, and the load knob moves it
// up and down. Starts its own cluster with metrics (or reuses SEEDCAST_KUBECONFIG's when that one
// runs metrics-server).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { applyHpa, LoadKnob, readHpa, waitForHpaDesired } from '../../src/demo/hpa.ts';
import { down, readState, up } from '../../src/devcluster/cluster.ts';
import { KubeClient, Resources } from '../../src/shared/kube.ts';
import { createNamespace, deleteNamespace, waitFor } from '../support/cluster.ts';

let kube: KubeClient;
let ownDir: string | undefined;

before(async () => {
  const existing = process.env.SEEDCAST_KUBECONFIG;
  if (existing !== undefined && existing !== '' && (await readState(dirname(existing)))?.metrics === true) {
    kube = await KubeClient.create({ kubeconfig: existing });
    return;
  }
  ownDir = await mkdtemp(join(tmpdir(), 'seedcast-hpa-'));
  const state = await up({ dir: ownDir, nodes: 2, metrics: true });
  kube = await KubeClient.create({ kubeconfig: state.kubeconfig });
});

after(async () => {
  await kube?.close();
  if (ownDir !== undefined) {
    await down({ dir: ownDir });
    await rm(ownDir, { recursive: true, force: true });
  }
});

function deployment(name: string, replicas: number) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'engine', image: 'example.invalid/engine:1' }] },
      },
    },
  };
}

interface PodMetricsList {
  items: Array<{ metadata: { name: string }; containers: Array<{ name: string; usage: { cpu: string } }> }>;
}

/** CPU quantity ("512m", "1", "1234567n") in milli-CPU. */
function milliCpu(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(n|u|m)?$/.exec(q);
  assert.ok(m, `cpu quantity ${q}`);
  const scale = { n: 1e-6, u: 1e-3, m: 1 }[m[2] as 'n' | 'u' | 'm'] ?? 1000;
  return Number(m[1]) * scale;
}

const replicasOf = async (namespace: string, name: string) =>
  (
    await kube.get<{ spec: { replicas: number } }>({
      ...Resources.deployments,
      namespace,
      name,
      subresource: 'scale',
    })
  ).spec.replicas;

test("metrics.k8s.io serves the load knob's CPU; the HPA scales a Deployment up and down with it", async (t) => {
  const ns = await createNamespace(kube, 'hpa');
  t.after(() => deleteNamespace(kube, ns));
  await kube.apply({ ...Resources.deployments, namespace: ns, name: 'web' }, deployment('web', 1), 'test');
  const knob = new LoadKnob({ kube, namespace: ns, labelSelector: 'app=web' });
  t.after(() => knob.stop());
  await knob.set(200); // 1 replica at a 500m target: comfortably below
  // The metrics API serves the pod's simulated usage (two scrapes after the pod started).
  const t0 = Date.now();
  const cpu = await waitFor(
    'pod metrics at ~200m',
    async () => {
      const list = await kube.request<PodMetricsList>(
        'GET',
        `/apis/metrics.k8s.io/v1beta1/namespaces/${ns}/pods`,
      );
      const usage = list.items[0]?.containers.find((c) => c.name === 'engine')?.usage.cpu;
      return usage !== undefined && Math.abs(milliCpu(usage) - 200) < 20 ? usage : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  t.diagnostic(`metrics.k8s.io: pod at ${cpu} after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  await applyHpa(kube, ns, {
    name: 'web',
    target: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
    minReplicas: 1,
    maxReplicas: 4,
    targetCpu: 500,
  });
  // Metrics flowing: the HPA sees the 200m.
  await waitFor(
    'the HPA to read the pod metrics',
    async () => {
      const s = await readHpa(kube, ns, 'web');
      return s.currentCpu !== undefined && Math.abs(milliCpu(s.currentCpu) - 200) < 30;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  assert.equal(await replicasOf(ns, 'web'), 1);

  /** Sets the load, returns seconds until /scale first changed and until it reached `want`. */
  const step = async (load: number, want: number) => {
    const before = await replicasOf(ns, 'web');
    const t0 = Date.now();
    await knob.set(load);
    let firstChange: number | undefined;
    const seen = [before];
    await waitFor(
      `${want} replicas`,
      async () => {
        const r = await replicasOf(ns, 'web');
        if (r !== seen.at(-1)) {
          seen.push(r);
          firstChange ??= Date.now() - t0;
        }
        return r === want;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const total = Date.now() - t0;
    t.diagnostic(
      `load ${load}m: replicas ${seen.join(' -> ')}; first scale decision after ${((firstChange ?? total) / 1000).toFixed(1)}s, ${want} after ${(total / 1000).toFixed(1)}s`,
    );
  };

  await step(2000, 4); // 2000m over 500m per pod: 4
  await waitForHpaDesired(kube, ns, 'web', 4, 30_000);
  // Until the new pods have metrics, the HPA counts them at the target on a scale-down (it is
  // conservative about pods it can't see): measure the reaction to the load, not that warm-up.
  await waitFor(
    'metrics of all 4 pods',
    async () => {
      const list = await kube.request<PodMetricsList>(
        'GET',
        `/apis/metrics.k8s.io/v1beta1/namespaces/${ns}/pods`,
      );
      return (
        list.items.length === 4 &&
        list.items.every((p) => Math.abs(milliCpu(p.containers[0]!.usage.cpu) - 500) < 50)
      );
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  await step(800, 2); // 800m: 2 pods at 400m
  // And it stays there: 2 x 400m is within the target.
  await sleep(5000);
  assert.equal(await replicasOf(ns, 'web'), 2);
});
