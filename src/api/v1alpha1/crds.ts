// Renders the CustomResourceDefinitions from the zod schemas: the schemas are the single source,
// the YAML under crds/ is generated (`npm run gen`) and checked for drift (`npm run check`).
import { z } from 'zod';
import { inferenceDeploymentSpec, inferenceDeploymentStatus } from './inferencedeployment.ts';
import { GROUP, Kinds, Plurals, VERSION } from './names.ts';
import { weightSourceSpec, weightSourceStatus } from './weightsource.ts';
import { weightTransferSpec, weightTransferStatus } from './weighttransfer.ts';

type JsonSchema = { [key: string]: unknown };

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MIN_SAFE = Number.MIN_SAFE_INTEGER;

/**
 * JSON Schema (draft 2020-12, as zod emits it) → a Kubernetes structural OpenAPI v3 schema:
 * no `$schema`, no `propertyNames`, no `additionalProperties` beside `properties` (open objects
 * become `x-kubernetes-preserve-unknown-fields`), no regex for date-times (`format` says it),
 * and no ±2^53 bounds that zod adds to every integer.
 */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const input = node as JsonSchema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(input)) {
    if (key === '$schema' || key === 'propertyNames') continue;
    if (key === 'maximum' && value === MAX_SAFE) continue;
    if (key === 'minimum' && value === MIN_SAFE) continue;
    if (key === 'pattern' && input.format === 'date-time') continue;
    if (key === 'additionalProperties') {
      if (value === false) continue;
      const open = typeof value === 'object' && value !== null && Object.keys(value).length === 0;
      if (open) {
        out['x-kubernetes-preserve-unknown-fields'] = true;
        continue;
      }
      if (input.properties !== undefined) continue;
    }
    // Descriptions and validations on list-map keys and the like recurse as plain values.
    out[key] =
      key === 'x-kubernetes-validations' || key === 'enum' || key === 'default' ? value : toStructural(value);
  }
  return out;
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' })) as JsonSchema;
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface CrdInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: z.ZodType;
  status: z.ZodType;
  description: string;
  printerColumns: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

function crd(input: CrdInput) {
  const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${input.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'seedcast', 'app.kubernetes.io/part-of': 'seedcast' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: input.kind,
        listKind: `${input.kind}List`,
        plural: input.plural,
        singular: input.singular,
        shortNames: input.shortNames,
        categories: ['seedcast'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              description: input.description,
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: openApiSchema(input.spec),
                status: openApiSchema(input.status),
              },
            },
          },
          subresources: {
            status: {},
            ...(input.scale ? { scale: input.scale } : {}),
          },
          additionalPrinterColumns: [...input.printerColumns, age],
        },
      ],
    },
  };
}

export function renderCrds() {
  return [
    crd({
      kind: Kinds.WeightSource,
      plural: Plurals.WeightSource,
      singular: 'weightsource',
      shortNames: ['ws'],
      spec: weightSourceSpec,
      status: weightSourceStatus,
      description:
        'One model revision in one parallel layout, and how its weights may be moved between pods.',
      printerColumns: [
        { name: 'Model', type: 'string', jsonPath: '.spec.model' },
        { name: 'TP', type: 'integer', jsonPath: '.spec.layout.tensorParallel' },
        { name: 'PP', type: 'integer', jsonPath: '.spec.layout.pipelineParallel' },
        { name: 'Seeds', type: 'integer', jsonPath: '.status.seeds' },
        { name: 'Waiting', type: 'integer', jsonPath: '.status.waitingReceivers' },
        { name: 'Active', type: 'integer', jsonPath: '.status.activeTransfers' },
      ],
    }),
    crd({
      kind: Kinds.InferenceDeployment,
      plural: Plurals.InferenceDeployment,
      singular: 'inferencedeployment',
      shortNames: ['idep'],
      spec: inferenceDeploymentSpec,
      status: inferenceDeploymentStatus,
      description:
        'An inference workload whose new replicas warm-start from serving ones; scaled through /scale.',
      printerColumns: [
        { name: 'Source', type: 'string', jsonPath: '.spec.weightSource' },
        { name: 'Desired', type: 'integer', jsonPath: '.spec.replicas' },
        { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
        { name: 'Seeds', type: 'integer', jsonPath: '.status.seeds' },
        { name: 'Warm', type: 'integer', jsonPath: '.status.warmStarts' },
        { name: 'Cold', type: 'integer', jsonPath: '.status.coldStarts' },
      ],
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.selector',
      },
    }),
    crd({
      kind: Kinds.WeightTransfer,
      plural: Plurals.WeightTransfer,
      singular: 'weighttransfer',
      shortNames: ['wt'],
      spec: weightTransferSpec,
      status: weightTransferStatus,
      description: 'One delivery of weights to one or more pods, from a seed or from storage.',
      printerColumns: [
        { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
        { name: 'Source', type: 'string', jsonPath: '.spec.source.type' },
        { name: 'Seed', type: 'string', jsonPath: '.spec.source.seed.pod' },
        { name: 'Transport', type: 'string', jsonPath: '.spec.transport' },
        { name: 'Progress', type: 'string', jsonPath: '.status.progress' },
        { name: 'GB/s', type: 'number', jsonPath: '.status.gbps' },
        { name: 'Attempt', type: 'integer', jsonPath: '.spec.attempt', priority: 1 },
      ],
    }),
  ];
}
