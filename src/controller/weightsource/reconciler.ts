// WeightSource reconciler: observe (informer caches) → plan (plan.ts, pure) → apply (create,
// fail, delete WeightTransfers; pod annotations and weights-ready condition) → status (one write
// per object) → events (only after the writes succeeded).
import {
  Annotations,
  API_VERSION,
  type Condition,
  ConditionTypes,
  EventReasons,
  FieldManagers,
  GROUP,
  inferenceDeployment,
  Kinds,
  Labels,
  Plurals,
  parseWeightsLost,
  parseWeightsVerified,
  Reasons,
  VERSION,
  WEIGHTS_READY,
  type WeightTransferSpec,
  type WeightTransferStatus,
  weightSource,
} from '../../api/v1alpha1/index.ts';
import { formatIssues } from '../../api/v1alpha1/validate.ts';
import { type Clock, parseTime } from '../../shared/clock.ts';
import { ValidationError } from '../../shared/errors.ts';
import type { Informer } from '../../shared/informer.ts';
import { isConflict, isNotFound, type KubeClient, type KubeObject, Resources } from '../../shared/kube.ts';
import type { Logger } from '../../shared/log.ts';
import type { ReconcileResult } from '../../shared/queue.ts';
import { sameConditions, setCondition } from '../conditions.ts';
import type { EventRecorder } from '../events.ts';
import type { ControllerMetrics } from '../metrics.ts';
import {
  type ObservedPod,
  type ObservedSource,
  type ObservedTransfer,
  planSource,
  type SourcePlan,
} from './plan.ts';

export const WeightSourceRefs = {
  sources: { group: GROUP, version: VERSION, plural: Plurals.WeightSource },
  transfers: { group: GROUP, version: VERSION, plural: Plurals.WeightTransfer },
  deployments: { group: GROUP, version: VERSION, plural: Plurals.InferenceDeployment },
} as const;

export interface PodObject extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: Array<Condition & { status: string }> };
}

export interface WeightSourceReconcilerDeps {
  client: KubeClient;
  sources: Informer;
  transfers: Informer;
  pods: Informer<PodObject>;
  inferenceDeployments: Informer;
  nodes?: Informer;
  clock: Clock;
  logger: Logger;
  events: EventRecorder;
  metrics: ControllerMetrics;
  retentionMs: number;
}

const FIELD_MANAGER = FieldManagers.controller;
/** Parallel API writes per reconcile: independent objects, bounded so a 256-pod source cannot flood the server. */
const WRITE_CONCURRENCY = 16;
const QUIET_REASONS: ReadonlySet<string> = new Set([Reasons.WaitingForSeed, Reasons.WaitingForAgent]);
const VERIFIED_REASONS: ReadonlySet<string> = new Set([Reasons.WeightsVerified, Reasons.ColdLoaded]);

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first error after all settle. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

export class WeightSourceReconciler {
  readonly #d: WeightSourceReconcilerDeps;
  /** uid → when the controller first saw the pod announced (batch window, maxWait). */
  readonly #announced = new Map<string, Map<string, number>>(); // source key → uid → time

  constructor(deps: WeightSourceReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const d = this.#d;
    const now = d.clock.now();
    const log = d.logger.child({ weightSource: key });

    // Observe.
    const sourceObject = d.sources.get(key);
    let source: ObservedSource;
    if (sourceObject === undefined) source = { state: 'missing' };
    else {
      const parsed = weightSource.safeParse(sourceObject);
      if (parsed.success) {
        const conditions = (sourceObject.status as { conditions?: Condition[] } | undefined)?.conditions;
        source = {
          state: 'ok',
          spec: parsed.data.spec,
          generation: sourceObject.metadata.generation,
          conditions,
        };
      } else {
        source = { state: 'invalid', issues: formatIssues(parsed.error) };
      }
    }
    const podObjects = d.pods.list(
      (p) => p.metadata.namespace === namespace && p.metadata.labels?.[Labels.weightSource] === name,
    );
    let announcedAt = this.#announced.get(key);
    if (announcedAt === undefined) {
      announcedAt = new Map();
      this.#announced.set(key, announcedAt);
    }
    const pods = podObjects.map((p) => this.#observePod(p, now, announcedAt));
    const transferObjects = d.transfers.list(
      (t) => t.metadata.namespace === namespace && t.metadata.labels?.[Labels.transferSource] === name,
    );
    const transfers: ObservedTransfer[] = transferObjects.map((t) => ({
      name: t.metadata.name,
      spec: t.spec as WeightTransferSpec,
      status: t.status as WeightTransferStatus | undefined,
      createdAt: parseTime(t.metadata.creationTimestamp) ?? now,
      statusWrittenAt: parseTime(
        (
          t.metadata as { managedFields?: Array<{ manager?: string; subresource?: string; time?: string }> }
        ).managedFields?.find((f) => f.manager === FIELD_MANAGER && f.subresource === 'status')?.time,
      ),
    }));
    let minSeeds = 1;
    for (const id of d.inferenceDeployments.list((o) => o.metadata.namespace === namespace)) {
      const parsed = inferenceDeployment.safeParse(id);
      if (parsed.success && parsed.data.spec.weightSource === name)
        minSeeds = Math.max(minSeeds, parsed.data.spec.minSeeds);
    }
    const live = new Set(pods.map((p) => p.uid));
    for (const uid of announcedAt.keys()) if (!live.has(uid)) announcedAt.delete(uid);
    if (announcedAt.size === 0) this.#announced.delete(key);

    // Plan.
    const plan = planSource({
      namespace,
      sourceName: name,
      source,
      pods,
      transfers,
      now,
      minSeeds,
      retentionMs: d.retentionMs,
    });
    log.debug(
      { create: plan.create.length, statuses: plan.statuses.length, delete: plan.delete.length },
      'planned',
    );

    // Apply.
    await this.#apply(namespace, sourceObject, plan, podObjects, log);

    // Status of the source: one write, then events.
    if (sourceObject !== undefined && plan.source !== undefined) {
      const current = (sourceObject.status ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
      let conditions = current.conditions;
      for (const c of plan.source.conditions) conditions = setCondition(conditions, c, now);
      // Valid again: the Invalid condition goes.
      conditions = conditions?.filter((c) => c.type !== ConditionTypes.Invalid);
      const next = {
        observedGeneration: sourceObject.metadata.generation,
        seeds: plan.source.seeds,
        waitingReceivers: plan.source.waitingReceivers,
        activeTransfers: plan.source.activeTransfers,
        portsInUse: plan.source.portsInUse,
        fingerprints: plan.source.fingerprints,
        conditions,
      };
      const changed =
        current.observedGeneration !== next.observedGeneration ||
        current.seeds !== next.seeds ||
        current.waitingReceivers !== next.waitingReceivers ||
        current.activeTransfers !== next.activeTransfers ||
        current.portsInUse !== next.portsInUse ||
        JSON.stringify(current.fingerprints ?? []) !== JSON.stringify(next.fingerprints) ||
        !sameConditions(current.conditions, conditions);
      if (changed) {
        const written = await d.client.apply(
          { ...WeightSourceRefs.sources, namespace, name, subresource: 'status' },
          { apiVersion: API_VERSION, kind: Kinds.WeightSource, metadata: { name, namespace }, status: next },
          FIELD_MANAGER,
        );
        d.sources.upsert(written);
      }
      const labels = { namespace, weight_source: name };
      d.metrics.seeds.set(labels, plan.source.seeds);
      d.metrics.waitingReceivers.set(labels, plan.source.waitingReceivers);
      d.metrics.activeTransfers.set(labels, plan.source.activeTransfers);
      d.metrics.portsInUse.set(labels, plan.source.portsInUse);
    }
    if (sourceObject === undefined) {
      // A deleted source leaves no stale series behind.
      const labels = { namespace, weight_source: name };
      for (const gauge of [
        d.metrics.seeds,
        d.metrics.waitingReceivers,
        d.metrics.activeTransfers,
        d.metrics.portsInUse,
      ]) {
        gauge.remove(labels);
      }
    }
    if (sourceObject !== undefined && source.state === 'invalid') {
      await this.#markInvalid(sourceObject, source.issues, now);
    }
    // Events only now that the writes succeeded; best effort, in parallel (bounded).
    for (const event of plan.events) d.events.emit(namespace, event);
    for (const t of plan.create) d.metrics.transfersCreated.inc({ source_type: t.spec.source.type });
    for (const f of plan.finished) {
      d.metrics.transfersFinished.inc({ outcome: f.phase, reason: f.reason, source_type: f.source });
    }
    for (const r of plan.newlyReady) d.metrics.timeToWeightsReady.observe({ reason: r.reason }, r.seconds);
    return plan.requeueAfterMs === undefined ? undefined : { requeueAfterMs: plan.requeueAfterMs };
  }

  /** An invalid WeightSource gets Invalid=True naming the fields, and one event per new message. */
  async #markInvalid(sourceObject: KubeObject, issues: string[], now: number): Promise<void> {
    const d = this.#d;
    const namespace = sourceObject.metadata.namespace ?? '';
    const name = sourceObject.metadata.name;
    const current = (sourceObject.status as { conditions?: Condition[] } | undefined)?.conditions;
    const message = issues.join('; ');
    const conditions = setCondition(
      current,
      {
        type: ConditionTypes.Invalid,
        status: 'True',
        reason: Reasons.ValidationFailed,
        message,
        observedGeneration: sourceObject.metadata.generation,
      },
      now,
    );
    if (sameConditions(current, conditions)) return;
    const written = await d.client.apply(
      { ...WeightSourceRefs.sources, namespace, name, subresource: 'status' },
      {
        apiVersion: API_VERSION,
        kind: Kinds.WeightSource,
        metadata: { name, namespace },
        status: { conditions },
      },
      FIELD_MANAGER,
    );
    d.sources.upsert(written);
    d.events.emit(namespace, {
      regarding: { kind: 'WeightSource', name, uid: sourceObject.metadata.uid },
      reason: EventReasons.InvalidResource,
      type: 'Warning',
      action: 'Validate',
      note: message,
    });
  }

  #observePod(pod: PodObject, now: number, announcedAt: Map<string, number>): ObservedPod {
    const conditions = pod.status?.conditions ?? [];
    const weights = conditions.find((c) => c.type === WEIGHTS_READY);
    const ready = conditions.find((c) => c.type === 'Ready');
    const annotations = pod.metadata.annotations ?? {};
    const uid = pod.metadata.uid ?? '';
    const announced =
      (annotations[Annotations.fingerprint] ?? '') !== '' &&
      (annotations[Annotations.agentEndpoint] ?? '') !== '';
    if (announced && !announcedAt.has(uid)) {
      // After a restart, a pod already waiting keeps its place in line (condition time).
      const waitingSince =
        weights?.status === 'False' && weights.reason !== 'WaitingForAgent'
          ? parseTime(weights.lastTransitionTime)
          : undefined;
      announcedAt.set(uid, waitingSince ?? now);
    }
    const nodeName = pod.spec?.nodeName;
    const node = nodeName === undefined ? undefined : this.#d.nodes?.get(nodeName);
    return {
      name: pod.metadata.name,
      uid,
      createdAt: parseTime(pod.metadata.creationTimestamp) ?? now,
      nodeName,
      nodeLabels: node?.metadata.labels ?? {},
      fingerprint: annotations[Annotations.fingerprint],
      agentEndpoint: annotations[Annotations.agentEndpoint],
      verifiedBy: parseWeightsVerified(annotations[Annotations.weightsVerified]),
      weightsLostAt: parseWeightsLost(annotations[Annotations.weightsLost]),
      deleting:
        pod.metadata.deletionTimestamp !== undefined ||
        pod.status?.phase === 'Failed' ||
        pod.status?.phase === 'Succeeded',
      podReady: ready?.status === 'True',
      weightsReady:
        weights === undefined
          ? undefined
          : {
              status: weights.status as 'True' | 'False' | 'Unknown',
              reason: weights.reason,
              message: weights.message,
              since: parseTime(weights.lastTransitionTime),
            },
      role: annotations[Annotations.role],
      deletionCost: annotations[Annotations.podDeletionCost],
      announcedAt: announcedAt.get(uid),
    };
  }

  async #apply(
    namespace: string,
    sourceObject: KubeObject | undefined,
    plan: SourcePlan,
    podObjects: PodObject[],
    log: Logger,
  ): Promise<void> {
    const d = this.#d;
    const now = d.clock.now();
    // Transfers first: a pod's condition says "transfer X in progress" only once X exists.
    const owner = sourceObject?.metadata.uid;
    await forEachLimit(owner === undefined ? [] : plan.create, WRITE_CONCURRENCY, async (t) => {
      const body = {
        apiVersion: API_VERSION,
        kind: Kinds.WeightTransfer,
        metadata: {
          name: t.name,
          namespace,
          labels: { [Labels.transferSource]: t.spec.weightSource, [Labels.managedBy]: 'seedcast' },
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: Kinds.WeightSource,
              name: sourceObject?.metadata.name,
              uid: owner,
            },
          ],
        },
        spec: t.spec,
      };
      try {
        const created = await d.client.create<KubeObject>(
          { ...WeightSourceRefs.transfers, namespace },
          body,
          FIELD_MANAGER,
        );
        d.transfers.upsert(created);
        log.info(
          {
            transfer: t.name,
            source: t.spec.source.seed?.pod ?? 'storage',
            receivers: t.spec.receivers.map((r) => r.pod),
          },
          'transfer created',
        );
      } catch (err) {
        // Already there (a stale cache re-planned it): the name is per receiver and attempt.
        if (!isConflict(err)) throw err;
      }
    });
    // After the creates, the rest is independent: transfer statuses, GC and pods go together.
    const statuses = forEachLimit(plan.statuses, WRITE_CONCURRENCY, async (update) => {
      const written = await d.client.apply(
        { ...WeightSourceRefs.transfers, namespace, name: update.name, subresource: 'status' },
        {
          apiVersion: API_VERSION,
          kind: Kinds.WeightTransfer,
          metadata: { name: update.name, namespace },
          status: update.status,
        },
        FIELD_MANAGER,
      );
      d.transfers.upsert(written);
    });
    const deletes = forEachLimit(plan.delete, WRITE_CONCURRENCY, (name) =>
      d.client.delete({ ...WeightSourceRefs.transfers, namespace, name }),
    );
    const byName = new Map(podObjects.map((p) => [p.metadata.name, p]));
    // Pods are independent of each other: write them in parallel (bounded).
    // Pod writes, most urgent first: weights-ready turning True (readiness latency), then the
    // other conditions, then seed annotations.
    const urgent: Array<() => Promise<void>> = [];
    const rest: Array<() => Promise<void>> = [];
    const annotationWrites: Array<() => Promise<void>> = [];
    for (const decision of plan.pods) {
      const pod = byName.get(decision.pod);
      if (pod === undefined || pod.metadata.uid !== decision.uid) continue;
      const current = pod.status?.conditions as Condition[] | undefined;
      const existing = current?.find((c) => c.type === WEIGHTS_READY);
      const desired = decision.condition;
      // While a pod waits, its message (batching, seeds busy…) alone is not worth a write per pod.
      const messageMatters = !QUIET_REASONS.has(desired.reason);
      if (
        existing === undefined ||
        existing.status !== desired.status ||
        existing.reason !== desired.reason ||
        (messageMatters && (existing.message ?? '') !== desired.message)
      ) {
        const next = setCondition(existing === undefined ? [] : [existing], desired, now)[0] as Condition;
        // Invariant 1, checked once more at the last moment: True only with a verified reason.
        if (next.status === 'True' && existing?.status !== 'True' && !VERIFIED_REASONS.has(next.reason)) {
          throw new ValidationError('plan', [
            `pod ${decision.pod}: weights-ready True with reason ${next.reason}`,
          ]);
        }
        (next.status === 'True' ? urgent : rest).push(async () => {
          const written = await this.#applyPod(
            namespace,
            decision.pod,
            decision.uid,
            { status: { conditions: [next] } },
            true,
          );
          if (written !== undefined) d.pods.upsert(written);
        });
      }
      const annotations = pod.metadata.annotations ?? {};
      const wantRole = decision.annotations.role;
      const wantCost = decision.annotations.deletionCost;
      const ownsAnnotations = annotations[Annotations.role] !== undefined;
      if (
        annotations[Annotations.role] !== wantRole ||
        (wantCost !== undefined && annotations[Annotations.podDeletionCost] !== wantCost) ||
        (wantCost === undefined && ownsAnnotations)
      ) {
        const wanted: Record<string, string> = {};
        if (wantRole !== undefined) wanted[Annotations.role] = wantRole;
        if (wantCost !== undefined) wanted[Annotations.podDeletionCost] = wantCost;
        annotationWrites.push(async () => {
          const written = await this.#applyPod(
            namespace,
            decision.pod,
            decision.uid,
            { metadata: { annotations: wanted } },
            false,
          );
          if (written !== undefined) d.pods.upsert(written);
        });
      }
    }
    const podWrites = forEachLimit([...urgent, ...rest, ...annotationWrites], WRITE_CONCURRENCY, (write) =>
      write(),
    );
    const results = await Promise.allSettled([statuses, deletes, podWrites]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async #applyPod(
    namespace: string,
    name: string,
    uid: string,
    body: { metadata?: { annotations: Record<string, string> }; status?: unknown },
    status: boolean,
  ): Promise<PodObject | undefined> {
    try {
      return await this.#d.client.apply<PodObject>(
        { ...Resources.pods, namespace, name, ...(status ? { subresource: 'status' as const } : {}) },
        {
          apiVersion: 'v1',
          kind: 'Pod',
          ...body,
          metadata: { name, namespace, uid, ...(body.metadata ?? {}) },
        },
        FIELD_MANAGER,
      );
    } catch (err) {
      // The pod went away or was replaced under the same name: the next pass sees it.
      if (isNotFound(err) || isConflict(err)) {
        this.#d.logger.debug({ pod: name, err: String(err) }, 'pod write skipped');
        return undefined;
      }
      throw err;
    }
  }
}
