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

/** The --config file for kwok: our stages only. */
export function kwokConfigYaml(): string {
  return [...nodeStages(), ...podStages()].map((s) => YAML.stringify(s, { lineWidth: 0 })).join('---\n');
}

export interface FakeNodeOptions {
  count: number;
  gpusPerNode: number;
  /** Nodes per NVLink domain (an NVL72 rack holds 18 8-GPU trays; here small numbers). */
  nodesPerNvlinkDomain?: number;
  zones?: readonly string[];
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
        annotations: { [FAKE_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
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
