// The dev cluster's pod runner (the stand-in for the kubelet's container runtime) against the real
// control plane: a pod deleted while the runner is still starting it leaves no process behind.
// (CI, 2026-11-30: an agent spawned after its pod was stopped outlived the fault suite, whose
// process then never exited.)
import assert from 'node:assert/strict';
import { existsSync, statfsSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { memoryVolumeRoot, PodRunner } from '../../src/devcluster/pod-runner.ts';
import { listProcesses } from '../../src/devcluster/processes.ts';
import { Resources } from '../../src/shared/kube.ts';
import { silentLogger } from '../../src/shared/log.ts';
import { applyObjects, useCluster, waitFor } from '../support/cluster.ts';

const cluster = useCluster({ nodes: 1, gpusPerNode: 8 });
/** statfs f_type of a tmpfs. */
const TMPFS_MAGIC = 0x01021994;

/** Pids of live processes whose command line holds `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  return (await listProcesses()).filter((p) => p.cmdline.includes(marker)).map((p) => p.pid);
}

test('a pod deleted while the pod runner is starting it leaves no process behind', async (t) => {
  const namespace = await cluster.namespace(t, 'runner');
  const dir = await mkdtemp(join(tmpdir(), 'sc-pr-'));
  const marker = `seedcast-pod-runner-test-${process.pid}-${Date.now()}`;
  let release = (): void => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let starting = false;
  const runner = new PodRunner({
    kube: cluster.client,
    workDir: dir,
    namespace,
    // The start waits here, between the pod's volumes and its containers' spawn.
    kubeconfig: async () => {
      starting = true;
      await gate;
      return join(dir, 'kubeconfig');
    },
    images: () => ({ command: process.execPath, args: ['-e', 'setTimeout(() => {}, 120000)', marker] }),
    log: silentLogger(),
  });
  const createPod = (name: string) =>
    applyObjects(
      cluster.client,
      [
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        },
      ],
      { namespace },
    );
  runner.start();
  t.after(async () => {
    release();
    await runner.stop();
    for (const pid of await processesWith(marker)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  await createPod('p');
  await waitFor('the runner starting the pod', async () => starting, { timeoutMs: 60_000 });
  await cluster.client.delete({ ...Resources.pods, namespace, name: 'p' });
  await waitFor('the runner stopping the pod', async () => !runner.running.includes(`${namespace}/p`));
  release();
  // The start resumes after its pod was stopped: it must spawn nothing.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await processesWith(marker), [], 'no container process outlives its stopped pod');
  // The runner still runs pods: a new one starts its container, and stopping it leaves nothing.
  starting = false;
  await createPod('q');
  await waitFor('a container of the second pod', async () => (await processesWith(marker)).length === 1);
  await runner.stop();
  assert.deepEqual(await processesWith(marker), [], 'stop() leaves no process');
});

test('an emptyDir with medium Memory is a tmpfs, as the kubelet makes it, and goes with its pod', async (t) => {
  const namespace = await cluster.namespace(t, 'runner-mem');
  const dir = await mkdtemp(join(tmpdir(), 'sc-pr-'));
  const marker = `seedcast-pod-runner-mem-${process.pid}-${Date.now()}`;
  // The container reports where its two mount paths landed, then waits.
  const script =
    "const fs=require('node:fs');const [, , staging, run]=process.argv;" +
    "fs.writeFileSync(run+'/paths.json', JSON.stringify({staging: fs.realpathSync(staging), run: fs.realpathSync(run)}));" +
    'setTimeout(() => {}, 120000)';
  const runner = new PodRunner({
    kube: cluster.client,
    workDir: dir,
    namespace,
    kubeconfig: async () => join(dir, 'kubeconfig'),
    images: () => ({
      command: process.execPath,
      localArgs: ['-e', script],
      args: [marker, '/x/staging', '/x'],
    }),
    log: silentLogger(),
  });
  runner.start();
  t.after(async () => {
    await runner.stop();
    for (const pid of await processesWith(marker)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await applyObjects(
    cluster.client,
    [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'm' },
        spec: {
          containers: [
            {
              name: 'c',
              image: 'x',
              // The staging volume is mounted inside the run volume's path (as the injection does):
              // the deeper mount wins.
              volumeMounts: [
                { name: 'run', mountPath: '/x' },
                { name: 'staging', mountPath: '/x/staging' },
              ],
            },
          ],
          volumes: [
            { name: 'run', emptyDir: {} },
            { name: 'staging', emptyDir: { medium: 'Memory' } },
          ],
        },
      },
    ],
    { namespace },
  );
  const podDir = await waitFor('the pod to run', async () => runner.podDir(namespace, 'm'));
  const paths = await waitFor('the container to report its paths', async () => {
    const text = await readFile(join(podDir, 'v', 'run', 'paths.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as { staging: string; run: string });
  });
  assert.ok(paths.run.startsWith(await realpath(dir)), `run volume in the work dir: ${paths.run}`);
  if (memoryVolumeRoot() !== undefined) {
    assert.match(paths.staging, /^\/dev\/shm\/seedcast-pod-/, 'the Memory emptyDir is on tmpfs');
    assert.equal(statfsSync(paths.staging).type, TMPFS_MAGIC);
  }
  await cluster.client.delete({ ...Resources.pods, namespace, name: 'm' });
  await waitFor('the runner stopping the pod', async () => !runner.running.includes(`${namespace}/m`));
  // (The runner forgets the pod first, then terminates its processes and removes its directories.)
  await waitFor('the tmpfs volume to go with its pod', async () => !existsSync(paths.staging), {
    timeoutMs: 15_000,
  });
});
