// InferenceDeployment reconciler: observe → render the owned Deployment (plan.ts, pure) → apply it
// with server-side apply → one status write → events. Invalid specs get an Invalid condition and
// an event naming the field; they are not retried until the object changes.
import {
  Annotations,
  API_VERSION,
  type Condition,
  ConditionTypes,
  EventReasons,
  FieldManagers,
  type InferenceDeployment,
  inferenceDeployment,
  Kinds,
  Labels,
  Reasons,
  WEIGHTS_READY,
  weightSource,
} from '../../api/v1alpha1/index.ts';
import { formatIssues } from '../../api/v1alpha1/validate.ts';
import type { Clock } from '../../shared/clock.ts';
import { errorMessage, ValidationError } from '../../shared/errors.ts';
import type { Informer } from '../../shared/informer.ts';
import { type KubeClient, type KubeObject, Resources } from '../../shared/kube.ts';
import type { Logger } from '../../shared/log.ts';
import type { ReconcileResult } from '../../shared/queue.ts';
import { type DesiredCondition, sameConditions, setCondition } from '../conditions.ts';
import type { EventRecorder } from '../events.ts';
import type { PodObject } from '../weightsource/reconciler.ts';
import { WeightSourceRefs } from '../weightsource/reconciler.ts';
import { type InjectionDefaults, type ObservedDeployment, planStatus, renderDeployment } from './plan.ts';

export interface InferenceDeploymentReconcilerDeps {
  client: KubeClient;
  inferenceDeployments: Informer;
  deployments: Informer;
  sources: Informer;
  pods: Informer<PodObject>;
  clock: Clock;
  logger: Logger;
  events: EventRecorder;
  injection: InjectionDefaults;
}

export class InferenceDeploymentReconciler {
  readonly #d: InferenceDeploymentReconcilerDeps;
  /** key → the last Deployment body applied, so an unchanged spec costs no write. */
  readonly #applied = new Map<string, string>();

  constructor(deps: InferenceDeploymentReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const d = this.#d;
    const object = d.inferenceDeployments.get(key);
    if (object === undefined) {
      this.#applied.delete(key);
      return undefined; // the Deployment goes with it (owner reference)
    }
    const parsed = inferenceDeployment.safeParse(object);
    if (!parsed.success) {
      await this.#invalid(object, formatIssues(parsed.error));
      return undefined;
    }
    const id = parsed.data;
    let body: Record<string, unknown>;
    try {
      // The WeightSource's transfer settings reach the agents (bucket size); an invalid or missing
      // source is reported by its own reconciler and by this one's WeightSourceResolved condition.
      const source = weightSource.safeParse(d.sources.get(`${namespace}/${id.spec.weightSource}`));
      body = renderDeployment(id, d.injection, source.success ? source.data.spec : undefined);
    } catch (err) {
      if (err instanceof ValidationError) {
        await this.#invalid(object, [...err.issues]);
        return undefined;
      }
      throw err;
    }
    const text = JSON.stringify(body);
    const deploymentKey = `${namespace}/${name}`;
    if (this.#applied.get(key) !== text || d.deployments.get(deploymentKey) === undefined) {
      const written = await d.client.apply(
        { ...Resources.deployments, namespace, name },
        body,
        FieldManagers.controller,
      );
      d.deployments.upsert(written);
      this.#applied.set(key, text);
      d.logger.info({ inferenceDeployment: key, replicas: id.spec.replicas }, 'deployment applied');
    }
    const deployment = d.deployments.get(deploymentKey) as
      | (KubeObject & { status?: Record<string, number>; spec?: { replicas?: number } })
      | undefined;
    const observed: ObservedDeployment | undefined =
      deployment === undefined
        ? undefined
        : {
            generation: deployment.metadata.generation,
            observedGeneration: deployment.status?.observedGeneration,
            replicas: deployment.status?.replicas ?? 0,
            readyReplicas: deployment.status?.readyReplicas ?? 0,
            updatedReplicas: deployment.status?.updatedReplicas ?? 0,
          };
    const pods = d.pods
      .list(
        (p) => p.metadata.namespace === namespace && p.metadata.labels?.[Labels.inferenceDeployment] === name,
      )
      .map((p) => {
        const weights = p.status?.conditions?.find((c) => c.type === WEIGHTS_READY);
        return {
          weightsReady:
            weights === undefined ? undefined : { status: weights.status, reason: weights.reason },
          seed: p.metadata.annotations?.[Annotations.role] === 'seed',
          deleting: p.metadata.deletionTimestamp !== undefined,
        };
      });
    const sourceFound = d.sources.get(`${namespace}/${id.spec.weightSource}`) !== undefined;
    const status = planStatus(id, observed, pods, sourceFound);
    const conditions = await this.#writeStatus(object, id, status.conditions, {
      observedGeneration: status.observedGeneration,
      replicas: status.replicas,
      readyReplicas: status.readyReplicas,
      warmStarts: status.warmStarts,
      coldStarts: status.coldStarts,
      seeds: status.seeds,
      selector: status.selector,
    });
    const before = (object.status as { conditions?: Condition[] } | undefined)?.conditions;
    const wasMissing =
      before?.find((c) => c.type === ConditionTypes.WeightSourceResolved)?.status === 'False';
    if (!sourceFound && !wasMissing && conditions !== undefined) {
      d.events.emit(namespace, {
        regarding: { kind: 'InferenceDeployment', name, uid: object.metadata.uid },
        reason: EventReasons.WeightSourceMissing,
        type: 'Warning',
        action: 'Resolve',
        note: `spec.weightSource of InferenceDeployment ${name}: WeightSource ${id.spec.weightSource} not found`,
      });
    }
    return undefined;
  }

  async #writeStatus(
    object: KubeObject,
    id: InferenceDeployment | undefined,
    desired: DesiredCondition[],
    fields: Record<string, unknown>,
  ): Promise<Condition[] | undefined> {
    const d = this.#d;
    const now = d.clock.now();
    const current = (object.status ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
    let conditions = current.conditions;
    for (const c of desired) conditions = setCondition(conditions, c, now);
    // A resource that became valid again loses its Invalid condition.
    if (id !== undefined) conditions = conditions?.filter((c) => c.type !== ConditionTypes.Invalid);
    const changed =
      Object.entries(fields).some(([k, v]) => current[k] !== v) ||
      !sameConditions(current.conditions, conditions);
    if (!changed) return undefined;
    const written = await d.client.apply(
      {
        ...WeightSourceRefs.deployments,
        namespace: object.metadata.namespace,
        name: object.metadata.name,
        subresource: 'status',
      },
      {
        apiVersion: API_VERSION,
        kind: Kinds.InferenceDeployment,
        metadata: { name: object.metadata.name, namespace: object.metadata.namespace },
        status: { ...fields, conditions },
      },
      FieldManagers.controller,
    );
    d.inferenceDeployments.upsert(written);
    return conditions;
  }

  async #invalid(object: KubeObject, issues: string[]): Promise<void> {
    const message = issues.join('; ');
    const before = (object.status as { conditions?: Condition[] } | undefined)?.conditions;
    const wasInvalid = before?.find((c) => c.type === ConditionTypes.Invalid);
    const status = (object.status ?? {}) as Record<string, unknown>;
    try {
      await this.#writeStatus(
        object,
        undefined,
        [
          {
            type: ConditionTypes.Invalid,
            status: 'True',
            reason: Reasons.ValidationFailed,
            message,
            observedGeneration: object.metadata.generation,
          },
        ],
        {
          observedGeneration: object.metadata.generation,
          replicas: status.replicas ?? 0,
          readyReplicas: status.readyReplicas ?? 0,
          warmStarts: status.warmStarts ?? 0,
          coldStarts: status.coldStarts ?? 0,
          seeds: status.seeds ?? 0,
          selector: status.selector ?? '',
        },
      );
    } catch (err) {
      this.#d.logger.warn(
        { inferenceDeployment: object.metadata.name, err: errorMessage(err) },
        'invalid status not written',
      );
      return;
    }
    if (wasInvalid?.status !== 'True' || wasInvalid.message !== message) {
      this.#d.events.emit(object.metadata.namespace ?? '', {
        regarding: { kind: 'InferenceDeployment', name: object.metadata.name, uid: object.metadata.uid },
        reason: EventReasons.InvalidResource,
        type: 'Warning',
        action: 'Validate',
        note: message,
      });
    }
  }
}
