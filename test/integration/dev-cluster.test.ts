// `seedcast dev-cluster up|status|down` through the CLI: up prints a working kubeconfig, down
// leaves no process and no listening port behind.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { type DevClusterState, leftoverProcesses } from '../../src/devcluster/cluster.ts';
import { groupMembers, isListening } from '../../src/devcluster/processes.ts';
import { KubeClient, Resources } from '../../src/shared/kube.ts';

const exec = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

const cli = (...args: string[]) =>
  exec(process.execPath, [MAIN, 'dev-cluster', ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );

test('dev-cluster up, status, down: nothing is left behind', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'seedcast-devcluster-'));
  t.after(async () => {
    await cli('down', '--dir', dir);
    await rm(dir, { recursive: true, force: true });
  });

  const started = Date.now();
  const upResult = await cli('up', '--dir', dir, '--nodes', '3', '--gpus-per-node', '4', '--no-build');
  assert.equal(upResult.code, 0, upResult.stderr);
  t.diagnostic(`dev-cluster up took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const kubeconfig = upResult.stdout.trim();
  assert.equal(kubeconfig, join(dir, 'kubeconfig'));

  const client = await KubeClient.create({ kubeconfig });
  try {
    type Node = {
      metadata: { name: string; labels: Record<string, string> };
      status: { capacity: Record<string, string> };
    };
    const nodes = (await client.list<Node>(Resources.nodes)).items;
    assert.equal(nodes.length, 3);
    for (const node of nodes) {
      assert.equal(node.status.capacity['nvidia.com/gpu'], '4');
      assert.equal(node.metadata.labels['kubernetes.io/hostname'], node.metadata.name);
      assert.ok(node.metadata.labels['topology.kubernetes.io/zone']);
      assert.ok(Object.keys(node.metadata.labels).some((k) => k.endsWith('/nvlink-domain')));
    }
  } finally {
    await client.close();
  }

  const statusResult = await cli('status', '--dir', dir, '--json');
  assert.equal(statusResult.code, 0, statusResult.stdout);
  const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as DevClusterState;
  assert.deepEqual(
    state.components.map((c) => c.name),
    ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'],
  );

  const downResult = await cli('down', '--dir', dir);
  assert.equal(downResult.code, 0, downResult.stderr);
  assert.deepEqual(await leftoverProcesses(dir), [], 'no process mentions the cluster directory');
  for (const c of state.components) {
    assert.deepEqual(await groupMembers(c.pid), [], `${c.name}: process group ${c.pid} is empty`);
    assert.equal(await isListening(c.port), false, `${c.name}: port ${c.port} closed`);
  }
  assert.equal((await cli('status', '--dir', dir)).code, 3, 'status: no cluster');
});
