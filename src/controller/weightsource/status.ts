// Pure aggregation of a WeightTransfer's status from the entries agents wrote (docs/agent-contract.md
// §3–4): the controller owns phase, reason, message, byte totals, progress, throughput, times and
// the Complete condition; agents own rendezvous, seed and receivers.
import {
  ConditionTypes,
  Reasons,
  type ReceiverStatus,
  TERMINAL_PHASES,
  type TransferPhase,
  type WeightTransferSpec,
  type WeightTransferStatus,
} from '../../api/v1alpha1/index.ts';
import { rfc3339 } from '../../shared/clock.ts';
import { truncate } from '../../shared/errors.ts';
import { setCondition } from '../conditions.ts';

/** The fields of WeightTransfer.status the controller owns and writes. */
export interface TransferControllerStatus {
  phase: TransferPhase;
  reason?: string;
  message?: string;
  bytesTotal?: number;
  bytesDone?: number;
  progress?: string;
  gbps?: number;
  startTime?: string;
  completionTime?: string;
  conditions?: WeightTransferStatus['conditions'];
}

/** A failure the controller decides on its own (deadline, a pod gone). */
export interface ControllerVerdict {
  reason: string;
  message: string;
}

export type ReceiverOutcome = 'active' | 'succeeded' | 'failed';

const PHASE_ORDER: Record<TransferPhase, number> = {
  Pending: 0,
  Rendezvous: 1,
  Transferring: 2,
  Verifying: 3,
  Succeeded: 4,
  Failed: 5,
};

/** Succeeded counts only with `verified: true` (invariant 1): anything else is not a success. */
export function entrySucceeded(entry: ReceiverStatus | undefined): boolean {
  return entry !== undefined && entry.phase === 'Succeeded' && entry.verified === true;
}

export function entryFailed(entry: ReceiverStatus | undefined): boolean {
  return (
    entry !== undefined &&
    (entry.phase === 'Failed' || (entry.phase === 'Succeeded' && entry.verified !== true))
  );
}

export function receiverEntry(
  status: WeightTransferStatus | undefined,
  pod: string,
): ReceiverStatus | undefined {
  return status?.receivers?.find((r) => r.pod === pod);
}

/**
 * The phase, reason and message the transfer has now, given what agents reported and an
 * optional controller verdict. A transfer that is already terminal stays as it is.
 */
export function transferOutcome(
  spec: WeightTransferSpec,
  status: WeightTransferStatus | undefined,
  verdict: ControllerVerdict | undefined,
): { phase: TransferPhase; reason?: string; message?: string } {
  if (status !== undefined && TERMINAL_PHASES.has(status.phase)) {
    return { phase: status.phase, reason: status.reason, message: status.message };
  }
  const entries = spec.receivers.map((r) => receiverEntry(status, r.pod));
  if (entries.every((e) => entrySucceeded(e))) {
    return {
      phase: 'Succeeded',
      reason: Reasons.Succeeded,
      message: `${entries.length} receiver(s) verified`,
    };
  }
  if (verdict !== undefined) return { phase: 'Failed', reason: verdict.reason, message: verdict.message };
  if (status?.seed?.phase === 'Failed') {
    return {
      phase: 'Failed',
      reason: status.seed.reason ?? Reasons.Failed,
      message: `seed ${status.seed.pod}: ${status.seed.message ?? 'failed'}`,
    };
  }
  if (entries.every((e) => entrySucceeded(e) || entryFailed(e))) {
    const failed = spec.receivers.filter((_r, i) => entryFailed(entries[i]));
    const first = entries.find((e) => entryFailed(e));
    const why =
      first?.phase === 'Succeeded'
        ? 'reported Succeeded without verified: true'
        : (first?.message ?? 'failed');
    return {
      phase: 'Failed',
      reason: first?.phase === 'Succeeded' ? Reasons.ValidationFailed : (first?.reason ?? Reasons.Failed),
      message: `receiver(s) ${failed.map((r) => r.pod).join(', ')} failed: ${why}`,
    };
  }
  // In flight: the least advanced party decides the phase.
  let phase: TransferPhase = 'Succeeded';
  for (const entry of entries) {
    if (entrySucceeded(entry) || entryFailed(entry)) continue;
    const p = entry?.phase ?? 'Pending';
    if (PHASE_ORDER[p] < PHASE_ORDER[phase]) phase = p;
  }
  if (status?.seed !== undefined && PHASE_ORDER[status.seed.phase] < PHASE_ORDER[phase])
    phase = status.seed.phase;
  return { phase };
}

/** What one receiver got out of the transfer. */
export function receiverOutcome(
  status: WeightTransferStatus | undefined,
  phase: TransferPhase,
  pod: string,
): ReceiverOutcome {
  const entry = receiverEntry(status, pod);
  if (entrySucceeded(entry)) return 'succeeded';
  if (entryFailed(entry) || phase === 'Failed') return 'failed';
  // Defensive: a terminal Succeeded without this pod's verified entry is not a success for it.
  if (phase === 'Succeeded') return 'failed';
  return 'active';
}

/** The controller-owned status fields for the outcome above. */
export function aggregateStatus(
  spec: WeightTransferSpec,
  status: WeightTransferStatus | undefined,
  outcome: { phase: TransferPhase; reason?: string; message?: string },
  now: number,
): TransferControllerStatus {
  const receivers = spec.receivers.map((r) => receiverEntry(status, r.pod));
  let bytesTotal = 0;
  let bytesDone = 0;
  let gbps = 0;
  for (const entry of receivers) {
    bytesTotal += entry?.bytesTotal ?? 0;
    bytesDone += entry?.bytesDone ?? 0;
    if (entry !== undefined && !TERMINAL_PHASES.has(entry.phase)) gbps += entry.gbps ?? 0;
  }
  const terminal = TERMINAL_PHASES.has(outcome.phase);
  const started = status?.startTime ?? (outcome.phase !== 'Pending' ? rfc3339(now) : undefined);
  const out: TransferControllerStatus = { phase: outcome.phase };
  if (outcome.reason !== undefined) out.reason = outcome.reason;
  if (outcome.message !== undefined) out.message = truncate(outcome.message);
  if (bytesTotal > 0) {
    out.bytesTotal = bytesTotal;
    out.bytesDone = bytesDone;
    out.progress = `${Math.floor((100 * bytesDone) / bytesTotal)}%`;
  }
  if (gbps > 0) out.gbps = Math.round(gbps * 100) / 100;
  else if (status?.gbps !== undefined && terminal) out.gbps = status.gbps;
  if (started !== undefined) out.startTime = started;
  if (terminal) out.completionTime = status?.completionTime ?? rfc3339(now);
  out.conditions = setCondition(
    status?.conditions,
    terminal
      ? {
          type: ConditionTypes.Complete,
          status: 'True',
          reason: outcome.phase === 'Succeeded' ? Reasons.Succeeded : (outcome.reason ?? Reasons.Failed),
          message: outcome.message ?? '',
        }
      : {
          type: ConditionTypes.Complete,
          status: 'False',
          reason: outcome.phase,
          message: `phase ${outcome.phase}`,
        },
    now,
  );
  return out;
}

/**
 * What writing `next` would change: `none`; `progress` when only the counters moved (bytes,
 * progress, GB/s); `state` for anything else (phase, reason, message, times, conditions).
 */
export function statusChange(
  current: WeightTransferStatus | undefined,
  next: TransferControllerStatus,
): 'none' | 'progress' | 'state' {
  const state = (s: Partial<TransferControllerStatus> | undefined) =>
    JSON.stringify([
      s?.phase ?? 'Pending',
      s?.reason,
      s?.message,
      s?.startTime,
      s?.completionTime,
      (s?.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime]),
    ]);
  const counters = (s: Partial<TransferControllerStatus> | undefined) =>
    JSON.stringify([s?.bytesTotal, s?.bytesDone, s?.progress, s?.gbps]);
  if (state(current) !== state(next)) return 'state';
  return counters(current) !== counters(next) ? 'progress' : 'none';
}
