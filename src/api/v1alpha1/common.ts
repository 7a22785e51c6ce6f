import { z } from 'zod';

/** CEL rule attached to a schema node; rendered into `x-kubernetes-validations`. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

/** A DNS-1123 subdomain: what Kubernetes accepts as an object name. */
export const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
    message: 'must be a lowercase DNS-1123 subdomain (a-z, 0-9, "-" and ".")',
  });

export const port = z.number().int().min(1).max(65535);

/** A Kubernetes quantity, e.g. `10Gi` or `500M`. */
export const quantity = z.string().regex(/^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/, {
  message: 'must be a Kubernetes quantity such as 10Gi',
});

export const condition = z.object({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().min(1).max(1024),
  message: z.string().max(32768).default(''),
  lastTransitionTime: z.iso.datetime(),
  observedGeneration: z.number().int().nonnegative().optional(),
});
export type Condition = z.infer<typeof condition>;

export const conditions = z
  .array(condition)
  .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

/** The parts of ObjectMeta the controller and agents read; everything else passes through. */
export const objectMeta = z.looseObject({
  name: objectName,
  namespace: z.string().optional(),
  uid: z.string().optional(),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  creationTimestamp: z.union([z.string(), z.date()]).optional(),
  deletionTimestamp: z.union([z.string(), z.date()]).optional(),
});

export const resourceRequirements = z.object({
  requests: z.record(z.string(), quantity).optional(),
  limits: z.record(z.string(), quantity).optional(),
});
