// Renders the pod contract of DESIGN.md onto an engine pod template: the agent (native sidecar
// or in-container), the weights-ready readiness gate, the WeightSource label, the shared emptyDirs
// for the bridge socket and (memory-backed) the staging slots, and downward-API identity. Pure and standalone so
// `seedcast inject` can render the same pod for StatefulSets, LeaderWorkerSets and plain YAML.
import { type AgentMode, Labels, type PodTemplate, WEIGHTS_READY } from '../../api/v1alpha1/index.ts';
import { ValidationError } from '../../shared/errors.ts';

export const AGENT_CONTAINER = 'seedcast-agent';
export const AGENT_INSTALL_CONTAINER = 'seedcast-agent-install';
export const RUN_VOLUME = 'seedcast-run';
export const RUN_DIR = '/var/run/seedcast';
/**
 * The host staging slots (`SEEDCAST_STAGING_DIR`) on their own memory-backed emptyDir (tmpfs):
 * the agent and a host-memory engine map the slot files, so on a disk-backed volume every bucket
 * would fault in file pages and be written back to the node's disk (perf, the dev cluster's
 * 16-replica scale-out: 44 % of a receiver agent's CPU). Its pages count toward the pod's memory: 2 slots of
 * `bucketBytes` per engine rank with host staging (GPU engines stage in GPU memory instead).
 */
export const STAGING_VOLUME = 'seedcast-staging';
export const STAGING_DIR = `${RUN_DIR}/staging`;
export const TOKEN_VOLUME = 'seedcast-token';
export const TOKEN_DIR = '/var/run/secrets/seedcast';
/** Where the in-container mode's init container puts the agent distribution. */
export const AGENT_DIST_DIR = `${RUN_DIR}/dist`;

/** Environment the agent (and the engine shim) read; the agent parses these once at start. */
export const AgentEnv = {
  podName: 'SEEDCAST_POD_NAME',
  podNamespace: 'SEEDCAST_POD_NAMESPACE',
  podUid: 'SEEDCAST_POD_UID',
  podIp: 'SEEDCAST_POD_IP',
  weightSource: 'SEEDCAST_WEIGHT_SOURCE',
  socket: 'SEEDCAST_SOCKET',
  stagingDir: 'SEEDCAST_STAGING_DIR',
  agentPort: 'SEEDCAST_AGENT_PORT',
  tokenFile: 'SEEDCAST_TOKEN_FILE',
  bucketBytes: 'SEEDCAST_BUCKET_BYTES',
} as const;

export type GpuSharing = 'EnvVar' | 'DRA';

export interface AgentInjectionOptions {
  weightSource: string;
  mode: AgentMode;
  image: string;
  agentPort: number;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  gpuSharing?: GpuSharing;
  /** Secret holding the pod-to-pod token (key `token`), mounted read-only into the agent. */
  tokenSecret?: string;
  /** ServiceAccount for the pod when the template names none. */
  serviceAccountName?: string;
  /** Extra labels for the pod (e.g. the InferenceDeployment's). */
  labels?: Record<string, string>;
  /** The WeightSource's `transfer.bucketMiB`: equal on every agent of the source. */
  bucketMiB?: number;
}

type Json = Record<string, unknown>;
type Container = Json & {
  name: string;
  env?: Json[];
  volumeMounts?: Json[];
  command?: string[];
  args?: string[];
};

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });

function agentEnv(options: AgentInjectionOptions): Json[] {
  const env: Json[] = [
    fieldEnv(AgentEnv.podName, 'metadata.name'),
    fieldEnv(AgentEnv.podNamespace, 'metadata.namespace'),
    fieldEnv(AgentEnv.podUid, 'metadata.uid'),
    fieldEnv(AgentEnv.podIp, 'status.podIP'),
    { name: AgentEnv.weightSource, value: options.weightSource },
    { name: AgentEnv.socket, value: `${RUN_DIR}/agent.sock` },
    { name: AgentEnv.stagingDir, value: STAGING_DIR },
    { name: AgentEnv.agentPort, value: String(options.agentPort) },
  ];
  if (options.tokenSecret !== undefined) env.push({ name: AgentEnv.tokenFile, value: `${TOKEN_DIR}/token` });
  if (options.bucketMiB !== undefined)
    env.push({ name: AgentEnv.bucketBytes, value: `${options.bucketMiB}Mi` });
  return env;
}

/** Appends `added` to `existing`, replacing entries of the same name (lists keyed by name in SSA). */
function mergeByName(existing: Json[] | undefined, added: Json[]): Json[] {
  const byName = new Map<unknown, Json>();
  for (const e of [...(existing ?? []), ...added]) {
    byName.delete(e.name);
    byName.set(e.name, e);
  }
  return [...byName.values()];
}

/**
 * Returns a new template with the agent injected. Throws a ValidationError naming the template
 * field when the template cannot take it (e.g. in-container mode without an explicit command).
 */
export function renderAgentInjection(template: PodTemplate, options: AgentInjectionOptions): PodTemplate {
  const copy = structuredClone(template) as PodTemplate & { spec: Json & { containers: Container[] } };
  const spec = copy.spec as Json & {
    containers: Container[];
    initContainers?: Container[];
    volumes?: Json[];
    readinessGates?: Json[];
    serviceAccountName?: string;
  };
  const engine = spec.containers[0];
  if (engine === undefined)
    throw new ValidationError('template', ['spec.template.spec.containers: at least one container']);
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    if (c.name === AGENT_CONTAINER || c.name === AGENT_INSTALL_CONTAINER) {
      throw new ValidationError('template', [
        `spec.template.spec: container name ${c.name} is reserved for seedcast`,
      ]);
    }
  }
  const runMount = { name: RUN_VOLUME, mountPath: RUN_DIR };
  const stagingMount = { name: STAGING_VOLUME, mountPath: STAGING_DIR };
  const tokenMount = { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true };
  const env = agentEnv(options);
  const resources = options.resources ?? {};

  copy.metadata = {
    ...(copy.metadata ?? {}),
    labels: {
      ...(copy.metadata?.labels ?? {}),
      ...(options.labels ?? {}),
      [Labels.weightSource]: options.weightSource,
    },
  };
  spec.volumes = mergeByName(spec.volumes, [
    { name: RUN_VOLUME, emptyDir: {} },
    { name: STAGING_VOLUME, emptyDir: { medium: 'Memory' } },
    ...(options.tokenSecret === undefined
      ? []
      : [{ name: TOKEN_VOLUME, secret: { secretName: options.tokenSecret } }]),
  ]);
  const gates = (spec.readinessGates ?? []).filter((g) => g.conditionType !== WEIGHTS_READY);
  spec.readinessGates = [...gates, { conditionType: WEIGHTS_READY }];
  if (spec.serviceAccountName === undefined && options.serviceAccountName !== undefined) {
    spec.serviceAccountName = options.serviceAccountName;
  }
  const engineEnv = [
    { name: AgentEnv.socket, value: `${RUN_DIR}/agent.sock` },
    { name: AgentEnv.stagingDir, value: STAGING_DIR },
  ];
  const agentMounts = [runMount, stagingMount, ...(options.tokenSecret === undefined ? [] : [tokenMount])];

  if (options.mode === 'Sidecar') {
    const agent: Container = {
      name: AGENT_CONTAINER,
      image: options.image,
      restartPolicy: 'Always',
      command: ['seedcast', 'agent'],
      env,
      ports: [{ name: 'seedcast-agent', containerPort: options.agentPort, protocol: 'TCP' }],
      volumeMounts: agentMounts,
      resources,
    };
    if (options.gpuSharing === 'DRA') {
      const claims = (engine.resources as Json | undefined)?.claims;
      if (claims !== undefined) agent.resources = { ...resources, claims };
    } else {
      // Device-plugin env strategy: the agent asks for the same devices as the engine by env.
      const visible = (engine.env ?? []).find((e) => e.name === 'NVIDIA_VISIBLE_DEVICES');
      if (visible !== undefined) agent.env = [...env, visible];
    }
    spec.initContainers = [agent, ...(spec.initContainers ?? [])];
    engine.env = mergeByName(engine.env, engineEnv);
    engine.volumeMounts = mergeByName(engine.volumeMounts, [runMount, stagingMount]);
    return copy;
  }

  // InContainer: copy the agent into the shared volume, then run the engine under it.
  if (engine.command === undefined || engine.command.length === 0) {
    throw new ValidationError('template', [
      'spec.template.spec.containers[0].command: required with agent.mode InContainer (the command is wrapped by the agent)',
    ]);
  }
  const install: Container = {
    name: AGENT_INSTALL_CONTAINER,
    image: options.image,
    command: ['seedcast', 'agent', 'install', '--dest', AGENT_DIST_DIR],
    volumeMounts: [runMount],
    resources: { requests: { cpu: '50m', memory: '64Mi' } },
  };
  spec.initContainers = [install, ...(spec.initContainers ?? [])];
  engine.command = [
    `${AGENT_DIST_DIR}/bin/seedcast`,
    'agent',
    '--exec',
    '--',
    ...engine.command,
    ...(engine.args ?? []),
  ];
  delete engine.args;
  engine.env = mergeByName(engine.env, [...env, ...engineEnv]);
  engine.volumeMounts = mergeByName(engine.volumeMounts, agentMounts);
  const ports = (engine.ports as Json[] | undefined) ?? [];
  if (!ports.some((p) => p.containerPort === options.agentPort)) {
    engine.ports = [...ports, { name: 'seedcast-agent', containerPort: options.agentPort, protocol: 'TCP' }];
  }
  return copy;
}
