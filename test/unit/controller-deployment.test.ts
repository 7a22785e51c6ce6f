import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inferenceDeployment, Labels, WEIGHTS_READY, weightSource } from '../../src/api/v1alpha1/index.ts';
import { parseControllerConfig } from '../../src/controller/config.ts';
import {
  AGENT_CONTAINER,
  AgentEnv,
  RUN_VOLUME,
  renderAgentInjection,
  STAGING_DIR,
  STAGING_VOLUME,
} from '../../src/controller/inferencedeployment/inject.ts';
import { planStatus, renderDeployment } from '../../src/controller/inferencedeployment/plan.ts';
import { ValidationError } from '../../src/shared/errors.ts';

const template = {
  metadata: { labels: { app: 'llm' } },
  spec: {
    containers: [
      {
        name: 'engine',
        image: 'vllm:1',
        command: ['vllm', 'serve'],
        args: ['m'],
        env: [{ name: 'X', value: '1' }],
      },
    ],
  },
};
const options = { weightSource: 'model', image: 'seedcast:1', agentPort: 9400 };
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked freely in assertions
type Json = Record<string, any>;

describe('renderAgentInjection', () => {
  it('Sidecar: native sidecar, readiness gate, label, shared emptyDir, downward API', () => {
    const out = renderAgentInjection(template, { ...options, mode: 'Sidecar', tokenSecret: 'tok' }) as Json;
    const agent = out.spec.initContainers[0];
    assert.equal(agent.name, AGENT_CONTAINER);
    assert.equal(agent.restartPolicy, 'Always');
    assert.deepEqual(out.spec.readinessGates, [{ conditionType: WEIGHTS_READY }]);
    assert.equal(out.metadata.labels[Labels.weightSource], 'model');
    assert.equal(out.metadata.labels.app, 'llm');
    assert.ok(out.spec.volumes.some((v: Json) => v.name === RUN_VOLUME && v.emptyDir !== undefined));
    const env = Object.fromEntries(
      agent.env.map((e: Json) => [e.name, e.value ?? e.valueFrom.fieldRef.fieldPath]),
    );
    assert.equal(env[AgentEnv.podName], 'metadata.name');
    assert.equal(env[AgentEnv.podNamespace], 'metadata.namespace');
    assert.equal(env[AgentEnv.podUid], 'metadata.uid');
    assert.equal(env[AgentEnv.podIp], 'status.podIP');
    assert.ok(out.spec.containers[0].volumeMounts.some((m: Json) => m.name === RUN_VOLUME));
    // Staging slots on a tmpfs of their own, mounted where both containers look for them.
    assert.deepEqual(
      out.spec.volumes.find((v: Json) => v.name === STAGING_VOLUME),
      { name: STAGING_VOLUME, emptyDir: { medium: 'Memory' } },
    );
    for (const c of [agent, out.spec.containers[0]])
      assert.deepEqual(
        c.volumeMounts.find((m: Json) => m.name === STAGING_VOLUME),
        { name: STAGING_VOLUME, mountPath: STAGING_DIR },
      );
    assert.equal(env[AgentEnv.stagingDir], STAGING_DIR);
    assert.deepEqual(out.spec.containers[0].command, ['vllm', 'serve']);
    assert.equal((template.spec.containers[0] as Json).volumeMounts, undefined, 'input untouched');
  });

  it('InContainer: an install init container and the engine command wrapped', () => {
    const out = renderAgentInjection(template, { ...options, mode: 'InContainer' }) as Json;
    assert.equal(out.spec.initContainers[0].restartPolicy, undefined);
    const engine = out.spec.containers[0];
    assert.deepEqual(engine.command.slice(1), ['agent', '--exec', '--', 'vllm', 'serve', 'm']);
    assert.equal(engine.args, undefined);
    assert.ok(engine.env.some((e: Json) => e.name === AgentEnv.podUid));
    assert.ok(
      engine.volumeMounts.some((m: Json) => m.name === STAGING_VOLUME && m.mountPath === STAGING_DIR),
    );
    assert.equal(
      out.spec.initContainers[0].volumeMounts.some((m: Json) => m.name === STAGING_VOLUME),
      false,
      'the install step needs no staging',
    );
    assert.ok(engine.env.some((e: Json) => e.name === 'X'));
    // Lists keyed by name in server-side apply must not repeat a name.
    for (const list of [engine.env, engine.volumeMounts, out.spec.volumes]) {
      const names = list.map((e: Json) => e.name);
      assert.equal(new Set(names).size, names.length, `duplicate in ${names}`);
    }
  });

  it('InContainer without a command names the field', () => {
    const bare = { spec: { containers: [{ name: 'engine', image: 'x' }] } };
    assert.throws(
      () => renderAgentInjection(bare, { ...options, mode: 'InContainer' }),
      (err: unknown) => err instanceof ValidationError && /containers\[0\]\.command/.test(err.message),
    );
  });

  it('is idempotent on the readiness gate', () => {
    const once = renderAgentInjection(template, { ...options, mode: 'Sidecar' });
    const gates = (once.spec as Json).readinessGates;
    const twice = renderAgentInjection(
      { ...once, spec: { ...once.spec, initContainers: [] } },
      { ...options, mode: 'Sidecar' },
    );
    assert.deepEqual((twice.spec as Json).readinessGates, gates);
  });
});

describe('InferenceDeployment planner', () => {
  const id = inferenceDeployment.parse({
    apiVersion: 'seedcast.dev/v1alpha1',
    kind: 'InferenceDeployment',
    metadata: { name: 'llm', namespace: 'ns', uid: 'u1', generation: 3 },
    spec: { replicas: 4, weightSource: 'model', template },
  });
  it('renders an owned Deployment with a stable selector and the replicas', () => {
    const d = renderDeployment(id, { image: 'seedcast:1', agentPort: 9400, gpuSharing: 'EnvVar' }) as Json;
    assert.equal(d.spec.replicas, 4);
    assert.deepEqual(d.spec.selector.matchLabels, { [Labels.inferenceDeployment]: 'llm' });
    assert.equal(d.spec.template.metadata.labels[Labels.inferenceDeployment], 'llm');
    assert.equal(d.metadata.ownerReferences[0].uid, 'u1');
    assert.equal(d.metadata.ownerReferences[0].controller, true);
  });

  it("gives every agent the WeightSource's bucket size (and no setting when it has none)", () => {
    const defaults = { image: 'seedcast:1', agentPort: 9400, gpuSharing: 'EnvVar' as const };
    const source = weightSource.parse({
      apiVersion: 'seedcast.dev/v1alpha1',
      kind: 'WeightSource',
      metadata: { name: 'model', namespace: 'ns' },
      spec: { model: 'm', engine: { name: 'vllm', version: '1' }, transfer: { bucketMiB: 1024 } },
    }).spec;
    const agentEnv = (d: Json): Json[] =>
      d.spec.template.spec.initContainers.find((c: Json) => c.name === 'seedcast-agent').env;
    const bucket = (env: Json[]) => env.find((e) => e.name === 'SEEDCAST_BUCKET_BYTES')?.value;
    assert.equal(bucket(agentEnv(renderDeployment(id, defaults, source) as Json)), '1024Mi');
    assert.equal(bucket(agentEnv(renderDeployment(id, defaults) as Json)), undefined);
    const unset = { ...source, transfer: { ...source.transfer, bucketMiB: undefined } };
    assert.equal(bucket(agentEnv(renderDeployment(id, defaults, unset) as Json)), undefined);
  });

  it('status counts warm and cold starts and seeds; conditions follow the Deployment', () => {
    const pods = [
      { weightsReady: { status: 'True', reason: 'ColdLoaded' }, seed: true, deleting: false },
      { weightsReady: { status: 'True', reason: 'WeightsVerified' }, seed: true, deleting: false },
      { weightsReady: { status: 'False', reason: 'TransferInProgress' }, seed: false, deleting: false },
    ];
    const status = planStatus(
      id,
      { generation: 1, observedGeneration: 1, replicas: 4, readyReplicas: 2, updatedReplicas: 4 },
      pods,
      true,
    );
    assert.deepEqual(
      [status.coldStarts, status.warmStarts, status.seeds, status.readyReplicas, status.selector],
      [1, 1, 2, 2, `${Labels.inferenceDeployment}=llm`],
    );
    assert.equal(status.conditions.find((c) => c.type === 'Available')?.status, 'False');
    assert.equal(status.conditions.find((c) => c.type === 'Progressing')?.reason, 'Scaling');
    const missing = planStatus(id, undefined, [], false);
    assert.match(
      missing.conditions.find((c) => c.type === 'WeightSourceResolved')?.message ?? '',
      /^spec\.weightSource/,
    );
  });
});

describe('controller config', () => {
  it('reads the chart env, flags win, bad values name the setting', () => {
    const config = parseControllerConfig(['--workers', '8'], {
      SEEDCAST_WORKERS: '2',
      SEEDCAST_LEADER_ELECT: 'false',
      POD_NAME: 'c-0',
    });
    assert.equal(config.workers, 8);
    assert.equal(config.leaderElect, false);
    assert.equal(config.identity, 'c-0');
    assert.throws(() => parseControllerConfig([], { SEEDCAST_AGENT_MODE: 'Sidecr' }), /agentMode/);
    assert.throws(
      () => parseControllerConfig([], { SEEDCAST_AGENT_RESOURCES: '{' }),
      /agentResources: must be JSON/,
    );
  });
});
