// Condition bookkeeping shared by every reconciler: lastTransitionTime moves only when the
// status flips, messages are bounded, and "did anything change" is answerable without a write.
import type { Condition } from '../api/v1alpha1/index.ts';
import { rfc3339 } from '../shared/clock.ts';
import { truncate } from '../shared/errors.ts';

export interface DesiredCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** Merges `desired` into `current`; returns the new list (current is not modified). */
export function setCondition(
  current: readonly Condition[] | undefined,
  desired: DesiredCondition,
  now: number,
): Condition[] {
  const list = [...(current ?? [])];
  const index = list.findIndex((c) => c.type === desired.type);
  const old = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: desired.type,
    status: desired.status,
    reason: desired.reason,
    message: truncate(desired.message, 1024),
    lastTransitionTime:
      old !== undefined && old.status === desired.status ? old.lastTransitionTime : rfc3339(now),
    ...(desired.observedGeneration === undefined ? {} : { observedGeneration: desired.observedGeneration }),
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** True when the two condition lists say the same thing (order-insensitive). */
export function sameConditions(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((c) => {
    const other = right.find((o) => o.type === c.type);
    return (
      other !== undefined &&
      other.status === c.status &&
      other.reason === c.reason &&
      (other.message ?? '') === (c.message ?? '') &&
      other.lastTransitionTime === c.lastTransitionTime &&
      other.observedGeneration === c.observedGeneration
    );
  });
}
