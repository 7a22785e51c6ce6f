export * from './common.ts';
export * from './conditions.ts';
export * from './inferencedeployment.ts';
export * from './names.ts';
export * from './validate.ts';
export * from './weightsource.ts';
export * from './weighttransfer.ts';
