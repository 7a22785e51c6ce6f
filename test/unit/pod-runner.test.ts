import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localCommand } from '../../src/demo/scenario.ts';
import {
  fieldValue,
  localPath,
  longRunningContainers,
  type RunnablePod,
} from '../../src/devcluster/pod-runner.ts';

const mounts = [
  { name: 'tmp', mountPath: '/tmp' },
  { name: 'run', mountPath: '/var/run/seedcast' },
];
const volumeDir = (name: string) => `/local/pod/v/${name}`;

describe('pod runner', () => {
  it('maps container paths under volume mounts to the pod-local volume directories', () => {
    assert.equal(localPath('/var/run/seedcast/agent.sock', mounts, volumeDir), '/local/pod/v/run/agent.sock');
    assert.equal(
      localPath('--socket=/var/run/seedcast/a.sock', mounts, volumeDir),
      '--socket=/local/pod/v/run/a.sock',
    );
    assert.equal(localPath('/var/run/seedcastle', mounts, volumeDir), '/var/run/seedcastle');
    assert.equal(localPath('--tp=2', mounts, volumeDir), '--tp=2');
  });

  it("never remaps the local program's own script, even when a volume is mounted at its prefix", () => {
    const line = localCommand({ image: 'ghcr.io/seedcast/seedcast:1', args: ['controller', '--x=/tmp/y'] });
    assert.ok(line !== undefined);
    assert.equal(line.localArgs?.length, 1);
    assert.match(line.localArgs![0]!, /bin\/seedcast\.js$/);
    assert.deepEqual(line.args, ['controller', '--x=/tmp/y']);
    assert.equal(localCommand({ image: 'vllm/vllm-openai', args: ['serve'] }), undefined);
  });

  it('runs native sidecars and containers, resolves downward-API fields', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns', uid: 'u', labels: { a: 'b' } },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'engine' }],
        initContainers: [{ name: 'agent', restartPolicy: 'Always' }, { name: 'install' }],
      },
      status: { podIP: '127.1.0.5' },
    } as RunnablePod;
    assert.deepEqual(
      longRunningContainers(pod).map((c) => c.name),
      ['agent', 'engine'],
    );
    assert.equal(fieldValue(pod, 'status.podIP'), '127.1.0.5');
    assert.equal(fieldValue(pod, 'metadata.uid'), 'u');
    assert.equal(fieldValue(pod, "metadata.labels['a']"), 'b');
  });
});
