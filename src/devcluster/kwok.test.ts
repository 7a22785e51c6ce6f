import assert from 'node:assert/strict';
import { test } from 'node:test';
import YAML from 'yaml';
import { readVersions } from './binaries.ts';
import {
  FAKE_NODE_ANNOTATION,
  fakeNodes,
  GPU_RESOURCE,
  isLoopbackCidr,
  kwokConfigYaml,
  NodeLabels,
  podCidrFor,
} from './kwok.ts';

test('fake nodes carry GPU capacity, the KWOK annotation and topology labels', () => {
  const nodes = fakeNodes({ count: 5, gpusPerNode: 8 }) as Array<{
    metadata: { name: string; annotations: Record<string, string>; labels: Record<string, string> };
    status: { capacity: Record<string, string>; allocatable: Record<string, string> };
  }>;
  assert.deepEqual(
    nodes.map((n) => n.metadata.name),
    ['gpu-node-0', 'gpu-node-1', 'gpu-node-2', 'gpu-node-3', 'gpu-node-4'],
  );
  assert.deepEqual(
    nodes.map((n) => n.metadata.labels[NodeLabels.nvlinkDomain]),
    ['nvl-0', 'nvl-0', 'nvl-1', 'nvl-1', 'nvl-2'],
  );
  assert.deepEqual(
    nodes.map((n) => n.metadata.labels[NodeLabels.zone]),
    ['zone-a', 'zone-a', 'zone-b', 'zone-b', 'zone-a'],
  );
  for (const n of nodes) {
    assert.equal(n.metadata.annotations[FAKE_NODE_ANNOTATION], 'fake');
    assert.equal(n.metadata.labels[NodeLabels.hostname], n.metadata.name);
    assert.equal(n.status.capacity[GPU_RESOURCE], '8');
    assert.equal(n.status.allocatable[GPU_RESOURCE], '8');
  }
});

test('the kwok config holds our stages only, none of which sets a readiness gate', () => {
  const docs = YAML.parseAllDocuments(kwokConfigYaml()).map(
    (d) => d.toJSON() as { kind: string; metadata: { name: string } },
  );
  assert.ok(docs.every((d) => d.kind === 'Stage'));
  assert.deepEqual(
    docs.map((d) => d.metadata.name),
    [
      'seedcast-node-initialize',
      'seedcast-node-heartbeat',
      'seedcast-pod-run',
      'seedcast-pod-readiness',
      'seedcast-pod-delete',
    ],
  );
  // The stock stages write one condition per readiness gate; ours never do.
  assert.doesNotMatch(kwokConfigYaml(), /range \.spec\.readinessGates \}\}\s*- lastTransitionTime/);
});

test('versions.env pins every binary', async () => {
  const v = await readVersions();
  for (const version of Object.values(v)) assert.match(version, /^v\d+\.\d+\.\d+$/);
});

test('each state directory gets its own loopback pod CIDR', () => {
  const a = podCidrFor('/tmp/cluster-a');
  assert.equal(a, podCidrFor('/tmp/cluster-a'));
  assert.ok(isLoopbackCidr(a), a);
  const distinct = new Set(Array.from({ length: 20 }, (_, i) => podCidrFor(`/tmp/cluster-${i}`)));
  assert.ok(distinct.size > 10);
  assert.equal(isLoopbackCidr('10.0.0.0/16'), false);
  assert.equal(isLoopbackCidr('127.42.0.0/16'), true);
});
