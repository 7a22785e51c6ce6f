// The mission in one scene, run by the real components: the first replica cold-loads, the next
// three warm-start from it in one broadcast group, every pod turns Ready only with verified
// weights, and scale-in keeps a seed. Real control plane, real controller (installed by Helm,
// run by the pod runner with its ServiceAccount's token), real agents and fixture engines
// talking TCP on loopback pod IPs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Annotations } from '../../src/api/v1alpha1/names.ts';
import { ScaleOutScenario } from '../../src/demo/scenario.ts';
import { Resources } from '../../src/shared/kube.ts';
import { createLogger } from '../../src/shared/log.ts';
import { useCluster } from '../support/cluster.ts';

const fixture = useCluster({ nodes: 4, gpusPerNode: 8, metrics: true });

test('HPA scale-out 1 → 4 → 2: one cold load, one warm group, verified before Ready, seed kept', async (t) => {
  const cluster = await fixture.ready();
  const namespace = await fixture.namespace(t, 'e2e');
  const workDir = await mkdtemp(join(tmpdir(), 'sc-e2e-'));
  t.after(() => rm(workDir, { recursive: true, force: true }));
  const scenario = new ScaleOutScenario({
    kube: cluster.client,
    kubeconfig: cluster.kubeconfig,
    namespace,
    workDir,
    bytesPerRank: '32MiB',
    coldLoadMs: 1000,
    batchWindowSeconds: 3,
    // The real HPA on the InferenceDeployment's /scale, fed by metrics-server reading KWOK's
    // simulated pod CPU; the load knob spreads a total over the Ready pods.
    driver: 'hpa',
    hpa: { min: 1, max: 4, targetMilliCpu: 500 },
    log: createLogger({ name: 'e2e', level: process.env.SEEDCAST_LOG_LEVEL ?? 'warn' }),
  });
  t.after(() => scenario.tearDown());

  await scenario.setUp();
  await scenario.setLoad(200);
  await scenario.waitForReady(1, 180_000);
  await scenario.setLoad(4000); // well above what 4 replicas carry: one jump to max
  await scenario.waitForReady(4, 240_000, { reported: true });
  assert.equal((await scenario.hpaStatus()).desiredReplicas, 4, 'HPA decided the scale-up');

  const afterScaleUp = scenario.summary();
  assert.equal(afterScaleUp.coldStarts, 1, 'exactly one pod loads from storage');
  assert.equal(afterScaleUp.warmStarts, 3, 'three pods warm-start from the seed');
  const groups = afterScaleUp.groups.filter((g) => g.receivers > 0);
  assert.equal(groups.length, 1, `the three receivers share one transfer: ${JSON.stringify(groups)}`);
  assert.equal(groups[0]!.receivers, 3);
  assert.deepEqual(afterScaleUp.readyBeforeVerified, [], 'no pod Ready before its weights were verified');
  for (const pod of afterScaleUp.pods) {
    assert.equal(pod.verified, true, `${pod.name} verified`);
    assert.equal(pod.weightsMatchSeed, true, `${pod.name} holds byte-identical weights (sha256 per rank)`);
    assert.ok(
      Date.parse(pod.readyAt!) >= Date.parse(pod.verifiedAt!) - 1000,
      `${pod.name} Ready after verified`,
    );
  }

  await scenario.waitForPodMetrics(120_000);
  await scenario.setLoad(800); // 2 × 400m under a 500m target
  await scenario.waitForReady(2, 240_000);
  const remaining = scenario.observer.current().map((p) => p.name);
  const pods = await cluster.client.list<{
    metadata: { name: string; annotations?: Record<string, string> };
  }>({
    ...Resources.pods,
    namespace,
  });
  const seeds = pods.items.filter(
    (p) => remaining.includes(p.metadata.name) && p.metadata.annotations?.[Annotations.role] === 'seed',
  );
  assert.ok(seeds.length >= 1, `after scale-in a seed remains among ${remaining.join(', ')}`);
  const coldLoaded = afterScaleUp.pods.find((p) => p.source === 'storage')!.name;
  assert.ok(remaining.includes(coldLoaded), 'the first seed (highest pod-deletion-cost) survived scale-in');
});
