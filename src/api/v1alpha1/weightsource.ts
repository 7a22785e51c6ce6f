import { z } from 'zod';
import { cel, conditions, objectMeta, quantity } from './common.ts';
import { API_VERSION, Kinds } from './names.ts';

export const TRANSPORTS = ['nccl', 'tcp'] as const;
export const transport = z.enum(TRANSPORTS);
export type Transport = z.infer<typeof transport>;

export const ENGINES = ['vllm', 'sglang', 'fixture', 'custom'] as const;

export const layout = z
  .object({
    tensorParallel: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(1)
      .describe('Tensor-parallel size (ranks per stage).'),
    pipelineParallel: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe('Pipeline-parallel size (stages).'),
  })
  .describe('Parallel layout: a seed serves only receivers with the same layout.');
export type Layout = z.infer<typeof layout>;

export const portRange = z
  .object({
    start: z.number().int().min(1).max(65535).default(29500).describe('First rendezvous port.'),
    count: z.number().int().min(1).max(4096).default(64).describe('Number of ports in the range.'),
  })
  .refine((r) => r.start + r.count - 1 <= 65535, {
    message: 'the range start..start+count-1 must end at or below port 65535',
  })
  .meta(
    cel({
      rule: 'self.start + self.count - 1 <= 65535',
      message: 'the range start..start+count-1 must end at or below port 65535',
    }),
  )
  .describe('Rendezvous ports the controller assigns per rank, unique per pod among active transfers.');

export const transferPolicy = z
  .object({
    transports: z
      .array(transport)
      .min(1)
      .max(2)
      .default(['nccl', 'tcp'])
      .refine((list) => new Set(list).size === list.length, {
        message: 'Duplicate value: each transport once',
      })
      .meta({ 'x-kubernetes-list-type': 'set' })
      .describe('Transports in order of preference: nccl (GPU, NCCL broadcast) or tcp (host-staged).'),
    ports: portRange.default({ start: 29500, count: 64 }),
    maxConcurrentPerSeed: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe('Active transfers one seed serves.'),
    batchWindowSeconds: z
      .number()
      .int()
      .min(0)
      .max(600)
      .default(5)
      .describe('Receivers that appear within this window share one broadcast group.'),
    maxReceiversPerGroup: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(8)
      .describe('Receivers per broadcast group.'),
    timeoutSeconds: z.number().int().min(5).max(86400).default(600).describe('Deadline of one transfer.'),
    maxRetries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(2)
      .describe('Retries from another seed after a failed transfer before loading from storage.'),
    bandwidthLimit: quantity
      .optional()
      .describe('Per-seed send limit in bytes per second (e.g. 10Gi); unset = none.'),
    bucketMiB: z
      .number()
      .int()
      .min(1)
      .max(16384)
      .optional()
      .describe(
        'Staging bucket size in MiB for every agent of this source (each holds two per engine rank): 1024 suits nccl over NVLink (0.91 of a flat broadcast on H200s, 0.85 at 256); unset = the agent default (64). Changing it rolls the pods.',
      ),
  })
  .describe('How weights of this source may be moved.');

export const coldStart = z
  .object({
    policy: z
      .enum(['Single', 'All'])
      .default('Single')
      .describe(
        'Single: one pod per fingerprint loads from storage while others wait. All: every pod loads.',
      ),
    maxWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(86400)
      .default(900)
      .describe('How long a receiver waits for a seed.'),
    timeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(86400)
      .default(1800)
      .describe(
        'Deadline of a load from storage (large models take minutes); transfer.timeoutSeconds is for pod-to-pod.',
      ),
  })
  .describe('What happens when no seed exists yet.');

const immutable = (what: string) => cel({ rule: 'self == oldSelf', message: `${what} is immutable` });

export const weightSourceSpec = z.object({
  model: z
    .string()
    .min(1)
    .max(512)
    .meta(immutable('model'))
    .describe('Model identifier, e.g. deepseek-ai/DeepSeek-V3.'),
  revision: z
    .string()
    .min(1)
    .max(256)
    .default('main')
    .meta(immutable('revision'))
    .describe('Model revision.'),
  layout: layout.default({ tensorParallel: 1, pipelineParallel: 1 }).meta(immutable('layout')),
  engine: z
    .object({
      name: z.enum(ENGINES).describe('Inference engine: vllm, sglang, fixture (CPU test engine) or custom.'),
      version: z.string().min(1).max(128).describe('Engine version; part of the fingerprint.'),
    })
    .meta(immutable('engine')),
  transfer: transferPolicy.default({
    transports: ['nccl', 'tcp'],
    ports: { start: 29500, count: 64 },
    maxConcurrentPerSeed: 1,
    batchWindowSeconds: 5,
    maxReceiversPerGroup: 8,
    timeoutSeconds: 600,
    maxRetries: 2,
  }),
  coldStart: coldStart.default({ policy: 'Single', maxWaitSeconds: 900, timeoutSeconds: 1800 }),
  topologyKeys: z
    .array(z.string().min(1).max(316))
    .max(8)
    .default(['kubernetes.io/hostname', 'seedcast.dev/nvlink-domain', 'topology.kubernetes.io/zone'])
    .describe('Node labels, nearest first, used to prefer a seed close to the receiver.'),
});
export type WeightSourceSpec = z.infer<typeof weightSourceSpec>;

export const fingerprintSeen = z.object({
  fingerprint: z.string().min(1).max(256),
  seeds: z.number().int().nonnegative(),
  pods: z.number().int().nonnegative(),
});

export const weightSourceStatus = z.object({
  observedGeneration: z.number().int().nonnegative().optional(),
  seeds: z.number().int().nonnegative().default(0).describe('Pods holding verified weights.'),
  waitingReceivers: z.number().int().nonnegative().default(0),
  activeTransfers: z.number().int().nonnegative().default(0),
  portsInUse: z.number().int().nonnegative().default(0),
  fingerprints: z
    .array(fingerprintSeen)
    .max(64)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['fingerprint'] })
    .optional(),
  conditions: conditions.optional(),
});
export type WeightSourceStatus = z.infer<typeof weightSourceStatus>;

export const weightSource = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(Kinds.WeightSource),
  metadata: objectMeta,
  spec: weightSourceSpec,
  status: weightSourceStatus.optional(),
});
export type WeightSource = z.infer<typeof weightSource>;
