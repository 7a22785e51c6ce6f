// KWOK plays the kubelet of the fake GPU nodes. Its behaviour is entirely the Stages below (ours,
// not KWOK's stock ones, which mark every readiness gate True themselves): a scheduled pod becomes
// Running with its containers ready, but the pod's Ready condition follows spec.readinessGates —
// True only while every gate condition is True, False again when one goes False — the way the
// real kubelet computes it. Pod IPs come from a loopback range so local processes standing in for
// a pod's containers (the e2e pod runner) can bind them.
import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { GROUP } from '../api/v1alpha1/names.ts';

/** Annotation KWOK selects the nodes it manages by. */
export const FAKE_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
export const FAKE_NODE_SELECTOR = `${FAKE_NODE_ANNOTATION}=fake`;
/**
 * Pod IPs: all of 127/8 is local on Linux, so a pod IP from there is bindable by a local process
 * without any setup. Each cluster takes its own 127.X.0.0/16, X derived from its state directory,
 * so clusters side by side (parallel test files) hand out distinct pod IPs.
 */
export function podCidrFor(dir: string): string {
  const hash = createHash('sha256').update(dir).digest();
  return `127.${64 + (hash[0]! % 160)}.0.0/16`;
}

export function isLoopbackCidr(cidr: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}\/(8|9|1\d|2[0-4])$/.test(cidr);
}
export const GPU_RESOURCE = 'nvidia.com/gpu';
export const NodeLabels = {
  hostname: 'kubernetes.io/hostname',
  zone: 'topology.kubernetes.io/zone',
  nvlinkDomain: `${GROUP}/nvlink-domain`,
} as const;

interface Stage {
  apiVersion: 'kwok.x-k8s.io/v1alpha1';
  kind: 'Stage';
  metadata: { name: string };
  spec: Record<string, unknown>;
}

const stage = (name: string, spec: Record<string, unknown>): Stage => ({
  apiVersion: 'kwok.x-k8s.io/v1alpha1',
  kind: 'Stage',
  metadata: { name },
  spec,
});

const notDeleting = { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' };

/**
 * Go template (KWOK renders statusTemplate with the object as data) for the Ready condition:
 * the first readiness gate whose condition is not True makes the pod not Ready. Containers are
 * always ready here, so the gates decide.
 */
const READY_CONDITION = `
{{ $conds := .status.conditions }}
{{ $waiting := "" }}
{{ range .spec.readinessGates }}
  {{ $gate := .conditionType }}
  {{ $ok := false }}
  {{ range $conds }}{{ if and (eq .type $gate) (eq .status "True") }}{{ $ok = true }}{{ end }}{{ end }}
  {{ if and (not $ok) (eq $waiting "") }}{{ $waiting = $gate }}{{ end }}
{{ end }}
- type: Ready
  lastTransitionTime: {{ $now | Quote }}
  {{ if eq $waiting "" }}
  status: "True"
  reason: ""
  message: ""
  {{ else }}
  status: "False"
  reason: ReadinessGatesNotReady
  message: {{ printf "readiness gate %q is not True" $waiting | Quote }}
  {{ end }}
`;

/**
 * jq: true when the Ready condition disagrees with the readiness gates (all gate conditions True
 * ⇔ Ready True). KWOK compares the boolean result as the string "true".
 */
const READY_MISMATCH =
  '([.spec.readinessGates[]?.conditionType] - [.status.conditions[]? | select(.status == "True") | .type] | length == 0)' +
  ' != ([.status.conditions[]? | select(.type == "Ready" and .status == "True")] | length > 0)';

export function podStages(): Stage[] {
  return [
    stage('seedcast-pod-run', {
      resourceRef: { apiGroup: 'v1', kind: 'Pod' },
      selector: {
        matchExpressions: [
          notDeleting,
          { key: '.spec.nodeName', operator: 'Exists' },
          { key: '.status.phase', operator: 'In', values: ['Pending'] },
        ],
      },
      next: {
        statusTemplate: `{{ $now := Now }}
phase: Running
startTime: {{ $now | Quote }}
conditions:
- type: Initialized
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
${READY_CONDITION}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ with .spec.initContainers }}
initContainerStatuses:
{{ range . }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
`,
      },
    }),
    stage('seedcast-pod-readiness', {
      resourceRef: { apiGroup: 'v1', kind: 'Pod' },
      selector: {
        matchExpressions: [
          notDeleting,
          { key: '.status.phase', operator: 'In', values: ['Running'] },
          { key: READY_MISMATCH, operator: 'In', values: ['true'] },
        ],
      },
      next: { statusTemplate: `{{ $now := Now }}\nconditions:\n${READY_CONDITION}` },
    }),
    // No kubelet to finish a graceful deletion: remove the pod once it is being deleted.
    stage('seedcast-pod-delete', {
      resourceRef: { apiGroup: 'v1', kind: 'Pod' },
      selector: { matchExpressions: [{ key: '.metadata.deletionTimestamp', operator: 'Exists' }] },
      next: { delete: true },
    }),
  ];
}

const NODE_STATUS = `{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with .status.addresses }}
{{ YAML . 1 }}
{{ else }}
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
`;

export function nodeStages(): Stage[] {
  return [
    stage('seedcast-node-initialize', {
      resourceRef: { apiGroup: 'v1', kind: 'Node' },
      selector: {
        matchExpressions: [
          {
            key: '.status.conditions.[] | select( .type == "Ready" ) | .status',
            operator: 'NotIn',
            values: ['True'],
          },
        ],
      },
      next: {
        statusTemplate: `${NODE_STATUS}
{{ $kwokVersion := printf "kwok-%s" Version }}
nodeInfo:
  architecture: amd64
  containerRuntimeVersion: {{ $kwokVersion }}
  kernelVersion: {{ $kwokVersion }}
  kubeletVersion: {{ $kwokVersion }}
  kubeProxyVersion: {{ $kwokVersion }}
  operatingSystem: linux
  osImage: seedcast fake GPU node
  machineID: ""
  bootID: ""
  systemUUID: ""
phase: Running
`,
      },
    }),
    // Liveness comes from the node Lease KWOK renews; this only refreshes the conditions now and then.
    stage('seedcast-node-heartbeat', {
      resourceRef: { apiGroup: 'v1', kind: 'Node' },
      selector: {
        matchExpressions: [
          { key: '.status.phase', operator: 'In', values: ['Running'] },
          {
            key: '.status.conditions.[] | select( .type == "Ready" ) | .status',
            operator: 'In',
            values: ['True'],
          },
        ],
      },
      delay: { durationMilliseconds: 600_000, jitterDurationMilliseconds: 610_000 },
      next: { statusTemplate: NODE_STATUS },
    }),
  ];
}

// Simulated resource metrics (opt-in, `up({ metrics: true })`): KWOK serves a kubelet-style
// `/metrics/resource` endpoint per fake node on its own port, the nodes carry the annotation that
// metrics-server (>= 0.7) reads to scrape that path instead of `/metrics/resource`, and each pod's
// CPU and memory come from its annotations — the load knob tests and the demo turn.

/** metrics-server scrapes a node at this path when the node carries the annotation. */
export const RESOURCE_METRICS_PATH_ANNOTATION = 'metrics.k8s.io/resource-metrics-path';
/** One path per node on KWOK's single server port; KWOK fills in `{nodeName}`. */
export const RESOURCE_METRICS_PATH = '/metrics/nodes/{nodeName}/metrics/resource';
export const resourceMetricsPathFor = (node: string): string =>
  RESOURCE_METRICS_PATH.replace('{nodeName}', node);
/**
 * The load knob: a pod's simulated CPU usage (a quantity, e.g. `750m`), charged to its first
 * container. Without it a pod idles at DEFAULT_POD_CPU_USAGE.
 */
export const DEMO_CPU_USAGE_ANNOTATION = `${GROUP}/demo-cpu-usage`;
/** A pod's simulated working set (a quantity, e.g. `512Mi`); default DEFAULT_POD_MEMORY_USAGE. */
export const DEMO_MEMORY_USAGE_ANNOTATION = `${GROUP}/demo-memory-usage`;
// Both must be > 0: metrics-server drops a container whose CPU counter or memory reads 0.
export const DEFAULT_POD_CPU_USAGE = '1m';
export const DEFAULT_POD_MEMORY_USAGE = '64Mi';
/** Other containers of a pod (sidecars) idle here, so the annotation is about the pod. */
const SIDECAR_CPU_USAGE = '1m';
const SIDECAR_MEMORY_USAGE = '16Mi';
/**
 * KWOK's CPU counters start integrating at their first read, which returns 0, and metrics-server
 * drops a pod whose counter reads 0: this offset makes the first scrape count, so a new pod has
 * metrics one scrape earlier (after two, not three). Rates are unaffected.
 */
const FIRST_SAMPLE_CPU_SECONDS = 1e-6;
/** What a fake node uses besides its pods (kubelet, runtime, system daemons). */
const NODE_SYSTEM_CPU_CORES = 0.1;
const NODE_SYSTEM_MEMORY_BYTES = 2 * 1024 ** 3;

interface KwokObject {
  apiVersion: 'kwok.x-k8s.io/v1alpha1';
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

/** CEL: the annotation's quantity for the pod's first container, `fallback` without it. */
function usageFromAnnotation(annotation: string, fallback: string, sidecar: string): string {
  const a = JSON.stringify(annotation);
  return [
    `container.name != pod.spec.containers[0].name ? Quantity(${JSON.stringify(sidecar)})`,
    `: ${a} in pod.metadata.annotations ? Quantity(pod.metadata.annotations[${a}])`,
    `: Quantity(${JSON.stringify(fallback)})`,
  ].join(' ');
}

/**
 * The kubelet `/metrics/resource` series metrics-server decodes (container/pod/node CPU counters
 * in core-seconds, working sets in bytes, container start times), fed by the usage below.
 */
export function resourceMetrics(): KwokObject[] {
  const podLabels = [
    { name: 'namespace', value: 'pod.metadata.namespace' },
    { name: 'pod', value: 'pod.metadata.name' },
  ];
  const containerLabels = [{ name: 'container', value: 'container.name' }, ...podLabels];
  return [
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Metric',
      metadata: { name: 'seedcast-resource-metrics' },
      spec: {
        path: RESOURCE_METRICS_PATH,
        metrics: [
          { name: 'scrape_error', dimension: 'node', kind: 'gauge', help: 'scrape error', value: '0' },
          {
            name: 'container_start_time_seconds',
            dimension: 'container',
            kind: 'gauge',
            help: 'Start time of the container since unix epoch in seconds',
            labels: containerLabels,
            // The pod's creation time in epoch seconds: constant, as metrics-server wants it (a
            // decrease reads as a restart).
            value: 'UnixSecond(pod.metadata.creationTimestamp)',
          },
          {
            name: 'container_cpu_usage_seconds_total',
            dimension: 'container',
            kind: 'counter',
            help: 'Cumulative cpu time consumed by the container in core-seconds',
            labels: containerLabels,
            value: `pod.CumulativeUsage("cpu", container.name) + ${FIRST_SAMPLE_CPU_SECONDS}`,
          },
          {
            name: 'container_memory_working_set_bytes',
            dimension: 'container',
            kind: 'gauge',
            help: 'Current working set of the container in bytes',
            labels: containerLabels,
            value: 'pod.Usage("memory", container.name)',
          },
          {
            name: 'pod_cpu_usage_seconds_total',
            dimension: 'pod',
            kind: 'counter',
            help: 'Cumulative cpu time consumed by the pod in core-seconds',
            labels: podLabels,
            value: `pod.CumulativeUsage("cpu") + ${FIRST_SAMPLE_CPU_SECONDS}`,
          },
          {
            name: 'pod_memory_working_set_bytes',
            dimension: 'pod',
            kind: 'gauge',
            help: 'Current working set of the pod in bytes',
            labels: podLabels,
            value: 'pod.Usage("memory")',
          },
          {
            name: 'node_cpu_usage_seconds_total',
            dimension: 'node',
            kind: 'counter',
            help: 'Cumulative cpu time consumed by the node in core-seconds',
            // Plus a system baseline: metrics-server drops a node whose counter reads 0 (an empty
            // node) and is not ready before it holds some node or pod metrics.
            value: `node.CumulativeUsage("cpu") + node.SinceSecond() * ${NODE_SYSTEM_CPU_CORES}`,
          },
          {
            name: 'node_memory_working_set_bytes',
            dimension: 'node',
            kind: 'gauge',
            help: 'Current working set of the node in bytes',
            value: `node.Usage("memory") + ${NODE_SYSTEM_MEMORY_BYTES}.0`,
          },
        ],
      },
    },
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterResourceUsage',
      metadata: { name: 'seedcast-usage-from-annotations' },
      spec: {
        usages: [
          {
            usage: {
              cpu: {
                expression: usageFromAnnotation(
                  DEMO_CPU_USAGE_ANNOTATION,
                  DEFAULT_POD_CPU_USAGE,
                  SIDECAR_CPU_USAGE,
                ),
              },
              memory: {
                expression: usageFromAnnotation(
                  DEMO_MEMORY_USAGE_ANNOTATION,
                  DEFAULT_POD_MEMORY_USAGE,
                  SIDECAR_MEMORY_USAGE,
                ),
              },
            },
          },
        ],
      },
    },
  ];
}

/** The --config file for kwok: our stages, plus the simulated resource metrics when asked. */
export function kwokConfigYaml(options: { metrics?: boolean } = {}): string {
  const objects: Array<Stage | KwokObject> = [...nodeStages(), ...podStages()];
  if (options.metrics === true) objects.push(...resourceMetrics());
  return objects.map((s) => YAML.stringify(s, { lineWidth: 0 })).join('---\n');
}

export interface FakeNodeOptions {
  count: number;
  gpusPerNode: number;
  /** Nodes per NVLink domain (an NVL72 rack holds 18 8-GPU trays; here small numbers). */
  nodesPerNvlinkDomain?: number;
  zones?: readonly string[];
  /** Annotate the nodes so metrics-server scrapes KWOK's simulated `/metrics/resource`. */
  resourceMetrics?: boolean;
}

/** Node objects (with status) for KWOK to manage: `gpu-node-<i>`, topology labels, GPU capacity. */
export function fakeNodes(options: FakeNodeOptions): Array<Record<string, unknown>> {
  const perDomain = options.nodesPerNvlinkDomain ?? 2;
  const zones = options.zones ?? ['zone-a', 'zone-b'];
  const nodes: Array<Record<string, unknown>> = [];
  for (let i = 0; i < options.count; i++) {
    const name = `gpu-node-${i}`;
    const domain = Math.floor(i / perDomain);
    const resources = {
      cpu: '64',
      memory: '512Gi',
      pods: '110',
      'ephemeral-storage': '1Ti',
      [GPU_RESOURCE]: String(options.gpusPerNode),
    };
    nodes.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: {
          [FAKE_NODE_ANNOTATION]: 'fake',
          'node.alpha.kubernetes.io/ttl': '0',
          ...(options.resourceMetrics === true
            ? { [RESOURCE_METRICS_PATH_ANNOTATION]: resourceMetricsPathFor(name) }
            : {}),
        },
        labels: {
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
          [NodeLabels.hostname]: name,
          [NodeLabels.zone]: zones[domain % zones.length]!,
          [NodeLabels.nvlinkDomain]: `nvl-${domain}`,
        },
      },
      spec: {},
      status: { capacity: resources, allocatable: resources },
    });
  }
  return nodes;
}
