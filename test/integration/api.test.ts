// The generated API against the real API server: CRDs become Established, every sample applies,
// every bad resource is refused by the server itself with the field path, and the
// InferenceDeployment /scale subresource works (what `kubectl scale` and the HPA use).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import { GROUP, Plurals, VERSION } from '../../src/api/v1alpha1/names.ts';
import { KubeApiError } from '../../src/shared/kube.ts';
import { badResources, goodInferenceDeployment } from '../fixtures/bad-resources.ts';
import { applyYaml, conditionOf, installCrds, resourceFor, useCluster } from '../support/cluster.ts';

const cluster = useCluster({ nodes: 1 });
let crdNames: string[] = [];

before(async () => {
  crdNames = await installCrds((await cluster.ready()).client);
});

const crdRef = (name: string) => ({
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
  name,
});

test('the generated CRDs are accepted and Established', async () => {
  assert.deepEqual(
    crdNames.sort(),
    Object.values(Plurals)
      .map((p) => `${p}.${GROUP}`)
      .sort(),
  );
  for (const name of crdNames) {
    const crd = await cluster.client.get(crdRef(name));
    assert.equal(conditionOf(crd, 'Established')?.status, 'True', `${name} Established`);
    assert.equal(conditionOf(crd, 'NamesAccepted')?.status, 'True', `${name} NamesAccepted`);
  }
});

test('every sample in config/samples applies', async (t) => {
  const dir = new URL('../../config/samples/', import.meta.url);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  assert.ok(files.length > 0, 'config/samples has samples');
  for (const file of files) {
    const ns = await cluster.namespace(t, file.replace(/\.yaml$/, ''));
    const applied = await applyYaml(cluster.client, { file: new URL(file, dir).pathname }, { namespace: ns });
    assert.ok(applied.length > 0, `${file} has objects`);
    for (const obj of applied)
      assert.ok(obj.metadata.uid, `${file}: ${obj.kind}/${obj.metadata.name} stored`);
  }
});

describe('the API server refuses each bad resource with its field path', () => {
  for (const bad of badResources) {
    test(bad.name, async (t) => {
      const ns = await cluster.namespace(t, 'bad');
      const resource = await resourceFor(cluster.client, String(bad.resource.apiVersion), bad.kind);
      const { namespaced: _, ...ref } = resource;
      const err = await cluster.client.create({ ...ref, namespace: ns }, bad.resource).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof KubeApiError, `${bad.name}: expected the API server to refuse it`);
      assert.equal(err.status, 422, `${bad.name}: ${err.message}`);
      assert.ok(err.message.includes(bad.path), `${bad.name}: "${bad.path}" not in: ${err.message}`);
    });
  }
});

test('the /scale subresource of an InferenceDeployment reads and writes spec.replicas', async (t) => {
  const ns = await cluster.namespace(t, 'scale');
  const idep = goodInferenceDeployment('scaled');
  await applyYaml(cluster.client, JSON.stringify(idep), { namespace: ns });
  const ref = {
    group: GROUP,
    version: VERSION,
    plural: Plurals.InferenceDeployment,
    namespace: ns,
    name: 'scaled',
  };
  // The controller publishes status.replicas and status.selector; here the test plays it.
  await cluster.client.mergePatch(
    { ...ref, subresource: 'status' },
    { status: { replicas: 1, selector: 'app=scaled' } },
  );

  type Scale = { kind: string; spec: { replicas?: number }; status: { replicas: number; selector?: string } };
  const scale = await cluster.client.get<Scale>({ ...ref, subresource: 'scale' });
  assert.equal(scale.kind, 'Scale');
  assert.equal(scale.spec.replicas, 1);
  assert.equal(scale.status.replicas, 1);
  assert.equal(scale.status.selector, 'app=scaled');

  const patched = await cluster.client.mergePatch<Scale>(
    { ...ref, subresource: 'scale' },
    { spec: { replicas: 3 } },
  );
  assert.equal(patched.spec.replicas, 3);
  const after = await cluster.client.get<{ spec: { replicas: number } }>(ref);
  assert.equal(after.spec.replicas, 3);
});
