import { z } from 'zod';
import { conditions, objectMeta, objectName, resourceRequirements } from './common.ts';
import { API_VERSION, Kinds } from './names.ts';

export const AGENT_MODES = ['Sidecar', 'InContainer'] as const;
export type AgentMode = (typeof AGENT_MODES)[number];

// The engine pod template is kept open (any PodSpec field passes to the Deployment) but the
// parts the controller relies on are typed so the API server rejects a template without them.
const container = z.looseObject({
  name: z.string().min(1).max(63),
  image: z.string().min(1).optional(),
});

export const podTemplate = z
  .looseObject({
    metadata: z
      .looseObject({
        labels: z.record(z.string(), z.string()).optional(),
        annotations: z.record(z.string(), z.string()).optional(),
      })
      .optional(),
    spec: z.looseObject({
      containers: z.array(container).min(1).describe('The engine container first.'),
      initContainers: z.array(container).optional(),
    }),
  })
  .describe('The engine pod (a PodTemplateSpec). The controller adds the agent, gate, label and volumes.');
export type PodTemplate = z.infer<typeof podTemplate>;

export const agentSpec = z.object({
  mode: z
    .enum(AGENT_MODES)
    .default('Sidecar')
    .describe(
      'Sidecar: native sidecar sharing the GPUs. InContainer: agent runs inside the engine container.',
    ),
  image: z.string().min(1).optional().describe('Agent image; defaults to the controller-configured image.'),
  resources: resourceRequirements.optional(),
});

export const inferenceDeploymentSpec = z.object({
  replicas: z
    .number()
    .int()
    .min(0)
    .max(10000)
    .default(1)
    .describe('Desired replicas; HPA drives it through /scale.'),
  weightSource: objectName.describe('Name of the WeightSource (same namespace) these replicas load.'),
  minSeeds: z.number().int().min(0).max(1000).default(1).describe('Seeds kept on scale-in.'),
  agent: agentSpec.default({ mode: 'Sidecar' }),
  template: podTemplate,
});
export type InferenceDeploymentSpec = z.infer<typeof inferenceDeploymentSpec>;

export const inferenceDeploymentStatus = z.object({
  observedGeneration: z.number().int().nonnegative().optional(),
  replicas: z.number().int().nonnegative().default(0),
  readyReplicas: z.number().int().nonnegative().default(0),
  warmStarts: z.number().int().nonnegative().default(0).describe('Pods that got their weights from a seed.'),
  coldStarts: z.number().int().nonnegative().default(0).describe('Pods that loaded from storage.'),
  seeds: z.number().int().nonnegative().default(0),
  selector: z.string().default('').describe('Label selector of the pods, for HPA.'),
  conditions: conditions.optional(),
});
export type InferenceDeploymentStatus = z.infer<typeof inferenceDeploymentStatus>;

export const inferenceDeployment = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(Kinds.InferenceDeployment),
  metadata: objectMeta,
  spec: inferenceDeploymentSpec,
  status: inferenceDeploymentStatus.optional(),
});
export type InferenceDeployment = z.infer<typeof inferenceDeployment>;
