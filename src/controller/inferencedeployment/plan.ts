// InferenceDeployment planner: the owned Deployment to apply and the status to write. Pure.
import {
  API_VERSION,
  ConditionTypes,
  type InferenceDeployment,
  Kinds,
  Labels,
  MANAGED_BY,
  Reasons,
  WEIGHTS_READY,
  type WeightSourceSpec,
} from '../../api/v1alpha1/index.ts';
import type { DesiredCondition } from '../conditions.ts';
import { type GpuSharing, renderAgentInjection } from './inject.ts';

export interface InjectionDefaults {
  image: string;
  agentPort: number;
  gpuSharing: GpuSharing;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  tokenSecret?: string;
  serviceAccountName?: string;
}

export function selectorLabels(name: string): Record<string, string> {
  return { [Labels.inferenceDeployment]: name };
}

export function selectorString(name: string): string {
  return Object.entries(selectorLabels(name))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * The apps/v1 Deployment owned by the InferenceDeployment, as a server-side apply body. `source` is
 * the referenced WeightSource's spec when it exists (its transfer settings reach the agents).
 */
export function renderDeployment(
  id: InferenceDeployment,
  defaults: InjectionDefaults,
  source?: Pick<WeightSourceSpec, 'transfer'>,
): Record<string, unknown> {
  const name = id.metadata.name;
  const template = renderAgentInjection(id.spec.template, {
    weightSource: id.spec.weightSource,
    mode: id.spec.agent.mode,
    image: id.spec.agent.image ?? defaults.image,
    agentPort: defaults.agentPort,
    resources: id.spec.agent.resources ?? defaults.resources,
    gpuSharing: defaults.gpuSharing,
    tokenSecret: defaults.tokenSecret,
    serviceAccountName: defaults.serviceAccountName,
    labels: selectorLabels(name),
    bucketMiB: source?.transfer.bucketMiB,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: id.metadata.namespace,
      labels: {
        ...selectorLabels(name),
        [Labels.weightSource]: id.spec.weightSource,
        [Labels.managedBy]: MANAGED_BY,
      },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: Kinds.InferenceDeployment,
          name,
          uid: id.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas: id.spec.replicas,
      selector: { matchLabels: selectorLabels(name) },
      template,
    },
  };
}

export interface ObservedDeployment {
  generation?: number;
  observedGeneration?: number;
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
}

export interface ObservedMemberPod {
  weightsReady?: { status: string; reason: string };
  seed: boolean;
  deleting: boolean;
}

export interface IdStatusPlan {
  observedGeneration?: number;
  replicas: number;
  readyReplicas: number;
  warmStarts: number;
  coldStarts: number;
  seeds: number;
  selector: string;
  conditions: DesiredCondition[];
}

/** Status from the Deployment and the pods; `sourceFound` says whether spec.weightSource resolves. */
export function planStatus(
  id: InferenceDeployment,
  deployment: ObservedDeployment | undefined,
  pods: readonly ObservedMemberPod[],
  sourceFound: boolean,
): IdStatusPlan {
  const live = pods.filter((p) => !p.deleting);
  const warm = live.filter(
    (p) => p.weightsReady?.status === 'True' && p.weightsReady.reason === Reasons.WeightsVerified,
  );
  const cold = live.filter(
    (p) => p.weightsReady?.status === 'True' && p.weightsReady.reason === Reasons.ColdLoaded,
  );
  const ready = deployment?.readyReplicas ?? 0;
  const desired = id.spec.replicas;
  const settled =
    deployment !== undefined &&
    (deployment.observedGeneration ?? 0) >= (deployment.generation ?? 0) &&
    deployment.updatedReplicas === desired &&
    deployment.replicas === desired &&
    ready === desired;
  const generation = id.metadata.generation;
  const conditions: DesiredCondition[] = [
    ready >= desired
      ? {
          type: ConditionTypes.Available,
          status: 'True',
          reason: Reasons.ReplicasReady,
          message: `${ready}/${desired} ready`,
        }
      : {
          type: ConditionTypes.Available,
          status: 'False',
          reason: Reasons.ReplicasNotReady,
          message: `${ready}/${desired} ready (pods turn Ready once ${WEIGHTS_READY} is True)`,
        },
    settled
      ? {
          type: ConditionTypes.Progressing,
          status: 'False',
          reason: Reasons.Stable,
          message: 'rollout complete',
        }
      : {
          type: ConditionTypes.Progressing,
          status: 'True',
          reason: Reasons.Scaling,
          message: `${deployment?.updatedReplicas ?? 0} updated, ${ready} ready of ${desired}`,
        },
    sourceFound
      ? {
          type: ConditionTypes.WeightSourceResolved,
          status: 'True',
          reason: Reasons.WeightSourceFound,
          message: `WeightSource ${id.spec.weightSource}`,
        }
      : {
          type: ConditionTypes.WeightSourceResolved,
          status: 'False',
          reason: Reasons.WeightSourceMissing,
          message: `spec.weightSource: WeightSource ${id.metadata.namespace}/${id.spec.weightSource} not found`,
        },
  ];
  for (const c of conditions) c.observedGeneration = generation;
  return {
    observedGeneration: generation,
    replicas: deployment?.replicas ?? 0,
    readyReplicas: ready,
    warmStarts: warm.length,
    coldStarts: cold.length,
    seeds: live.filter((p) => p.seed).length,
    selector: selectorString(id.metadata.name),
    conditions,
  };
}
