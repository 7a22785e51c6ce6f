export * from './common.ts';
export * from './conditions.ts';
export * from './inferencedeployment.ts';
export * from './names.ts';
export * from './validate.ts';
export * from './weightsource.ts';
export * from './weighttransfer.ts';

import { inferenceDeployment } from './inferencedeployment.ts';
import { weightSource } from './weightsource.ts';
import { weightTransfer } from './weighttransfer.ts';

/** The full-object schema of each kind, for validating anything read from the API server or a file. */
export const resourceSchemas = {
  WeightSource: weightSource,
  InferenceDeployment: inferenceDeployment,
  WeightTransfer: weightTransfer,
} as const;
export type SeedcastKind = keyof typeof resourceSchemas;
