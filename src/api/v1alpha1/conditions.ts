// Condition types, reasons and event reasons as constants: they are part of the API that users
// alert on, so they never change spelling once released.

export const ConditionTypes = {
  /** WeightSource: at least one seed holds verified weights. */
  SeedAvailable: 'SeedAvailable',
  /** WeightSource: the port range cannot fit another transfer right now. */
  PortsExhausted: 'PortsExhausted',
  /** InferenceDeployment: the Deployment has the requested ready replicas. */
  Available: 'Available',
  /** InferenceDeployment: a rollout or scale-out is in progress. */
  Progressing: 'Progressing',
  /** InferenceDeployment: spec.weightSource names an existing WeightSource. */
  WeightSourceResolved: 'WeightSourceResolved',
  /** WeightTransfer: finished (Succeeded or Failed). */
  Complete: 'Complete',
  /** Any kind: the resource failed validation in the controller. */
  Invalid: 'Invalid',
} as const;
export type ConditionType = (typeof ConditionTypes)[keyof typeof ConditionTypes];

export const Reasons = {
  SeedReady: 'SeedReady',
  NoSeed: 'NoSeed',
  ColdStarting: 'ColdStarting',
  PortsAvailable: 'PortsAvailable',
  PortsExhausted: 'PortsExhausted',
  WeightSourceFound: 'WeightSourceFound',
  WeightSourceMissing: 'WeightSourceMissing',
  ReplicasReady: 'ReplicasReady',
  ReplicasNotReady: 'ReplicasNotReady',
  Scaling: 'Scaling',
  Stable: 'Stable',
  // Pod condition seedcast.dev/weights-ready
  WeightsVerified: 'WeightsVerified',
  ColdLoaded: 'ColdLoaded',
  WaitingForAgent: 'WaitingForAgent',
  WaitingForSeed: 'WaitingForSeed',
  TransferInProgress: 'TransferInProgress',
  TransferFailed: 'TransferFailed',
  /** The engine restarted without its weights after they were verified (the agent's record). */
  WeightsLost: 'WeightsLost',
  // WeightTransfer
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  DeadlineExceeded: 'DeadlineExceeded',
  SeedLost: 'SeedLost',
  ReceiverLost: 'ReceiverLost',
  FingerprintMismatch: 'FingerprintMismatch',
  ValidationFailed: 'ValidationFailed',
  /** A bucket's bytes did not match the seed's checksum (nothing unverified reached the engine). */
  ChecksumMismatch: 'ChecksumMismatch',
  /** A peer was refused at the handshake: not named in the transfer, or without the pod-to-pod token. */
  Unauthorized: 'Unauthorized',
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

export const EventReasons = {
  SeedSelected: 'SeedSelected',
  ColdStart: 'ColdStart',
  TransferCreated: 'TransferCreated',
  TransferSucceeded: 'TransferSucceeded',
  TransferFailed: 'TransferFailed',
  RetryScheduled: 'RetryScheduled',
  PortsExhausted: 'PortsExhausted',
  WeightsReady: 'WeightsReady',
  WeightsLost: 'WeightsLost',
  WeightSourceMissing: 'WeightSourceMissing',
  InvalidResource: 'InvalidResource',
} as const;
export type EventReason = (typeof EventReasons)[keyof typeof EventReasons];

export const TransferPhases = [
  'Pending',
  'Rendezvous',
  'Transferring',
  'Verifying',
  'Succeeded',
  'Failed',
] as const;
export type TransferPhase = (typeof TransferPhases)[number];

export const TERMINAL_PHASES: ReadonlySet<TransferPhase> = new Set(['Succeeded', 'Failed']);
