// The Helm chart against the real control plane: server-side dry-run of the rendered manifests,
// `helm install` (CRDs Established, controller Deployment available), `kubectl auth can-i` proof
// that the agent and the controller can do exactly what they need, the controller reconciling
// as a local process with the chart's ServiceAccount token, `helm upgrade` keeping the token and
// pruning removed namespaces, and `helm uninstall` leaving nothing but the CRDs.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { Labels, WEIGHTS_READY } from '../../src/api/v1alpha1/names.ts';
import { binaryPath, readVersions } from '../../src/devcluster/binaries.ts';
import { isNotFound } from '../../src/shared/kube.ts';
import {
  createNamespace,
  deleteNamespace,
  useCluster,
  waitFor,
  waitForCondition,
} from '../support/cluster.ts';

const ROOT = join(import.meta.dirname, '../..');
const CHART = join(ROOT, 'charts/seedcast');
const versions = await readVersions();
const HELM = process.env.SEEDCAST_HELM || binaryPath('helm', versions);
const KUBECTL = binaryPath('kubectl', versions);
const missing = [HELM, KUBECTL].filter((b) => !existsSync(b));
const skip =
  missing.length > 0 ? `missing ${missing.join(', ')} (bash test/cluster/build.sh helm kubectl)` : false;

const cluster = useCluster({ nodes: 1 });
const RELEASE = `sc-${process.pid}`;
const FULLNAME = `${RELEASE}-seedcast`;
const CONTROLLER = `${FULLNAME}-controller`;
const AGENT_SA = 'seedcast-agent';
const TOKEN_SECRET = 'seedcast-agent-token';
const helmHome = mkdtempSync(join(tmpdir(), 'seedcast-helm-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], input?: string): Run {
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    input,
    cwd: ROOT,
    env: {
      ...process.env,
      KUBECONFIG: cluster.cluster.kubeconfig,
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
    },
    timeout: 180_000,
  });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

const ok = (r: Run, what: string): string => {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};
const helm = (...args: string[]) => ok(run(HELM, args), `helm ${args.join(' ')}`);
const kubectl = (...args: string[]) => ok(run(KUBECTL, args), `kubectl ${args.join(' ')}`);

/** `kubectl auth can-i` as a ServiceAccount: true for "yes". */
function can(sa: { namespace: string; name: string }, args: string[]): boolean {
  const r = run(KUBECTL, ['auth', 'can-i', ...args, `--as=system:serviceaccount:${sa.namespace}:${sa.name}`]);
  const answer = r.stdout.trim();
  assert.ok(
    answer === 'yes' || answer === 'no',
    `kubectl auth can-i ${args.join(' ')}: ${r.stdout}${r.stderr}`,
  );
  return answer === 'yes';
}

function canList(sa: { namespace: string; name: string }, namespace: string): string[] {
  const out = kubectl(
    'auth',
    'can-i',
    '--list',
    '-n',
    namespace,
    `--as=system:serviceaccount:${sa.namespace}:${sa.name}`,
  );
  const lines: string[] = [];
  for (const line of out.split('\n').slice(1)) {
    const m = /^(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$/.exec(line);
    if (m === null) continue;
    const names = m[3] === '' ? '' : `:${m[3]!.split(' ').sort().join('|')}`;
    lines.push(`${m[1]}${names}=${m[4]!.split(' ').sort().join(',')}`);
  }
  return lines.sort();
}

/** A kubeconfig with the dev cluster's server and CA and nothing but `token` as credentials. */
function tokenKubeconfig(token: string, name: string): string {
  const admin = YAML.parse(readFileSync(cluster.cluster.kubeconfig, 'utf8'));
  const file = join(helmHome, `${name}.kubeconfig`);
  writeFileSync(
    file,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'dev', cluster: admin.clusters[0].cluster }],
      users: [{ name, user: { token } }],
      contexts: [{ name: 'dev', context: { cluster: 'dev', user: name } }],
      'current-context': 'dev',
    }),
  );
  return file;
}

function secretToken(namespace: string): string | undefined {
  const r = run(KUBECTL, ['get', 'secret', TOKEN_SECRET, '-n', namespace, '-o', 'jsonpath={.data.token}']);
  return r.code === 0 ? r.stdout : undefined;
}

describe('the Helm chart on the dev cluster', { skip }, () => {
  let system = '';
  let inference = '';
  let other = '';
  let extra = '';
  before(async () => {
    system = await createNamespace(cluster.client, 'seedcast-system');
    inference = await createNamespace(cluster.client, 'inference');
    other = await createNamespace(cluster.client, 'other');
    extra = await createNamespace(cluster.client, 'extra');
  });
  after(async () => {
    run(HELM, ['uninstall', RELEASE, '-n', system, '--wait']);
    for (const ns of [system, inference, other, extra]) {
      if (ns !== '') await deleteNamespace(cluster.client, ns).catch(() => undefined);
    }
  });

  const agentSa = () => ({ namespace: inference, name: AGENT_SA });
  const controllerSa = () => ({ namespace: system, name: CONTROLLER });
  const installArgs = () => [
    '--namespace',
    system,
    '--set-json',
    `namespaces=${JSON.stringify([inference])}`,
  ];

  test('helm template output passes kubectl apply --dry-run=server (default and non-default values)', () => {
    const defaults = helm('template', RELEASE, CHART, ...installArgs());
    ok(run(KUBECTL, ['apply', '--dry-run=server', '-f', '-'], defaults), 'dry-run of the default values');
    // Every non-default value, pointed at namespaces that exist here (no ServiceMonitor CRD here).
    const full = helm(
      'template',
      RELEASE,
      CHART,
      '-f',
      join(CHART, 'ci/full-values.yaml'),
      '--namespace',
      system,
      '--set-json',
      `namespaces=${JSON.stringify([inference, other])}`,
      '--set-json',
      `networkPolicy.weightSources=${JSON.stringify([
        { name: 'llama-70b', namespace: inference, ports: { start: 40000, count: 32 } },
        { name: 'deepseek-v3', namespace: other, peerPorts: 'All' },
      ])}`,
      '--set',
      'metrics.serviceMonitor.enabled=false',
      '--set',
      'controller.priorityClassName=',
    );
    const out = ok(
      run(KUBECTL, ['apply', '--dry-run=server', '-f', '-'], full),
      'dry-run of ci/full-values.yaml',
    );
    assert.match(out, /networkpolicy\.networking\.k8s\.io\/sc-llama-70b created \(server dry run\)/);
  });

  test('a bad values file is refused before anything reaches the cluster', () => {
    const file = join(helmHome, 'bad-values.yaml');
    writeFileSync(file, 'agent:\n  mode: sidecar\n');
    const r = run(HELM, ['install', `${RELEASE}-bad`, CHART, '-n', system, '-f', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /at '\/agent\/mode': value must be one of 'Sidecar', 'InContainer'/);
    assert.equal(run(HELM, ['status', `${RELEASE}-bad`, '-n', system]).code, 1, 'no release was recorded');
  });

  test('helm install: CRDs Established, controller Deployment available', async () => {
    helm(
      'install',
      RELEASE,
      CHART,
      ...installArgs(),
      '--set',
      'controller.replicas=1',
      '--wait',
      '--timeout',
      '120s',
    );
    for (const plural of ['weightsources', 'inferencedeployments', 'weighttransfers']) {
      await waitForCondition(
        cluster.client,
        {
          group: 'apiextensions.k8s.io',
          version: 'v1',
          plural: 'customresourcedefinitions',
          name: `${plural}.seedcast.dev`,
        },
        'Established',
      );
    }
    const deployment = JSON.parse(kubectl('get', 'deployment', CONTROLLER, '-n', system, '-o', 'json'));
    assert.equal(deployment.status.availableReplicas, 1);
    assert.equal(deployment.spec.template.spec.serviceAccountName, CONTROLLER);
    assert.ok(secretToken(inference), 'token Secret in the inference namespace');
    assert.equal(secretToken(other), undefined, 'no token Secret where no agents run');
  });

  test('the agent ServiceAccount can do exactly what the agent needs', () => {
    const sa = agentSa();
    const ns = ['-n', inference];
    // What the agent contract needs.
    for (const args of [
      ['get', 'pods'],
      ['patch', 'pods'],
      ['get', 'weighttransfers.seedcast.dev'],
      ['list', 'weighttransfers.seedcast.dev'],
      ['watch', 'weighttransfers.seedcast.dev'],
      ['patch', 'weighttransfers.seedcast.dev', '--subresource=status'],
    ]) {
      assert.ok(can(sa, [...args, ...ns]), `agent must be able to ${args.join(' ')}`);
    }
    // Nothing more: no Secrets (not even its own token, which is mounted), no pod lifecycle, no
    // transfer specs, no other kinds, no other namespace, nothing cluster-wide.
    for (const args of [
      ['get', `secrets/${TOKEN_SECRET}`, ...ns],
      ['get', 'secrets', ...ns],
      ['list', 'secrets', ...ns],
      ['list', 'pods', ...ns],
      ['create', 'pods', ...ns],
      ['delete', 'pods', ...ns],
      ['update', 'pods', ...ns],
      ['patch', 'pods', '--subresource=status', ...ns],
      ['create', 'pods', '--subresource=exec', ...ns],
      ['patch', 'weighttransfers.seedcast.dev', ...ns],
      ['create', 'weighttransfers.seedcast.dev', ...ns],
      ['delete', 'weighttransfers.seedcast.dev', ...ns],
      ['get', 'weightsources.seedcast.dev', ...ns],
      ['get', 'inferencedeployments.seedcast.dev', ...ns],
      ['create', 'events', ...ns],
      ['get', 'configmaps', ...ns],
      ['get', 'pods', '-n', other],
      ['patch', 'pods', '-n', other],
      ['list', 'weighttransfers.seedcast.dev', '-n', other],
      ['get', 'secrets', '-n', other],
      ['list', 'pods', '--all-namespaces'],
      ['get', 'nodes'],
    ]) {
      assert.ok(!can(sa, args), `agent must not be able to ${args.join(' ')}`);
    }
    // The whole rule set, as the API server evaluates it, beyond what every authenticated user
    // gets (self reviews, discovery, ...; measured with a ServiceAccount that has no bindings).
    const everyone = (ns: string) => new Set(canList({ namespace: other, name: 'default' }, ns));
    const beyond = (ns: string) => {
      const baseline = everyone(ns);
      return canList(sa, ns).filter((line) => !baseline.has(line));
    };
    assert.deepEqual(beyond(inference), [
      'pods=get,patch',
      'weighttransfers.seedcast.dev/status=patch',
      'weighttransfers.seedcast.dev=get,list,watch',
    ]);
    assert.deepEqual(beyond(other), []);
  });

  test('the admission policy narrows the agent to its own pod and its seedcast.dev/ annotations', async () => {
    const pods = ['agent-a', 'agent-b'].map((name) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: 'x' }, annotations: { team: 'ml' } },
      spec: { serviceAccountName: AGENT_SA, containers: [{ name: 'engine', image: 'engine:1' }] },
    }));
    ok(
      run(KUBECTL, ['apply', '-n', inference, '-f', '-'], pods.map((p) => YAML.stringify(p)).join('---\n')),
      'pods',
    );
    const uid = kubectl('get', 'pod', 'agent-a', '-n', inference, '-o', 'jsonpath={.metadata.uid}');
    // What the kubelet gives the pod: a token bound to it.
    const token = kubectl(
      'create',
      'token',
      AGENT_SA,
      '-n',
      inference,
      '--duration=1h',
      '--bound-object-kind=Pod',
      '--bound-object-name=agent-a',
      `--bound-object-uid=${uid}`,
    ).trim();
    const asAgent = (...args: string[]) =>
      run(KUBECTL, ['--kubeconfig', tokenKubeconfig(token, 'agent'), '-n', inference, ...args]);
    // Announce: merge-patch of its own pod's seedcast.dev/ annotations.
    const announce = JSON.stringify({
      metadata: {
        annotations: { 'seedcast.dev/fingerprint': 'abc', 'seedcast.dev/agent-endpoint': '10.0.0.5:9400' },
      },
    });
    ok(asAgent('patch', 'pod', 'agent-a', '--type=merge', '-p', announce), 'announce on its own pod');
    const denied: Array<[string[], RegExp]> = [
      [['patch', 'pod', 'agent-b', '--type=merge', '-p', announce], /may only update its own pod/],
      [
        ['label', 'pod', 'agent-a', 'app=other', '--overwrite'],
        /may only change its pod's seedcast\.dev\/ annotations/,
      ],
      [
        ['annotate', 'pod', 'agent-a', 'team=other', '--overwrite'],
        /may only change its pod's seedcast\.dev\/ annotations/,
      ],
      [['annotate', 'pod', 'agent-a', 'team-'], /may only change its pod's seedcast\.dev\/ annotations/],
    ];
    for (const [args, message] of denied) {
      const r = asAgent(...args);
      assert.notEqual(r.code, 0, `agent could ${args.join(' ')}`);
      assert.match(r.stderr, message);
    }
    // A token not bound to a pod is still held to the seedcast.dev/ annotations.
    const unbound = kubectl('create', 'token', AGENT_SA, '-n', inference, '--duration=1h').trim();
    const r = run(KUBECTL, [
      '--kubeconfig',
      tokenKubeconfig(unbound, 'unbound'),
      '-n',
      inference,
      'label',
      'pod',
      'agent-b',
      'app=y',
      '--overwrite',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /may only change its pod's seedcast\.dev\/ annotations/);
    // Other users are not affected.
    kubectl('annotate', 'pod', 'agent-b', '-n', inference, 'team=other', '--overwrite');
  });

  test('the controller ServiceAccount can reconcile anywhere but holds no Secrets and no pod lifecycle', () => {
    const sa = controllerSa();
    for (const args of [
      ['watch', 'pods', '--all-namespaces'],
      ['patch', 'pods', '--subresource=status', '-n', inference],
      ['patch', 'pods', '-n', other],
      ['create', 'deployments.apps', '-n', inference],
      ['patch', 'deployments.apps', '-n', inference],
      ['create', 'weighttransfers.seedcast.dev', '-n', inference],
      ['patch', 'weighttransfers.seedcast.dev', '--subresource=status', '-n', inference],
      ['patch', 'inferencedeployments.seedcast.dev', '--subresource=status', '-n', inference],
      ['list', 'nodes'],
      ['create', 'events', '-n', inference],
      ['create', 'leases.coordination.k8s.io', '-n', system],
      ['update', `leases.coordination.k8s.io/${CONTROLLER}`, '-n', system],
    ]) {
      assert.ok(can(sa, args), `controller must be able to ${args.join(' ')}`);
    }
    for (const args of [
      ['get', 'secrets', '-n', inference],
      ['get', 'secrets', '-n', system],
      ['create', 'pods', '-n', inference],
      ['delete', 'pods', '-n', inference],
      ['update', 'weightsources.seedcast.dev', '-n', inference],
      ['patch', 'inferencedeployments.seedcast.dev', '-n', inference],
      ['create', 'leases.coordination.k8s.io', '-n', inference],
      ['update', 'leases.coordination.k8s.io/someone-else', '-n', system],
      ['create', 'clusterroles.rbac.authorization.k8s.io'],
      ['create', 'serviceaccounts/token', '-n', inference],
    ]) {
      assert.ok(!can(sa, args), `controller must not be able to ${args.join(' ')}`);
    }
  });

  const controllerCli = existsSync(join(ROOT, 'src/cli/controller.ts'));
  test('the controller reconciles as a local process with the chart ServiceAccount token', {
    skip: controllerCli ? false : 'seedcast controller has not landed',
  }, async (t) => {
    // A kubeconfig holding nothing but a TokenRequest token for the chart's ServiceAccount.
    const token = kubectl('create', 'token', CONTROLLER, '-n', system, '--duration=1h').trim();
    const kubeconfig = tokenKubeconfig(token, 'controller');
    assert.equal(
      run(KUBECTL, [
        '--kubeconfig',
        kubeconfig,
        'auth',
        'whoami',
        '-o',
        'jsonpath={.status.userInfo.username}',
      ]).stdout,
      `system:serviceaccount:${system}:${CONTROLLER}`,
    );
    const logs: string[] = [];
    const controller: ChildProcess = spawn(
      process.execPath,
      [join(ROOT, 'src/cli/main.ts'), 'controller', '--metrics-port=0', '--health-port=0'],
      {
        env: {
          ...process.env,
          SEEDCAST_KUBECONFIG: kubeconfig,
          POD_NAME: `local-${process.pid}`,
          SEEDCAST_LEASE_NAMESPACE: system,
          SEEDCAST_LEASE_NAME: CONTROLLER,
          SEEDCAST_AGENT_SERVICE_ACCOUNT: AGENT_SA,
          SEEDCAST_AGENT_TOKEN_SECRET: TOKEN_SECRET,
          SEEDCAST_LOG_LEVEL: 'debug',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    controller.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
    controller.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
    t.after(async () => {
      if (controller.exitCode !== null || controller.signalCode !== null) return;
      const exited = new Promise((resolve) => controller.once('exit', resolve));
      controller.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => controller.kill('SIGKILL'))]);
    });
    const sample = YAML.parseAllDocuments(
      readFileSync(join(ROOT, 'config/samples/tiny-cpu-tcp.yaml'), 'utf8'),
    )
      .map((d) => d.toJS())
      .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: inference } }));
    ok(
      run(KUBECTL, ['apply', '--server-side', '-f', '-'], sample.map((o) => YAML.stringify(o)).join('---\n')),
      'apply tiny sample',
    );
    try {
      // The InferenceDeployment is rendered into a Deployment with the agent injected.
      const rendered = await waitFor(
        'the Deployment rendered from InferenceDeployment tiny',
        async () => {
          const r = run(KUBECTL, [
            'get',
            'deployments',
            '-n',
            inference,
            '-l',
            `${Labels.inferenceDeployment}=tiny`,
            '-o',
            'json',
          ]);
          const items = r.code === 0 ? JSON.parse(r.stdout).items : [];
          return items.length === 1 ? items[0] : undefined;
        },
        { timeoutMs: 60_000 },
      );
      const pod = rendered.spec.template.spec;
      assert.deepEqual(pod.readinessGates, [{ conditionType: WEIGHTS_READY }]);
      assert.equal(pod.serviceAccountName, AGENT_SA);
      assert.ok(
        [...(pod.initContainers ?? []), ...pod.containers].some(
          (c: { name: string }) => c.name === 'seedcast-agent',
        ),
        'agent injected',
      );
      // Status written with the same credentials (inferencedeployments/status).
      await waitFor('InferenceDeployment tiny status.observedGeneration', async () => {
        const r = run(KUBECTL, [
          'get',
          'inferencedeployments',
          'tiny',
          '-n',
          inference,
          '-o',
          'jsonpath={.status.observedGeneration}',
        ]);
        return r.stdout !== '' ? r.stdout : undefined;
      });
      // Leader election through the chart's Role.
      kubectl('get', 'lease', CONTROLLER, '-n', system);
      const text = logs.join('');
      assert.doesNotMatch(text, /forbidden/i, 'no RBAC denial in the controller log');
    } catch (err) {
      process.stderr.write(`controller log:\n${logs.join('').slice(-8000)}\n`);
      throw err;
    }
  });

  test('helm upgrade keeps the token and prunes a removed namespace completely', async () => {
    const before = secretToken(inference);
    assert.ok(before);
    helm(
      'upgrade',
      RELEASE,
      CHART,
      '--namespace',
      system,
      '--set-json',
      `namespaces=${JSON.stringify([inference, extra])}`,
      '--set',
      'controller.replicas=1',
      '--wait',
      '--timeout',
      '120s',
    );
    assert.equal(secretToken(inference), before, 'token unchanged by upgrade');
    const extraToken = secretToken(extra);
    assert.ok(extraToken && extraToken !== before, 'the new namespace gets its own token');
    assert.ok(
      can({ namespace: extra, name: AGENT_SA }, [
        'patch',
        'weighttransfers.seedcast.dev',
        '--subresource=status',
        '-n',
        extra,
      ]),
    );
    helm(
      'upgrade',
      RELEASE,
      CHART,
      ...installArgs(),
      '--set',
      'controller.replicas=1',
      '--wait',
      '--timeout',
      '120s',
    );
    assert.equal(secretToken(inference), before, 'token unchanged by a second upgrade');
    const left = kubectl(
      'get',
      'serviceaccounts,roles,rolebindings,secrets,networkpolicies',
      '-n',
      extra,
      '-l',
      `app.kubernetes.io/instance=${RELEASE}`,
      '-o',
      'name',
    );
    assert.equal(left.trim(), '', `objects left in the removed namespace:\n${left}`);
    assert.ok(!can({ namespace: extra, name: AGENT_SA }, ['get', 'pods', '-n', extra]));
    // controller.watchNamespace: the controller's rules in that namespace only (nodes stay readable).
    helm(
      'upgrade',
      RELEASE,
      CHART,
      ...installArgs(),
      '--set',
      'controller.replicas=1',
      '--set',
      `controller.watchNamespace=${inference}`,
      '--wait',
      '--timeout',
      '120s',
    );
    const sa = controllerSa();
    assert.ok(can(sa, ['patch', 'pods', '--subresource=status', '-n', inference]));
    assert.ok(can(sa, ['create', 'weighttransfers.seedcast.dev', '-n', inference]));
    assert.ok(!can(sa, ['patch', 'pods', '--subresource=status', '-n', other]));
    assert.ok(!can(sa, ['watch', 'pods', '--all-namespaces']));
    assert.ok(can(sa, ['list', 'nodes']));
    assert.equal(secretToken(inference), before, 'token unchanged by a third upgrade');
  });

  test('helm uninstall leaves no objects of the release, only the CRDs', async () => {
    helm('uninstall', RELEASE, '-n', system, '--wait', '--timeout', '120s');
    const kinds =
      'deployments,replicasets,pods,services,serviceaccounts,secrets,configmaps,networkpolicies,roles,rolebindings,poddisruptionbudgets';
    const namespaced = kubectl(
      'get',
      kinds,
      '-A',
      '-l',
      `app.kubernetes.io/instance=${RELEASE}`,
      '-o',
      'name',
    );
    assert.equal(namespaced.trim(), '', `namespaced objects left:\n${namespaced}`);
    const clusterScoped = kubectl(
      'get',
      'clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings',
      '-l',
      `app.kubernetes.io/instance=${RELEASE}`,
      '-o',
      'name',
    );
    assert.equal(clusterScoped.trim(), '', `cluster objects left:\n${clusterScoped}`);
    // Helm's own release records are gone too.
    const records = kubectl('get', 'secrets', '-n', system, '-l', `owner=helm,name=${RELEASE}`, '-o', 'name');
    assert.equal(records.trim(), '');
    // CRDs stay (documented in docs/install.md), and so do the objects users created.
    for (const plural of ['weightsources', 'inferencedeployments', 'weighttransfers']) {
      const crd = await cluster.client
        .get({
          group: 'apiextensions.k8s.io',
          version: 'v1',
          plural: 'customresourcedefinitions',
          name: `${plural}.seedcast.dev`,
        })
        .catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
      assert.ok(crd, `${plural} CRD kept`);
    }
    assert.ok(
      !can({ namespace: inference, name: AGENT_SA }, ['get', 'pods', '-n', inference]),
      'agent RBAC gone',
    );
  });
});
