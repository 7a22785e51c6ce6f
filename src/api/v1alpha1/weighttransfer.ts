import { z } from 'zod';
import { cel, conditions, objectMeta, objectName, port, quantity } from './common.ts';
import { TransferPhases } from './conditions.ts';
import { API_VERSION, Kinds } from './names.ts';
import { transport } from './weightsource.ts';

export const SOURCE_TYPES = ['Seed', 'Storage'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

export const podRef = z.object({
  pod: objectName.describe('Pod name.'),
  uid: z
    .string()
    .min(1)
    .max(64)
    .describe('Pod UID: a recreated pod with the same name is a different receiver.'),
});
export type PodRef = z.infer<typeof podRef>;

export const transferSource = z
  .object({
    type: z
      .enum(SOURCE_TYPES)
      .describe('Seed: broadcast from a serving pod. Storage: the receiver cold-loads.'),
    seed: podRef.optional().describe('The seed pod; set exactly when type is Seed.'),
  })
  .refine((s) => (s.type === 'Seed') === (s.seed !== undefined), {
    message: 'seed must be set when type is Seed and only then',
    path: ['seed'],
  })
  .meta(
    cel({
      rule: "self.type == 'Seed' ? has(self.seed) : !has(self.seed)",
      message: 'seed must be set when type is Seed and only then',
      fieldPath: '.seed',
    }),
  );

export const rankPort = z.object({
  rank: z.number().int().min(0).max(1023),
  port,
});

export const weightTransferSpec = z
  .object({
    weightSource: objectName.describe('The WeightSource delivered.'),
    fingerprint: z.string().min(1).max(256).describe('Fingerprint every party must present.'),
    source: transferSource,
    receivers: z
      .array(podRef)
      .min(1)
      .max(256)
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['pod'] })
      .describe('Pods receiving in this transfer; they share one broadcast group per rank.'),
    transport: transport.optional().describe('Transport for a Seed transfer.'),
    ranks: z.number().int().min(1).max(1024).describe('tensorParallel × pipelineParallel.'),
    ports: z
      .array(rankPort)
      .max(1024)
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['rank'] })
      .describe('Per-rank rendezvous ports on the seed.'),
    deadline: z.iso.datetime().describe('After this time the transfer is failed and retried.'),
    attempt: z.number().int().min(0).max(100).default(0).describe('0 for the first try, then one per retry.'),
    bandwidthLimit: quantity
      .optional()
      .describe("The seed's send limit per rank in bytes per second, from the WeightSource; unset = none."),
  })
  .superRefine((spec, ctx) => {
    const seeded = spec.source.type === 'Seed';
    if (seeded ? spec.transport === undefined || spec.ports.length !== spec.ranks : spec.ports.length !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ports'],
        message: 'a Seed transfer needs a transport and one port per rank; a Storage transfer has no ports',
      });
    }
    spec.ports.forEach((p, i) => {
      if (p.rank >= spec.ranks)
        ctx.addIssue({
          code: 'custom',
          path: ['ports', i, 'rank'],
          message: 'every port rank must be below ranks',
        });
    });
    if (!seeded && spec.receivers.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['receivers'],
        message: 'a Storage transfer has exactly one receiver',
      });
    }
    const seen = new Set<string>();
    spec.receivers.forEach((r, i) => {
      if (seen.has(r.pod))
        ctx.addIssue({ code: 'custom', path: ['receivers', i], message: `Duplicate value: pod ${r.pod}` });
      seen.add(r.pod);
    });
  })
  .meta(
    cel(
      { rule: 'self == oldSelf', message: 'spec is immutable: a new delivery is a new WeightTransfer' },
      {
        rule: "self.source.type == 'Seed' ? has(self.transport) && size(self.ports) == self.ranks : size(self.ports) == 0",
        message: 'a Seed transfer needs a transport and one port per rank; a Storage transfer has no ports',
        fieldPath: '.ports',
      },
      {
        rule: 'self.ports.all(p, p.rank < self.ranks)',
        message: 'every port rank must be below ranks',
        fieldPath: '.ports',
      },
      {
        rule: "self.source.type == 'Storage' ? size(self.receivers) == 1 : true",
        message: 'a Storage transfer has exactly one receiver',
        fieldPath: '.receivers',
      },
    ),
  );
export type WeightTransferSpec = z.infer<typeof weightTransferSpec>;

export const transferPhase = z.enum(TransferPhases);

export const rendezvousEntry = z.object({
  rank: z.number().int().min(0).max(1023),
  address: z.string().min(1).max(300).describe('host:port the seed listens on for this rank.'),
  uniqueId: z.string().max(256).optional().describe('base64 NCCL unique id (nccl transport).'),
});

export const rankProgress = z.object({
  rank: z.number().int().min(0).max(1023),
  bytesDone: z.number().int().nonnegative().default(0),
  bytesTotal: z.number().int().nonnegative().default(0),
  verified: z.boolean().default(false),
});

export const receiverStatus = z.object({
  pod: objectName,
  phase: transferPhase,
  bytesDone: z.number().int().nonnegative().default(0),
  bytesTotal: z.number().int().nonnegative().default(0),
  gbps: z.number().nonnegative().optional(),
  verified: z
    .boolean()
    .default(false)
    .describe('Every rank received and checksums verified (or cold load done).'),
  verifiedAt: z.iso.datetime().optional(),
  startedAt: z.iso.datetime().optional(),
  reason: z.string().max(128).optional(),
  message: z.string().max(1024).optional(),
  ranks: z
    .array(rankProgress)
    .max(1024)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['rank'] })
    .optional(),
});
export type ReceiverStatus = z.infer<typeof receiverStatus>;

export const seedStatus = z.object({
  pod: objectName,
  phase: transferPhase,
  bytesSent: z.number().int().nonnegative().default(0),
  reason: z.string().max(128).optional(),
  message: z.string().max(1024).optional(),
});

export const weightTransferStatus = z.object({
  observedGeneration: z.number().int().nonnegative().optional(),
  phase: transferPhase.default('Pending'),
  reason: z.string().max(128).optional(),
  message: z.string().max(1024).optional(),
  bytesTotal: z.number().int().nonnegative().optional(),
  bytesDone: z.number().int().nonnegative().optional(),
  progress: z.string().max(16).optional().describe('Percent done, for kubectl get.'),
  gbps: z.number().nonnegative().optional().describe('Aggregate receive throughput in GB/s.'),
  startTime: z.iso.datetime().optional(),
  completionTime: z.iso.datetime().optional(),
  rendezvous: z
    .array(rendezvousEntry)
    .max(1024)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['rank'] })
    .optional()
    .describe('Written by the seed agent.'),
  seed: seedStatus.optional().describe('Written by the seed agent.'),
  receivers: z
    .array(receiverStatus)
    .max(256)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['pod'] })
    .optional()
    .describe('One entry per receiver, each written by that receiver agent.'),
  conditions: conditions.optional(),
});
export type WeightTransferStatus = z.infer<typeof weightTransferStatus>;

export const weightTransfer = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(Kinds.WeightTransfer),
  metadata: objectMeta,
  spec: weightTransferSpec,
  status: weightTransferStatus.optional(),
});
export type WeightTransfer = z.infer<typeof weightTransfer>;
