// Every name that crosses a process boundary (labels, annotations, conditions, field managers)
// lives here, so the controller, the agent and the tests can never disagree on a spelling.

import { parseTime } from '../../shared/clock.ts';

export const GROUP = 'seedcast.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const Kinds = {
  WeightSource: 'WeightSource',
  InferenceDeployment: 'InferenceDeployment',
  WeightTransfer: 'WeightTransfer',
} as const;

export const Plurals = {
  WeightSource: 'weightsources',
  InferenceDeployment: 'inferencedeployments',
  WeightTransfer: 'weighttransfers',
} as const;

export const Labels = {
  /** Marks a pod (of any workload) as a member of a WeightSource; the value is the source's name. */
  weightSource: `${GROUP}/weight-source`,
  /** Set on pods and Deployments rendered from an InferenceDeployment. */
  inferenceDeployment: `${GROUP}/inference-deployment`,
  /** Set on WeightTransfers: the WeightSource they deliver. */
  transferSource: `${GROUP}/weight-source`,
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

export const Annotations = {
  /** Written by the agent on its own pod once the engine registered: the fingerprint of every rank. */
  fingerprint: `${GROUP}/fingerprint`,
  /** Written by the agent on its own pod: host:port of its peer endpoint. */
  agentEndpoint: `${GROUP}/agent-endpoint`,
  /**
   * Written by the agent on its own pod just before it reports a receive or cold load verified:
   * `seed/<transfer>` or `storage/<transfer>`. The controller's record of that verification
   * survives the WeightTransfer being deleted before the controller read its status.
   */
  weightsVerified: `${GROUP}/weights-verified`,
  /**
   * Written by the agent on its own pod when an engine rank that held verified weights registered
   * again empty (its container restarted): the time (RFC 3339), in the same write that removes
   * `weights-verified`. The controller drops weights-ready and counts only transfers after it.
   */
  weightsLost: `${GROUP}/weights-lost`,
  /** Written by the controller: `seed` once the pod holds verified weights. */
  role: `${GROUP}/role`,
  /** Standard Kubernetes annotation the ReplicaSet controller reads on scale-in. */
  podDeletionCost: 'controller.kubernetes.io/pod-deletion-cost',
} as const;

/** The value of `Annotations.weightsVerified`: `seed/<transfer>` or `storage/<transfer>`. */
export function weightsVerifiedValue(source: 'Seed' | 'Storage', transfer: string): string {
  return `${source === 'Seed' ? 'seed' : 'storage'}/${transfer}`;
}

/** Parses `Annotations.weightsLost` into epoch ms; undefined for anything that is not a time. */
export function parseWeightsLost(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) return undefined;
  return parseTime(value);
}

/** Parses `Annotations.weightsVerified`; undefined for anything else (a hand edit, a typo). */
export function parseWeightsVerified(
  value: string | undefined,
): { source: 'Seed' | 'Storage'; transfer: string } | undefined {
  const match = /^(seed|storage)\/([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$/.exec(value ?? '');
  if (match === null) return undefined;
  return { source: match[1] === 'seed' ? 'Seed' : 'Storage', transfer: match[2] as string };
}

/** Whether a weights-verified `record` is about `transfer`, one that named pod `uid` a receiver. */
export function recordNames(
  record: { source: 'Seed' | 'Storage'; transfer: string },
  transfer: { name: string; spec: { source: { type: string }; receivers: ReadonlyArray<{ uid: string }> } },
  uid: string,
): boolean {
  return (
    transfer.name === record.transfer &&
    transfer.spec.source.type === record.source &&
    transfer.spec.receivers.some((r) => r.uid === uid)
  );
}

/** The pod readiness gate and condition type that the controller owns. */
export const WEIGHTS_READY = `${GROUP}/weights-ready`;

export const FieldManagers = {
  controller: 'seedcast-controller',
  /** Agents write with one manager per pod so each owns only its own list-map entries. */
  agent: (podName: string) => `seedcast-agent-${podName}`.slice(0, 128),
} as const;

export const MANAGED_BY = 'seedcast';
