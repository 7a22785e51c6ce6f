// The Helm chart without a cluster: `helm lint`, `helm template` with default and non-default
// values (checked against values.schema.json by helm itself), bad values rejected with a clear
// message, least-privilege RBAC, pod security, NetworkPolicy and config/ drift.
// Needs only the helm binary (test/cluster/build.sh helm); skipped with a reason without it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { Labels } from '../../src/api/v1alpha1/names.ts';

const ROOT = join(import.meta.dirname, '../..');
const CHART = join(ROOT, 'charts/seedcast');
const FULL_VALUES = join(CHART, 'ci/full-values.yaml');

function findHelm(): string | undefined {
  if (process.env.SEEDCAST_HELM) return process.env.SEEDCAST_HELM;
  const versions = readFileSync(join(ROOT, 'test/cluster/versions.env'), 'utf8');
  const version = /^HELM_VERSION=(\S+)/m.exec(versions)?.[1];
  const cache = process.env.SEEDCAST_CACHE || join(homedir(), '.cache', 'seedcast');
  const cached = join(cache, 'bin', `helm-${version}`);
  if (existsSync(cached)) return cached;
  const onPath = spawnSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' }).stdout.trim();
  return onPath === '' ? undefined : onPath;
}

const HELM = findHelm();
const skip = HELM === undefined ? 'no helm binary (bash test/cluster/build.sh helm)' : false;

function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(HELM!, args, { encoding: 'utf8', cwd: ROOT });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
  [key: string]: any;
}

function template(args: string[] = []): Obj[] {
  const r = helm(['template', 'seedcast', CHART, '--namespace', 'seedcast-system', ...args]);
  assert.equal(r.code, 0, r.stderr);
  // Duplicate keys would be silently merged by kubectl: refuse them here.
  return YAML.parseAllDocuments(r.stdout, { uniqueKeys: true })
    .map((d) => {
      assert.deepEqual(d.errors, [], String(d.errors));
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

const find = (objs: Obj[], kind: string, name?: string, namespace?: string): Obj[] =>
  objs.filter(
    (o) =>
      o.kind === kind &&
      (name === undefined || o.metadata.name === name) &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );

const one = (objs: Obj[], kind: string, name?: string, namespace?: string): Obj => {
  const found = find(objs, kind, name, namespace);
  assert.equal(found.length, 1, `exactly one ${kind} ${namespace ?? ''}/${name ?? ''}`);
  return found[0]!;
};

/** RBAC rules as sorted "group/resource[:names]=verb,verb" lines, for exact comparison. */
function ruleLines(role: Obj): string[] {
  const lines: string[] = [];
  for (const rule of role.rules as Array<{
    apiGroups: string[];
    resources: string[];
    verbs: string[];
    resourceNames?: string[];
  }>) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        const names = rule.resourceNames ? `:${rule.resourceNames.join('|')}` : '';
        lines.push(`${group || 'core'}/${resource}${names}=${[...rule.verbs].sort().join(',')}`);
      }
    }
  }
  return lines.sort();
}

describe('helm chart', { skip }, () => {
  it('passes helm lint --strict with default and with every non-default value', () => {
    for (const args of [[], ['-f', FULL_VALUES]]) {
      const r = helm(['lint', '--strict', CHART, ...args]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    }
  });

  it('renders the controller with leader election, probes and a restricted pod security context', () => {
    const objs = template();
    const deployment = one(objs, 'Deployment', 'seedcast-controller', 'seedcast-system');
    const pod = deployment.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'seedcast-controller');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    const [controller] = pod.containers;
    assert.deepEqual(controller.args, ['controller']);
    const env = Object.fromEntries(
      (controller.env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]),
    );
    assert.equal(env.SEEDCAST_LEADER_ELECT, 'true');
    assert.equal(env.SEEDCAST_LEASE_NAME, 'seedcast-controller');
    assert.equal(env.SEEDCAST_AGENT_MODE, 'Sidecar');
    assert.equal(env.SEEDCAST_AGENT_IMAGE, 'ghcr.io/seedcast/seedcast:0.1.0');
    assert.equal(controller.livenessProbe.httpGet.path, '/healthz');
    assert.equal(controller.readinessProbe.httpGet.path, '/readyz');
    assert.ok(controller.resources.requests.cpu && controller.resources.limits.memory);
    assert.deepEqual(controller.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const pdb = one(objs, 'PodDisruptionBudget', 'seedcast-controller', 'seedcast-system');
    assert.deepEqual(pdb.spec, { maxUnavailable: 1, selector: deployment.spec.selector });
    assert.equal(find(template(['--set', 'controller.replicas=1']), 'PodDisruptionBudget').length, 0);
    // Pod labels include the selector (else the Deployment is rejected).
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) {
      assert.equal(deployment.spec.template.metadata.labels[k], v);
    }
  });

  it('gives the controller exactly the verbs it needs, and no access to Secrets', () => {
    const objs = template();
    assert.deepEqual(ruleLines(one(objs, 'ClusterRole', 'seedcast-controller')), [
      'apps/deployments=create,delete,get,list,patch,watch',
      'core/events=create,patch',
      'core/pods/status=patch',
      'core/pods=get,list,patch,watch',
      'events.k8s.io/events=create,patch',
      'seedcast.dev/inferencedeployments/finalizers=update',
      'seedcast.dev/inferencedeployments/status=get,patch',
      'seedcast.dev/inferencedeployments=get,list,watch',
      'seedcast.dev/weightsources/finalizers=update',
      'seedcast.dev/weightsources/status=get,patch',
      'seedcast.dev/weightsources=get,list,watch',
      'seedcast.dev/weighttransfers/status=get,patch',
      'seedcast.dev/weighttransfers=create,delete,get,list,patch,watch',
    ]);
    // Leases only in its own namespace, only its own lease beyond create.
    const leases = one(objs, 'Role', 'seedcast-controller-leader-election', 'seedcast-system');
    assert.deepEqual(ruleLines(leases), [
      'coordination.k8s.io/leases:seedcast-controller=get,patch,update',
      'coordination.k8s.io/leases=create',
    ]);
    assert.deepEqual(ruleLines(one(objs, 'ClusterRole', 'seedcast-controller-nodes')), [
      'core/nodes=get,list,watch',
    ]);
    for (const name of ['seedcast-controller', 'seedcast-controller-nodes']) {
      const binding = one(objs, 'ClusterRoleBinding', name);
      assert.deepEqual(binding.subjects, [
        { kind: 'ServiceAccount', name: 'seedcast-controller', namespace: 'seedcast-system' },
      ]);
    }
    for (const role of [...find(objs, 'ClusterRole'), ...find(objs, 'Role')]) {
      for (const line of ruleLines(role)) {
        assert.ok(!line.startsWith('core/secrets'), `${role.metadata.name} grants ${line}`);
        assert.ok(!line.includes('*'), `${role.metadata.name} grants a wildcard: ${line}`);
      }
    }
  });

  it('binds the controller to one namespace with controller.watchNamespace', () => {
    const objs = template(['--set', 'controller.watchNamespace=default']);
    assert.equal(find(objs, 'ClusterRoleBinding', 'seedcast-controller').length, 0);
    const binding = one(objs, 'RoleBinding', 'seedcast-controller', 'default');
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'seedcast-controller',
    });
    // Node labels (topology) stay readable: nodes are cluster-scoped.
    one(objs, 'ClusterRoleBinding', 'seedcast-controller-nodes');
    const [controller] = one(objs, 'Deployment').spec.template.spec.containers;
    assert.ok(
      controller.env.some(
        (e: { name: string; value?: string }) =>
          e.name === 'SEEDCAST_WATCH_NAMESPACE' && e.value === 'default',
      ),
    );
  });

  it('gives the agent exactly the agent-contract verbs, namespaced, in every listed namespace', () => {
    const objs = template(['-f', FULL_VALUES]);
    for (const ns of ['team-a', 'team-b']) {
      assert.deepEqual(ruleLines(one(objs, 'Role', 'sc-agent', ns)), [
        'core/pods=get,patch',
        'seedcast.dev/weighttransfers/status=patch',
        'seedcast.dev/weighttransfers=get,list,watch',
      ]);
      const sa = one(objs, 'ServiceAccount', 'inference-agent', ns);
      assert.equal(sa.automountServiceAccountToken, true);
      const binding = one(objs, 'RoleBinding', 'sc-agent', ns);
      assert.deepEqual(binding.subjects, [
        { kind: 'ServiceAccount', name: 'inference-agent', namespace: ns },
      ]);
      const secret = one(objs, 'Secret', 'inference-peer-token', ns);
      assert.ok(Buffer.from(secret.data.token, 'base64').length >= 48);
    }
    // No ClusterRole or ClusterRoleBinding names the agent.
    for (const b of find(objs, 'ClusterRoleBinding')) {
      assert.ok(!JSON.stringify(b.subjects).includes('inference-agent'));
    }
    // Two namespaces get two different tokens.
    const tokens = find(objs, 'Secret').map((s) => s.data.token);
    assert.equal(new Set(tokens).size, tokens.length);
  });

  it('opens the agent port and rendezvous range only between pods of the same WeightSource', () => {
    const objs = template(['-f', FULL_VALUES]);
    const llama = one(objs, 'NetworkPolicy', 'sc-llama-70b', 'team-a');
    const selector = { matchLabels: { [Labels.weightSource]: 'llama-70b' } };
    assert.deepEqual(llama.spec.podSelector, selector);
    assert.deepEqual(llama.spec.policyTypes, ['Ingress']);
    assert.deepEqual(llama.spec.ingress[0], {
      from: [{ podSelector: selector }],
      ports: [
        { protocol: 'TCP', port: 9500 },
        { protocol: 'TCP', port: 40000, endPort: 40031 },
      ],
    });
    // engineIngress is appended as given.
    assert.deepEqual(llama.spec.ingress[1].ports, [{ port: 8000, protocol: 'TCP' }]);
    // peerPorts: All (NCCL over sockets) opens every port, still only between peers.
    const deepseek = one(objs, 'NetworkPolicy', 'sc-deepseek-v3', 'team-b');
    assert.deepEqual(deepseek.spec.ingress[0], {
      from: [{ podSelector: { matchLabels: { [Labels.weightSource]: 'deepseek-v3' } } }],
    });
    // Default values: one policy per namespace between seedcast pods.
    const fallback = one(template(), 'NetworkPolicy', 'seedcast-peers', 'default');
    assert.deepEqual(fallback.spec.podSelector, {
      matchExpressions: [{ key: Labels.weightSource, operator: 'Exists' }],
    });
    assert.deepEqual(fallback.spec.ingress[0].ports[1], { protocol: 'TCP', port: 29500, endPort: 29563 });
  });

  it('narrows the agent to its own pod with a ValidatingAdmissionPolicy', () => {
    const objs = template(['-f', FULL_VALUES]);
    const policy = one(objs, 'ValidatingAdmissionPolicy', 'sc-agent-own-pod');
    assert.deepEqual(policy.spec.matchConstraints.namespaceSelector.matchExpressions[0].values, [
      'team-a',
      'team-b',
    ]);
    assert.match(policy.spec.matchConditions[0].expression, /':inference-agent'$/);
    assert.equal(policy.spec.failurePolicy, 'Fail');
    const binding = one(objs, 'ValidatingAdmissionPolicyBinding', 'sc-agent-own-pod');
    assert.deepEqual(binding.spec, { policyName: 'sc-agent-own-pod', validationActions: ['Deny'] });
    assert.equal(
      find(template(['--set', 'agent.admissionPolicy.enabled=false']), 'ValidatingAdmissionPolicy').length,
      0,
    );
  });

  it('renders the metrics Service, and the ServiceMonitor only when asked', () => {
    const defaults = template();
    assert.equal(one(defaults, 'Service', 'seedcast-controller-metrics').spec.ports[0].port, 8080);
    assert.equal(find(defaults, 'ServiceMonitor').length, 0);
    const full = template(['-f', FULL_VALUES]);
    const monitor = one(full, 'ServiceMonitor', 'sc-controller', 'seedcast-system');
    assert.equal(monitor.spec.endpoints[0].interval, '15s');
    assert.equal(monitor.metadata.labels?.release, 'prometheus');
    const deployment = one(full, 'Deployment', 'sc-controller');
    const [controller] = deployment.spec.template.spec.containers;
    assert.equal(controller.image, 'registry.example.com/ml/seedcast:0.1.0-rc.1');
    const env = Object.fromEntries(
      (controller.env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]),
    );
    assert.match(env.SEEDCAST_AGENT_IMAGE!, /^registry\.example\.com\/ml\/seedcast-agent@sha256:/);
    assert.equal(env.SEEDCAST_AGENT_MODE, 'InContainer');
    assert.equal(env.SEEDCAST_AGENT_GPU_SHARING, 'DRA');
    assert.equal(env.SEEDCAST_LEADER_ELECT, 'false');
    assert.deepEqual(
      find(full, 'ClusterRole').map((r) => r.metadata.name),
      ['sc-controller', 'sc-controller-nodes'],
      'aggregated roles off: only the controller roles',
    );
  });

  it('aggregates seedcast resources into the built-in admin, edit and view roles', () => {
    const objs = template();
    const edit = one(objs, 'ClusterRole', 'seedcast-edit');
    assert.equal(edit.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'], 'true');
    const view = one(objs, 'ClusterRole', 'seedcast-view');
    assert.deepEqual(ruleLines(view), [
      'seedcast.dev/inferencedeployments/scale=get',
      'seedcast.dev/inferencedeployments=get,list,watch',
      'seedcast.dev/weightsources=get,list,watch',
      'seedcast.dev/weighttransfers=get,list,watch',
    ]);
  });

  const bad: Array<{ name: string; values: string; message: RegExp }> = [
    {
      name: 'an unknown key',
      values: 'controler:\n  replicas: 2\n',
      message: /additional properties 'controler' not allowed/,
    },
    {
      name: 'a misspelt mode',
      values: 'agent:\n  mode: sidecar\n',
      message: /\/agent\/mode.*'Sidecar', 'InContainer'/,
    },
    {
      name: 'a string for a boolean',
      values: 'networkPolicy:\n  enabled: "yes"\n',
      message: /\/networkPolicy\/enabled.*want boolean/,
    },
    {
      name: 'a bad namespace name',
      values: 'namespaces: [Team_A]\n',
      message: /\/namespaces\/0.*does not match pattern/,
    },
    { name: 'no namespace', values: 'namespaces: []\n', message: /'\/namespaces': minItems: got 0, want 1/ },
    { name: 'a port out of range', values: 'agent:\n  port: 70000\n', message: /\/agent\/port.*maximum/ },
    {
      name: 'a rendezvous range past 65535',
      values: 'networkPolicy:\n  ports: {start: 65500, count: 64}\n',
      message: /the range 65500\.\.65563 must end at or below port 65535/,
    },
    {
      name: 'a WeightSource in a namespace without agents',
      values: 'networkPolicy:\n  weightSources: [{name: a, namespace: elsewhere}]\n',
      message: /namespace "elsewhere" is not in `namespaces`/,
    },
    {
      name: 'two controllers without leader election',
      values: 'controller:\n  replicas: 2\n  leaderElection: {enabled: false}\n',
      message: /controller\.replicas is 2 but controller\.leaderElection\.enabled is false/,
    },
    {
      name: 'a watched namespace without agents',
      values: 'controller:\n  watchNamespace: elsewhere\n',
      message: /controller\.watchNamespace "elsewhere" must be one of `namespaces` \(default\)/,
    },
    {
      name: 'a ServiceMonitor without the Service',
      values: 'metrics:\n  service: {enabled: false}\n  serviceMonitor: {enabled: true}\n',
      message: /serviceMonitor\.enabled needs metrics\.service\.enabled/,
    },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'seedcast-chart-'));
  for (const { name, values, message } of bad) {
    it(`rejects ${name} with a clear message`, () => {
      const file = join(dir, `${name.replaceAll(/\W+/g, '-')}.yaml`);
      writeFileSync(file, values);
      const r = helm(['template', 'seedcast', CHART, '-f', file]);
      assert.notEqual(r.code, 0, `accepted:\n${values}`);
      assert.match(r.stderr, message);
    });
  }

  it('keeps config/seedcast.yaml in sync with the chart (bash config/render.sh)', () => {
    const r = spawnSync('bash', [join(ROOT, 'config/render.sh'), '--check'], {
      encoding: 'utf8',
      env: { ...process.env, SEEDCAST_HELM: HELM },
    });
    assert.equal(r.status, 0, r.stderr);
    const objs = YAML.parseAllDocuments(readFileSync(join(ROOT, 'config/seedcast.yaml'), 'utf8'))
      .map((d) => d.toJS() as Obj | null)
      .filter((o): o is Obj => o !== null);
    assert.equal(find(objs, 'Secret').length, 0, 'no token may be committed to git');
    assert.equal(one(objs, 'Namespace', 'seedcast-system').kind, 'Namespace');
  });

  it('ships its CRDs exactly as npm run gen renders them', () => {
    const shown = execFileSync(HELM!, ['show', 'crds', CHART], { encoding: 'utf8' });
    assert.equal(shown.match(/^kind: CustomResourceDefinition$/gm)?.length, 3);
    for (const file of readdirSync(join(ROOT, 'crds'))) {
      assert.equal(
        readFileSync(join(CHART, 'crds', file), 'utf8'),
        readFileSync(join(ROOT, 'crds', file), 'utf8'),
        `charts/seedcast/crds/${file} differs from crds/${file} (npm run gen)`,
      );
    }
  });
});
