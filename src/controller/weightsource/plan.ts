// The transfer planner: observed pods and WeightTransfers of one WeightSource in, the next step
// out — transfers to create, fail or delete, the weights-ready condition and seed annotations of
// every pod, events and the source status. Pure (time comes in as `now`); the reconciler applies.
import {
  ConditionTypes,
  type EventReason,
  EventReasons,
  Labels,
  Reasons,
  recordNames,
  TERMINAL_PHASES,
  type TransferPhase,
  WEIGHTS_READY,
  type WeightSourceSpec,
  type WeightTransferSpec,
  type WeightTransferStatus,
} from '../../api/v1alpha1/index.ts';
import { rfc3339 } from '../../shared/clock.ts';
import type { DesiredCondition } from '../conditions.ts';
import {
  aggregateStatus,
  type ControllerVerdict,
  receiverOutcome,
  statusChange,
  type TransferControllerStatus,
  transferOutcome,
} from './status.ts';

/** A batch window slides at most this many windows past the first announcement. */
export const BATCH_WINDOW_CAP = 4;

export interface ObservedPod {
  name: string;
  uid: string;
  createdAt: number;
  nodeName?: string;
  /** Labels of the pod's node, for topology preference. */
  nodeLabels?: Readonly<Record<string, string>>;
  fingerprint?: string;
  agentEndpoint?: string;
  /** The agent's own record that the engine holds verified weights (annotation `weights-verified`). */
  verifiedBy?: { source: 'Seed' | 'Storage'; transfer: string };
  deleting: boolean;
  /** The pod's own Ready condition (kubelet: containers ready and every readiness gate True). */
  podReady: boolean;
  weightsReady?: {
    status: 'True' | 'False' | 'Unknown';
    reason: string;
    message?: string;
    /** The condition's lastTransitionTime (epoch ms, whole seconds). */
    since?: number;
  };
  /** The agent's record that an engine rank lost its weights (annotation `weights-lost`, epoch ms). */
  weightsLostAt?: number;
  role?: string;
  deletionCost?: string;
  /** When the controller first saw the agent's announcement (batch window, maxWaitSeconds). */
  announcedAt?: number;
}

export interface ObservedTransfer {
  name: string;
  spec: WeightTransferSpec;
  status?: WeightTransferStatus;
  createdAt: number;
  /** When the controller last wrote this transfer's status (its managedFields entry; whole seconds). */
  statusWrittenAt?: number;
}

/**
 * The controller writes a transfer's aggregate progress (bytes, %, GB/s) at most this often; a
 * change of phase, reason or condition goes out at once. Every member of a group writes into the
 * same object, and a controller write after each of theirs doubled the contention on it.
 */
export const PROGRESS_WRITE_MS = 3000;

export type ObservedSource =
  | { state: 'ok'; spec: WeightSourceSpec; generation?: number; conditions?: DesiredConditionWithTime[] }
  | { state: 'missing' }
  | { state: 'invalid'; issues: string[] };

export interface DesiredConditionWithTime extends DesiredCondition {
  lastTransitionTime?: string;
}

export interface SourcePlanInput {
  namespace: string;
  sourceName: string;
  source: ObservedSource;
  pods: readonly ObservedPod[];
  transfers: readonly ObservedTransfer[];
  now: number;
  /** Seeds kept on scale-in (the largest minSeeds of the InferenceDeployments using the source). */
  minSeeds: number;
  /** Finished transfers are deleted this long after completion. */
  retentionMs: number;
}

export interface PodDecision {
  pod: string;
  uid: string;
  condition: DesiredCondition;
  /** Controller-owned annotations the pod should carry (absent keys are removed). */
  annotations: Record<string, string>;
}

export interface NewTransfer {
  name: string;
  spec: WeightTransferSpec;
}

export interface TransferStatusUpdate {
  name: string;
  status: TransferControllerStatus;
}

export interface PlannedEvent {
  regarding: {
    kind: 'Pod' | 'WeightTransfer' | 'WeightSource' | 'InferenceDeployment';
    name: string;
    uid?: string;
  };
  reason: EventReason;
  type: 'Normal' | 'Warning';
  action: string;
  note: string;
}

export interface SourceStatusPlan {
  seeds: number;
  waitingReceivers: number;
  activeTransfers: number;
  portsInUse: number;
  fingerprints: Array<{ fingerprint: string; seeds: number; pods: number }>;
  conditions: DesiredCondition[];
}

export interface SourcePlan {
  create: NewTransfer[];
  statuses: TransferStatusUpdate[];
  delete: string[];
  pods: PodDecision[];
  source?: SourceStatusPlan;
  events: PlannedEvent[];
  /** Pods whose weights became verified in this plan, with the seconds since the pod was created. */
  newlyReady: Array<{ pod: string; reason: string; seconds: number }>;
  /** Transfers that finished in this plan. */
  finished: Array<{ name: string; phase: TransferPhase; reason: string; source: 'Seed' | 'Storage' }>;
  requeueAfterMs?: number;
}

export const DeletionCost = { protectedSeed: '1000', servingSeed: '500', seed: '100' } as const;
export const ROLE_SEED = 'seed';

/** A stable transfer name per (first receiver, attempt): re-planning from a stale cache collides instead of duplicating. */
export function transferName(pod: { name: string; uid: string }, attempt: number): string {
  let hash = 2166136261;
  for (const ch of pod.uid) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
  const prefix = pod.name.slice(0, 200).replace(/[-.]+$/, '');
  return `${prefix}-${attempt}-${hash.toString(36).padStart(7, '0').slice(-7)}`;
}

/** 0 = same node, i+1 = same value of topologyKeys[i], keys+1 = nothing shared. */
export function proximity(receiver: ObservedPod, seed: ObservedPod, topologyKeys: readonly string[]): number {
  if (receiver.nodeName !== undefined && receiver.nodeName === seed.nodeName) return 0;
  for (let i = 0; i < topologyKeys.length; i++) {
    const key = topologyKeys[i] as string;
    const value = receiver.nodeLabels?.[key];
    if (value !== undefined && value === seed.nodeLabels?.[key]) return i + 1;
  }
  return topologyKeys.length + 1;
}

function proximityWords(level: number, topologyKeys: readonly string[]): string {
  if (level === 0) return 'same node';
  if (level <= topologyKeys.length) return `same ${topologyKeys[level - 1]}`;
  return 'no shared topology domain';
}

export function isAnnounced(pod: ObservedPod): boolean {
  return (pod.fingerprint ?? '') !== '' && (pod.agentEndpoint ?? '') !== '';
}

/**
 * The second the agent recorded a weights loss, when there is one: conditions and creation times
 * have whole seconds, so a loss counts against what happened before its second.
 */
function lostAt(pod: ObservedPod): number | undefined {
  return pod.weightsLostAt === undefined ? undefined : Math.floor(pod.weightsLostAt / 1000) * 1000;
}

/** Weights-ready is True but older than the agent's record of a loss (the engine restarted empty). */
export function lostSinceReady(pod: ObservedPod): boolean {
  const lost = lostAt(pod);
  if (lost === undefined || pod.weightsReady?.status !== 'True') return false;
  return pod.weightsReady.since === undefined || pod.weightsReady.since < lost;
}

/** A seed: verified weights (our condition True, not lost since), Ready, announced, not going away. */
export function isSeed(pod: ObservedPod): boolean {
  return (
    !pod.deleting &&
    pod.podReady &&
    isAnnounced(pod) &&
    pod.weightsReady?.status === 'True' &&
    !lostSinceReady(pod)
  );
}

/** Lowest `count` ports of the range free on every pod in `pods`. */
export function allocatePorts(
  range: { start: number; count: number },
  count: number,
  busy: readonly (ReadonlySet<number> | undefined)[],
): number[] | undefined {
  const ports: number[] = [];
  for (let port = range.start; port < range.start + range.count && ports.length < count; port++) {
    if (busy.every((set) => set === undefined || !set.has(port))) ports.push(port);
  }
  return ports.length === count ? ports : undefined;
}

const sortReceivers = (a: ObservedPod, b: ObservedPod) =>
  (a.announcedAt ?? a.createdAt) - (b.announcedAt ?? b.createdAt) ||
  a.createdAt - b.createdAt ||
  a.name.localeCompare(b.name);

interface History {
  attempts: number;
  seedFailures: number;
  failedSeeds: Set<string>;
}

interface Group {
  seed: ObservedPod;
  receivers: ObservedPod[];
  ports: number[];
  level: number;
}

function condition(status: 'True' | 'False', reason: string, message: string): DesiredCondition {
  return { type: '', status, reason, message };
}

export function planSource(input: SourcePlanInput): SourcePlan {
  const { now, sourceName } = input;
  const plan: SourcePlan = {
    create: [],
    statuses: [],
    delete: [],
    pods: [],
    events: [],
    newlyReady: [],
    finished: [],
  };
  let wakeAt = Number.POSITIVE_INFINITY;
  const wake = (at: number) => {
    wakeAt = Math.min(wakeAt, at);
  };
  const live = new Map<string, ObservedPod>();
  for (const pod of input.pods) if (!pod.deleting) live.set(pod.uid, pod);

  // Finished transfers are garbage-collected after the retention period, whatever the source state.
  const collect = (t: ObservedTransfer, phase: TransferPhase, completedAt: number) => {
    if (!TERMINAL_PHASES.has(phase)) return;
    const at = completedAt + input.retentionMs;
    if (at <= now) plan.delete.push(t.name);
    else wake(at);
  };

  if (input.source.state !== 'ok') {
    const missing = input.source.state === 'missing';
    const issues = input.source.state === 'invalid' ? input.source.issues : [];
    const message = missing
      ? `metadata.labels[${Labels.weightSource}]: WeightSource ${input.namespace}/${sourceName} not found`
      : `WeightSource ${sourceName} is invalid: ${issues.join('; ')}`;
    const reason = missing ? Reasons.WeightSourceMissing : Reasons.ValidationFailed;
    for (const pod of input.pods) {
      if (pod.deleting) continue;
      if (pod.weightsReady?.status === 'True') {
        plan.pods.push({ pod: pod.name, uid: pod.uid, condition: keep(pod), annotations: {} });
        continue;
      }
      plan.pods.push({
        pod: pod.name,
        uid: pod.uid,
        condition: condition('False', reason, message),
        annotations: {},
      });
      if (pod.weightsReady?.reason !== reason) {
        plan.events.push({
          regarding: { kind: 'Pod', name: pod.name, uid: pod.uid },
          reason: missing ? EventReasons.WeightSourceMissing : EventReasons.InvalidResource,
          type: 'Warning',
          action: 'Resolve',
          note: message,
        });
      }
    }
    for (const t of input.transfers) {
      const phase = t.status?.phase ?? 'Pending';
      collect(t, phase, Date.parse(t.status?.completionTime ?? '') || t.createdAt);
    }
    return finish(plan, wakeAt, now);
  }

  const spec = input.source.spec;
  const policy = spec.transfer;
  const ranks = spec.layout.tensorParallel * spec.layout.pipelineParallel;
  const windowMs = policy.batchWindowSeconds * 1000;
  const maxWaitMs = spec.coldStart.maxWaitSeconds * 1000;

  // 1. Every transfer's outcome now: what agents reported plus the controller's own verdicts.
  const outcomes = new Map<string, TransferPhase>();
  const reserved = new Map<string, Set<number>>();
  const seedLoad = new Map<string, number>();
  const reserve = (uid: string, ports: readonly number[]) => {
    let set = reserved.get(uid);
    if (set === undefined) {
      set = new Set();
      reserved.set(uid, set);
    }
    for (const p of ports) set.add(p);
  };
  let activeTransfers = 0;
  let portsInUse = 0;
  const activeStorage = new Set<string>();
  for (const t of input.transfers) {
    const before = t.status?.phase ?? 'Pending';
    let verdict: ControllerVerdict | undefined;
    if (!TERMINAL_PHASES.has(before)) {
      const deadline = Date.parse(t.spec.deadline);
      const seed = t.spec.source.seed;
      const lostReceivers = t.spec.receivers.filter((r) => live.get(r.uid)?.name !== r.pod);
      if (now > deadline) {
        verdict = { reason: Reasons.DeadlineExceeded, message: `deadline ${t.spec.deadline} passed` };
      } else if (seed !== undefined && live.get(seed.uid)?.name !== seed.pod) {
        verdict = {
          reason: Reasons.SeedLost,
          message: `seed pod ${seed.pod} (uid ${seed.uid}) is gone or terminating`,
        };
      } else if (lostReceivers.length > 0) {
        verdict = {
          reason: Reasons.ReceiverLost,
          message: `receiver pod(s) ${lostReceivers.map((r) => r.pod).join(', ')} gone or terminating`,
        };
      } else {
        wake(deadline + 1000);
      }
    }
    const outcome = transferOutcome(t.spec, t.status, verdict);
    outcomes.set(t.name, outcome.phase);
    const next = aggregateStatus(t.spec, t.status, outcome, now);
    const change = statusChange(t.status, next);
    const progressDue = (t.statusWrittenAt ?? Number.NEGATIVE_INFINITY) + PROGRESS_WRITE_MS;
    if (change === 'state' || (change === 'progress' && now >= progressDue))
      plan.statuses.push({ name: t.name, status: next });
    else if (change === 'progress') wake(progressDue);
    const terminal = TERMINAL_PHASES.has(outcome.phase);
    const newlyTerminal = terminal && !TERMINAL_PHASES.has(before);
    if (newlyTerminal) {
      plan.finished.push({
        name: t.name,
        phase: outcome.phase,
        reason: outcome.reason ?? '',
        source: t.spec.source.type,
      });
      plan.events.push({
        regarding: { kind: 'WeightTransfer', name: t.name },
        reason: outcome.phase === 'Succeeded' ? EventReasons.TransferSucceeded : EventReasons.TransferFailed,
        type: outcome.phase === 'Succeeded' ? 'Normal' : 'Warning',
        action: 'Complete',
        note: outcome.message ?? outcome.phase,
      });
    }
    // Ports stay reserved through the round a transfer ends in: its agents may still be closing.
    if (!terminal || newlyTerminal) {
      if (t.spec.source.seed !== undefined)
        reserve(
          t.spec.source.seed.uid,
          t.spec.ports.map((p) => p.port),
        );
      for (const r of t.spec.receivers)
        reserve(
          r.uid,
          t.spec.ports.map((p) => p.port),
        );
    }
    if (!terminal) {
      activeTransfers += 1;
      portsInUse += t.spec.ports.length;
      if (t.spec.source.seed !== undefined) {
        seedLoad.set(t.spec.source.seed.uid, (seedLoad.get(t.spec.source.seed.uid) ?? 0) + 1);
      } else {
        activeStorage.add(t.spec.fingerprint);
      }
    }
    collect(t, outcome.phase, Date.parse(next.completionTime ?? '') || now);
  }

  // 2. Each pod's state from its own transfers (matched by uid: a recreated pod starts afresh).
  const byReceiver = new Map<string, ObservedTransfer[]>();
  for (const t of input.transfers) {
    for (const r of t.spec.receivers) {
      const list = byReceiver.get(r.uid) ?? [];
      list.push(t);
      byReceiver.set(r.uid, list);
    }
  }
  const needs: ObservedPod[] = [];
  const histories = new Map<string, History>();
  const pendingSeeds = new Set<string>(); // fingerprints with verified pods not yet Ready
  const decided = new Map<string, PodDecision>();
  const decide = (pod: ObservedPod, c: DesiredCondition) => {
    decided.set(pod.uid, { pod: pod.name, uid: pod.uid, condition: c, annotations: {} });
  };
  for (const pod of input.pods) {
    if (pod.deleting) continue;
    if (!isAnnounced(pod)) {
      decide(
        pod,
        condition(
          'False',
          Reasons.WaitingForAgent,
          'waiting for the agent to announce its fingerprint and endpoint',
        ),
      );
      continue;
    }
    const lost = lostAt(pod);
    if (pod.weightsReady?.status === 'True') {
      if (!lostSinceReady(pod)) {
        decide(pod, keep(pod));
        if (!isSeed(pod)) pendingSeeds.add(pod.fingerprint as string);
        continue;
      }
      // The engine restarted without its weights after they were verified: the pod must not serve
      // (the condition turns False below, with whatever this pod waits for now) and gets them again.
      plan.events.push({
        regarding: { kind: 'Pod', name: pod.name, uid: pod.uid },
        reason: EventReasons.WeightsLost,
        type: 'Warning',
        action: 'Verify',
        note: `the engine lost its weights at ${new Date(pod.weightsLostAt as number).toISOString()} (the agent's record on the pod); not ready until they are sent again`,
      });
    }
    const all = (byReceiver.get(pod.uid) ?? []).sort(
      (a, b) => a.spec.attempt - b.spec.attempt || a.createdAt - b.createdAt,
    );
    // After a loss only transfers created since count (an earlier success delivered what is gone);
    // the attempt number still counts them all, so a new transfer's name is never an old one's.
    const mine = lost === undefined ? all : all.filter((t) => t.createdAt >= lost);
    const won = mine.find(
      (t) => receiverOutcome(t.status, outcomes.get(t.name) ?? 'Pending', pod.name) === 'succeeded',
    );
    // Weights-ready turns True: the condition, an event, and the pod may become a seed.
    const verified = (source: 'Seed' | 'Storage', note: string): void => {
      const reason = source === 'Seed' ? Reasons.WeightsVerified : Reasons.ColdLoaded;
      decide(pod, condition('True', reason, note));
      plan.newlyReady.push({ pod: pod.name, reason, seconds: Math.max(0, (now - pod.createdAt) / 1000) });
      plan.events.push({
        regarding: { kind: 'Pod', name: pod.name, uid: pod.uid },
        reason: EventReasons.WeightsReady,
        type: 'Normal',
        action: 'Verify',
        note,
      });
      pendingSeeds.add(pod.fingerprint as string);
    };
    if (won !== undefined) {
      const from = won.spec.source.seed === undefined ? 'storage' : `seed ${won.spec.source.seed.pod}`;
      verified(won.spec.source.type, `weights verified from ${from} (transfer ${won.name})`);
      continue;
    }
    // The agent's record on the pod, written just before its status entry says Succeeded: a
    // merge patch of its own pod, which lands sooner than a write into a transfer that a whole
    // group writes (issue 9), and outlives a transfer deleted before its status was read — the
    // pod is then never named a receiver again (its agent would refuse: verified weights stay).
    // It counts only for a transfer that names this pod (uid), or one that is gone.
    const record = pod.verifiedBy;
    const recorded =
      record === undefined ? undefined : input.transfers.find((t) => t.name === record.transfer);
    const recordBeforeLoss = lost !== undefined && recorded !== undefined && recorded.createdAt < lost;
    if (
      record !== undefined &&
      !recordBeforeLoss &&
      (recorded === undefined || recordNames(record, recorded, pod.uid))
    ) {
      const seedPod = recorded?.spec.source.seed?.pod;
      const from =
        record.source === 'Storage' ? 'storage' : seedPod === undefined ? 'a seed' : `seed ${seedPod}`;
      verified(
        record.source,
        `weights verified from ${from} (transfer ${record.transfer}${recorded === undefined ? ', since deleted' : ''}; the agent's record on the pod)`,
      );
      continue;
    }
    const inflight = mine.find(
      (t) => receiverOutcome(t.status, outcomes.get(t.name) ?? 'Pending', pod.name) === 'active',
    );
    if (inflight !== undefined) {
      const from =
        inflight.spec.source.seed === undefined ? 'storage' : `seed ${inflight.spec.source.seed.pod}`;
      decide(
        pod,
        condition('False', Reasons.TransferInProgress, `transfer ${inflight.name} from ${from} in progress`),
      );
      continue;
    }
    const history: History = { attempts: all.length, seedFailures: 0, failedSeeds: new Set() };
    for (const t of mine) {
      if (t.spec.source.seed === undefined) continue;
      // A group that failed because another receiver vanished does not count against this one.
      const ownEntryFailed =
        t.status?.receivers?.some((r) => r.pod === pod.name && r.phase === 'Failed') ?? false;
      if (outcomeReason(t, plan) === Reasons.ReceiverLost && !ownEntryFailed) continue;
      history.seedFailures += 1;
      history.failedSeeds.add(t.spec.source.seed.uid);
    }
    histories.set(pod.uid, history);
    if (history.attempts >= 100) {
      decide(pod, condition('False', Reasons.TransferFailed, `gave up after ${history.attempts} attempts`));
      continue;
    }
    needs.push(pod);
  }

  // 3. Route each receiver: a seed, storage, or wait.
  const seeds = input.pods.filter(isSeed);
  const byFingerprint = new Map<string, ObservedPod[]>();
  for (const pod of needs.sort(sortReceivers)) {
    const list = byFingerprint.get(pod.fingerprint as string) ?? [];
    list.push(pod);
    byFingerprint.set(pod.fingerprint as string, list);
  }
  const groups: Group[] = [];
  const plannedLoad = new Map<string, number>();
  let portsBlocked = false;
  let waiting = 0;
  const storage: Array<{ pod: ObservedPod; why: string }> = [];

  for (const [fingerprint, receivers] of byFingerprint) {
    const fpSeeds = seeds.filter((s) => s.fingerprint === fingerprint);
    const seedQueue: ObservedPod[] = [];
    let coldStarter: ObservedPod | undefined;
    for (const pod of receivers) {
      const history = histories.get(pod.uid) as History;
      const waited = now - (pod.announcedAt ?? now);
      if (history.seedFailures > policy.maxRetries) {
        storage.push({
          pod,
          why: `${history.seedFailures} transfer(s) from seeds failed (maxRetries ${policy.maxRetries})`,
        });
      } else if (fpSeeds.length > 0) {
        seedQueue.push(pod);
      } else if (spec.coldStart.policy === 'All') {
        storage.push({ pod, why: 'no seed yet and coldStart.policy is All' });
      } else if (waited >= maxWaitMs) {
        storage.push({
          pod,
          why: `no seed within coldStart.maxWaitSeconds (${spec.coldStart.maxWaitSeconds})`,
        });
      } else if (
        activeStorage.has(fingerprint) ||
        pendingSeeds.has(fingerprint) ||
        coldStarter !== undefined
      ) {
        waiting += 1;
        wake((pod.announcedAt ?? now) + maxWaitMs);
        decide(
          pod,
          condition(
            'False',
            Reasons.WaitingForSeed,
            'waiting for the first pod of this fingerprint to load from storage',
          ),
        );
      } else {
        coldStarter = pod;
        storage.push({ pod, why: 'first pod of this fingerprint (coldStart.policy Single)' });
      }
    }
    if (seedQueue.length === 0) continue;

    // Batch window: receivers that announce within a window of each other share a group. The
    // window slides while announcements keep coming (or pods of the source are still starting
    // their agents), bounded at BATCH_WINDOW_CAP windows after the first, and closes at once
    // when a group is full. Pods of a scale-out rarely start together, and a group per
    // straggler would cost a broadcast each.
    const announced = seedQueue.map((p) => p.announcedAt ?? now);
    const oldest = Math.min(...announced);
    const newest = Math.max(...announced);
    const starting = input.pods.some((p) => !p.deleting && p.fingerprint === undefined);
    const closesAt = Math.min(
      oldest + BATCH_WINDOW_CAP * windowMs,
      starting ? oldest + BATCH_WINDOW_CAP * windowMs : newest + windowMs,
    );
    const hold = windowMs > 0 && now < closesAt && seedQueue.length < policy.maxReceiversPerGroup;
    if (hold) wake(closesAt);
    for (const pod of seedQueue) {
      const history = histories.get(pod.uid) as History;
      let placed = false;
      let blockedByPorts = false;
      if (!hold) {
        const fresh = fpSeeds.filter((s) => !history.failedSeeds.has(s.uid));
        const candidates = fresh.length > 0 ? fresh : fpSeeds;
        let best:
          | { key: [number, number, number, string]; group?: Group; seed: ObservedPod; ports?: number[] }
          | undefined;
        for (const seed of candidates) {
          const level = proximity(pod, seed, spec.topologyKeys);
          const load = (seedLoad.get(seed.uid) ?? 0) + (plannedLoad.get(seed.uid) ?? 0);
          const open = groups.find(
            (g) =>
              g.seed.uid === seed.uid &&
              g.receivers.length < policy.maxReceiversPerGroup &&
              g.ports.every((p) => !reserved.get(pod.uid)?.has(p)),
          );
          let option: typeof best;
          if (open !== undefined) option = { key: [level, 0, load, seed.name], group: open, seed };
          else if (load < policy.maxConcurrentPerSeed) {
            const ports = allocatePorts(policy.ports, ranks, [reserved.get(seed.uid), reserved.get(pod.uid)]);
            if (ports === undefined) blockedByPorts = true;
            else option = { key: [level, 1, load, seed.name], seed, ports };
          }
          if (option !== undefined && (best === undefined || compareKeys(option.key, best.key) < 0))
            best = option;
        }
        if (best !== undefined) {
          placed = true;
          if (best.group !== undefined) best.group.receivers.push(pod);
          else {
            const group: Group = {
              seed: best.seed,
              receivers: [pod],
              ports: best.ports as number[],
              level: best.key[0],
            };
            groups.push(group);
            plannedLoad.set(best.seed.uid, (plannedLoad.get(best.seed.uid) ?? 0) + 1);
            reserve(best.seed.uid, group.ports);
          }
          reserve(pod.uid, (best.group ?? groups[groups.length - 1])?.ports ?? []);
        }
      }
      if (placed) continue;
      const waited = now - (pod.announcedAt ?? now);
      if (waited >= maxWaitMs) {
        storage.push({
          pod,
          why: `no seed capacity within coldStart.maxWaitSeconds (${spec.coldStart.maxWaitSeconds})`,
        });
        continue;
      }
      waiting += 1;
      wake((pod.announcedAt ?? now) + maxWaitMs);
      if (blockedByPorts) portsBlocked = true;
      const message = hold
        ? `batching receivers for up to ${policy.batchWindowSeconds}s`
        : blockedByPorts
          ? `port range ${policy.ports.start}-${policy.ports.start + policy.ports.count - 1} exhausted on the seeds`
          : `all ${fpSeeds.length} seed(s) busy (maxConcurrentPerSeed ${policy.maxConcurrentPerSeed})`;
      decide(pod, condition('False', Reasons.WaitingForSeed, message));
    }
  }

  // 4. New transfers.
  const deadline = rfc3339(now + policy.timeoutSeconds * 1000);
  for (const group of groups) {
    const first = group.receivers[0] as ObservedPod;
    const attempt = Math.max(...group.receivers.map((r) => histories.get(r.uid)?.attempts ?? 0));
    const name = transferName(first, histories.get(first.uid)?.attempts ?? 0);
    plan.create.push({
      name,
      spec: {
        weightSource: sourceName,
        fingerprint: first.fingerprint as string,
        source: { type: 'Seed', seed: { pod: group.seed.name, uid: group.seed.uid } },
        receivers: group.receivers.map((r) => ({ pod: r.name, uid: r.uid })),
        transport: policy.transports[0],
        ranks,
        ports: group.ports.map((port, rank) => ({ rank, port })),
        deadline,
        ...(policy.bandwidthLimit === undefined ? {} : { bandwidthLimit: policy.bandwidthLimit }),
        attempt,
      },
    });
    activeTransfers += 1;
    portsInUse += group.ports.length;
    for (const r of group.receivers) {
      decide(
        r,
        condition(
          'False',
          Reasons.TransferInProgress,
          `transfer ${name} from seed ${group.seed.name} in progress`,
        ),
      );
    }
    plan.events.push({
      regarding: { kind: 'WeightTransfer', name },
      reason: EventReasons.SeedSelected,
      type: 'Normal',
      action: 'SelectSeed',
      note: `seed ${group.seed.name} (${proximityWords(group.level, spec.topologyKeys)}) for ${group.receivers.length} receiver(s): ${group.receivers.map((r) => r.name).join(', ')}; ports ${group.ports.join(',')}`,
    });
    if (attempt > 0) {
      plan.events.push({
        regarding: { kind: 'WeightTransfer', name },
        reason: EventReasons.RetryScheduled,
        type: 'Normal',
        action: 'Retry',
        note: `attempt ${attempt} from seed ${group.seed.name}`,
      });
    }
  }
  for (const { pod, why } of storage) {
    const attempt = histories.get(pod.uid)?.attempts ?? 0;
    const name = transferName(pod, attempt);
    plan.create.push({
      name,
      spec: {
        weightSource: sourceName,
        fingerprint: pod.fingerprint as string,
        source: { type: 'Storage' },
        receivers: [{ pod: pod.name, uid: pod.uid }],
        ranks,
        ports: [],
        // A load from storage is minutes for the largest models: it has its own deadline.
        deadline: rfc3339(now + spec.coldStart.timeoutSeconds * 1000),
        attempt,
      },
    });
    activeTransfers += 1;
    activeStorage.add(pod.fingerprint as string);
    decide(pod, condition('False', Reasons.TransferInProgress, `transfer ${name} from storage in progress`));
    plan.events.push({
      regarding: { kind: 'WeightTransfer', name },
      reason: EventReasons.ColdStart,
      type: 'Normal',
      action: 'ColdStart',
      note: `${pod.name} loads from storage: ${why}`,
    });
  }

  // 5. Seed annotations: seeds outlive non-seeds on scale-in; the oldest minSeeds outlive the rest.
  const busySeeds = new Set<string>([...seedLoad.keys(), ...plannedLoad.keys()]);
  const protectedSeeds = new Set(
    [...seeds]
      .sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name))
      .slice(0, input.minSeeds)
      .map((s) => s.uid),
  );
  for (const seed of seeds) {
    const decision = decided.get(seed.uid);
    if (decision === undefined) continue;
    decision.annotations = {
      role: ROLE_SEED,
      deletionCost: protectedSeeds.has(seed.uid)
        ? DeletionCost.protectedSeed
        : busySeeds.has(seed.uid)
          ? DeletionCost.servingSeed
          : DeletionCost.seed,
    };
  }
  plan.pods = [...decided.values()].map((d) => ({ ...d, condition: { ...d.condition } }));

  // 6. Source status.
  const fingerprints = new Map<string, { fingerprint: string; seeds: number; pods: number }>();
  for (const pod of input.pods) {
    if (pod.deleting || !isAnnounced(pod)) continue;
    const fp = pod.fingerprint as string;
    const entry = fingerprints.get(fp) ?? { fingerprint: fp, seeds: 0, pods: 0 };
    entry.pods += 1;
    if (isSeed(pod)) entry.seeds += 1;
    fingerprints.set(fp, entry);
  }
  const conditions: DesiredCondition[] = [
    seeds.length > 0
      ? {
          type: ConditionTypes.SeedAvailable,
          status: 'True',
          reason: Reasons.SeedReady,
          message: `${seeds.length} seed(s)`,
        }
      : activeStorage.size > 0
        ? {
            type: ConditionTypes.SeedAvailable,
            status: 'False',
            reason: Reasons.ColdStarting,
            message: 'loading from storage',
          }
        : {
            type: ConditionTypes.SeedAvailable,
            status: 'False',
            reason: Reasons.NoSeed,
            message: 'no pod holds verified weights',
          },
    portsBlocked
      ? {
          type: ConditionTypes.PortsExhausted,
          status: 'True',
          reason: Reasons.PortsExhausted,
          message: `spec.transfer.ports: range ${policy.ports.start}-${policy.ports.start + policy.ports.count - 1} cannot fit ${ranks} more port(s) on the free seeds`,
        }
      : { type: ConditionTypes.PortsExhausted, status: 'False', reason: Reasons.PortsAvailable, message: '' },
  ];
  for (const c of conditions) c.observedGeneration = input.source.generation;
  const wasExhausted =
    input.source.conditions?.find((c) => c.type === ConditionTypes.PortsExhausted)?.status === 'True';
  if (portsBlocked && !wasExhausted) {
    plan.events.push({
      regarding: { kind: 'WeightSource', name: sourceName },
      reason: EventReasons.PortsExhausted,
      type: 'Warning',
      action: 'AllocatePorts',
      note: conditions[1]?.message ?? '',
    });
  }
  if (portsBlocked) wake(now + 5000);
  plan.source = {
    seeds: seeds.length,
    waitingReceivers: waiting,
    activeTransfers,
    portsInUse,
    fingerprints: [...fingerprints.values()].slice(0, 64),
    conditions,
  };
  return finish(plan, wakeAt, now);
}

function outcomeReason(t: ObservedTransfer, plan: SourcePlan): string | undefined {
  return plan.finished.find((f) => f.name === t.name)?.reason ?? t.status?.reason;
}

function keep(pod: ObservedPod): DesiredCondition {
  return {
    type: '',
    status: 'True',
    reason: pod.weightsReady?.reason ?? Reasons.WeightsVerified,
    message: pod.weightsReady?.message ?? '',
  };
}

function compareKeys(a: readonly (number | string)[], b: readonly (number | string)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number | string;
    const y = b[i] as number | string;
    if (x === y) continue;
    return typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
  }
  return 0;
}

function finish(plan: SourcePlan, wakeAt: number, now: number): SourcePlan {
  for (const pod of plan.pods) pod.condition.type = WEIGHTS_READY;
  if (Number.isFinite(wakeAt)) plan.requeueAfterMs = Math.max(100, wakeAt - now);
  return plan;
}
