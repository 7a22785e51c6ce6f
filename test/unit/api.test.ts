import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { renderCrds } from '../../src/api/v1alpha1/crds.ts';
import {
  formatIssues,
  parseOrThrow,
  parseWeightsVerified,
  resourceSchemas,
  type SeedcastKind,
  weightSource,
  weightsVerifiedValue,
} from '../../src/api/v1alpha1/index.ts';
import { ValidationError } from '../../src/shared/errors.ts';
import {
  badResources,
  goodInferenceDeployment,
  goodWeightSource,
  goodWeightTransfer,
} from '../fixtures/bad-resources.ts';

const samplesDir = join(import.meta.dirname, '../../config/samples');

function sampleDocuments(): Array<{ file: string; doc: { kind: SeedcastKind } }> {
  const out: Array<{ file: string; doc: { kind: SeedcastKind } }> = [];
  for (const file of readdirSync(samplesDir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of YAML.parseAllDocuments(readFileSync(join(samplesDir, file), 'utf8'))) {
      out.push({ file, doc: doc.toJS() });
    }
  }
  return out;
}

describe('samples', () => {
  const docs = sampleDocuments();
  it('there are samples for every user-facing kind', () => {
    const kinds = new Set(docs.map((d) => d.doc.kind));
    assert.ok(kinds.has('WeightSource') && kinds.has('InferenceDeployment'));
    assert.ok(docs.length >= 6);
  });
  for (const { file, doc } of docs) {
    it(`${file}: ${doc.kind} parses`, () => {
      const result = resourceSchemas[doc.kind].safeParse(doc);
      assert.ok(result.success, result.success ? '' : formatIssues(result.error).join('\n'));
    });
  }
});

describe('good builders', () => {
  for (const [kind, build] of [
    ['WeightSource', goodWeightSource],
    ['InferenceDeployment', goodInferenceDeployment],
    ['WeightTransfer', goodWeightTransfer],
  ] as const) {
    it(`${kind} parses`, () => {
      parseOrThrow(resourceSchemas[kind], build(), kind);
    });
  }
});

describe('bad resources are rejected with the field path', () => {
  for (const bad of badResources) {
    it(`${bad.kind}: ${bad.name}`, () => {
      assert.throws(
        () => parseOrThrow(resourceSchemas[bad.kind], bad.resource, bad.kind),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, String(err));
          assert.equal(err.code, 'SEEDCAST_ERR_INVALID');
          assert.ok(
            err.issues.some((issue) => issue.startsWith(`${bad.path}:`)),
            `expected an issue at ${bad.path}, got:\n  ${err.issues.join('\n  ')}`,
          );
          return true;
        },
      );
    });
  }
});

describe('defaults', () => {
  it('a minimal WeightSource gets every transfer default', () => {
    const ws = weightSource.parse({
      apiVersion: 'seedcast.dev/v1alpha1',
      kind: 'WeightSource',
      metadata: { name: 'm' },
      spec: { model: 'x', engine: { name: 'vllm', version: '1' } },
    });
    assert.deepEqual(ws.spec.layout, { tensorParallel: 1, pipelineParallel: 1 });
    assert.deepEqual(ws.spec.transfer.ports, { start: 29500, count: 64 });
    assert.equal(ws.spec.coldStart.policy, 'Single');
    assert.equal(ws.spec.transfer.maxRetries, 2);
  });
});

type Node = { [key: string]: unknown };

/** Walks an OpenAPI schema and reports what would make the API server call it non-structural. */
function structuralProblems(node: Node, path: string, out: string[]): void {
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node.type === undefined && !preserve && node['x-kubernetes-int-or-string'] !== true) {
    out.push(`${path}: no type`);
  }
  for (const banned of ['anyOf', 'oneOf', 'allOf', '$ref', '$schema', 'propertyNames', 'const']) {
    if (banned in node) out.push(`${path}: ${banned}`);
  }
  if (node.properties !== undefined && node.additionalProperties !== undefined) {
    out.push(`${path}: properties and additionalProperties`);
  }
  for (const [key, child] of Object.entries((node.properties as Record<string, Node>) ?? {})) {
    structuralProblems(child, `${path}.${key}`, out);
  }
  if (typeof node.items === 'object') structuralProblems(node.items as Node, `${path}[]`, out);
  if (typeof node.additionalProperties === 'object') {
    structuralProblems(node.additionalProperties as Node, `${path}{}`, out);
  }
}

describe('generated CRDs', () => {
  const crds = renderCrds();
  it('are structural', () => {
    for (const crd of crds) {
      const problems: string[] = [];
      const schema = crd.spec.versions[0]!.schema.openAPIV3Schema as Node;
      structuralProblems(schema, crd.metadata.name, problems);
      assert.deepEqual(problems, []);
    }
  });
  it('InferenceDeployment has the /scale subresource wired to replicas and selector', () => {
    const idep = crds.find((c) => c.spec.names.kind === 'InferenceDeployment')!;
    assert.deepEqual(idep.spec.versions[0]!.subresources, {
      status: {},
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.selector',
      },
    });
  });
  it('WeightTransfer status lists are list-maps so agents co-own entries', () => {
    const wt = crds.find((c) => c.spec.names.kind === 'WeightTransfer')!;
    const status = (wt.spec.versions[0]!.schema.openAPIV3Schema.properties.status as Node)
      .properties as Record<string, Node>;
    assert.deepEqual(status.receivers!['x-kubernetes-list-map-keys'], ['pod']);
    assert.deepEqual(status.rendezvous!['x-kubernetes-list-map-keys'], ['rank']);
    assert.equal(wt.spec.names.shortNames[0], 'wt');
    const columns = wt.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name);
    for (const column of ['Phase', 'Progress', 'GB/s', 'Age']) assert.ok(columns.includes(column), column);
  });
});

describe('the weights-verified pod annotation', () => {
  it('round-trips and refuses anything else', () => {
    for (const source of ['Seed', 'Storage'] as const) {
      const value = weightsVerifiedValue(source, 'llama-abc12-0-x1y2z3a');
      assert.deepEqual(parseWeightsVerified(value), { source, transfer: 'llama-abc12-0-x1y2z3a' });
    }
    for (const bad of [
      undefined,
      '',
      'seed/',
      'seed',
      'Seed/t',
      'peer/t',
      'seed/T',
      'seed/a/b',
      'seed/-t',
      ' seed/t',
    ]) {
      assert.equal(parseWeightsVerified(bad), undefined, String(bad));
    }
  });
});
