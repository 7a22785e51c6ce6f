// `seedcast inject`: finds every pod template in a YAML stream, hands it to the controller's
// renderer, and puts the result back in place; bad input gets a message naming the document.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { Labels, WEIGHTS_READY } from '../../src/api/v1alpha1/names.ts';
import { type InjectOptions, injectYaml, type Renderer, templateSlots } from '../../src/cli/inject.ts';
import { renderAgentInjection } from '../../src/controller/inferencedeployment/inject.ts';

const ROOT = join(import.meta.dirname, '../..');
const options = {
  mode: 'Sidecar',
  gpuSharing: 'EnvVar',
  image: 'seedcast:test',
  agentPort: 9400,
  serviceAccountName: 'seedcast-agent',
  tokenSecret: 'seedcast-agent-token',
} as const;

/** A stand-in renderer that records its calls and marks the template. */
function recorder(): { render: Renderer; calls: InjectOptions[] } {
  const calls: InjectOptions[] = [];
  const render: Renderer = (template, opts) => {
    calls.push(opts);
    return {
      ...template,
      metadata: {
        ...template.metadata,
        labels: { ...template.metadata?.labels, injected: opts.weightSource },
      },
    };
  };
  return { render, calls };
}

const engine = { containers: [{ name: 'engine', image: 'vllm', command: ['vllm', 'serve'] }] };

describe('seedcast inject', () => {
  it('finds pod templates in Pods, workloads, CronJobs, LeaderWorkerSets and bare templates', () => {
    const cases: Array<[unknown, string[]]> = [
      [{ kind: 'Pod', metadata: { name: 'p' }, spec: engine }, ['<root>']],
      [{ kind: 'StatefulSet', spec: { template: { spec: engine } } }, ['spec.template']],
      [
        { kind: 'CronJob', spec: { jobTemplate: { spec: { template: { spec: engine } } } } },
        ['spec.jobTemplate.spec.template'],
      ],
      [
        {
          kind: 'LeaderWorkerSet',
          spec: {
            leaderWorkerTemplate: { leaderTemplate: { spec: engine }, workerTemplate: { spec: engine } },
          },
        },
        ['spec.leaderWorkerTemplate.leaderTemplate', 'spec.leaderWorkerTemplate.workerTemplate'],
      ],
      [{ metadata: { labels: { a: 'b' } }, spec: engine }, ['<root>']],
      [{ kind: 'ConfigMap', data: {} }, []],
    ];
    for (const [doc, paths] of cases) {
      assert.deepEqual(
        templateSlots(doc).map((s) => s.path),
        paths,
        JSON.stringify(doc),
      );
    }
  });

  it('injects every template, keeps other documents, and takes the WeightSource from the label', () => {
    const { render, calls } = recorder();
    const text = [
      YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }),
      YAML.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'd' },
        spec: { template: { metadata: { labels: { [Labels.weightSource]: 'from-label' } }, spec: engine } },
      }),
    ].join('---\n');
    const docs = YAML.parseAllDocuments(injectYaml(text, options, render)).map((d) => d.toJS());
    assert.equal(docs.length, 2);
    assert.equal(docs[0].kind, 'ConfigMap');
    assert.equal(docs[1].spec.template.metadata.labels.injected, 'from-label');
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.serviceAccountName, 'seedcast-agent');
    // --weight-source wins over the label.
    const again = recorder();
    injectYaml(text, { ...options, weightSource: 'flag' }, again.render);
    assert.equal(again.calls[0]!.weightSource, 'flag');
  });

  it('names the document when a template has no WeightSource or is malformed', () => {
    const { render } = recorder();
    const noSource = YAML.stringify({
      kind: 'StatefulSet',
      metadata: { name: 's' },
      spec: { template: { spec: engine } },
    });
    assert.throws(
      () => injectYaml(noSource, options, render),
      /document 1 s spec\.template: no WeightSource: pass --weight-source NAME/,
    );
    const badContainer = YAML.stringify({
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [{ image: 'x' }] },
    });
    assert.throws(
      () => injectYaml(badContainer, { ...options, weightSource: 'w' }, render),
      /pod template \(document 1 p <root>\).*spec\.containers\[0\]\.name/,
    );
    assert.throws(() => injectYaml('kind: ConfigMap\n', options, render), /no pod template found/);
    assert.throws(() => injectYaml('a: [\n', options, render), /document 1:/);
  });

  it('prints what the controller renders (CLI end to end)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seedcast-inject-'));
    const file = join(dir, 'sts.yaml');
    writeFileSync(
      file,
      YAML.stringify({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'llama' },
        spec: {
          selector: { matchLabels: { app: 'llama' } },
          template: { metadata: { labels: { app: 'llama' } }, spec: engine },
        },
      }),
    );
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'inject', ...args], { encoding: 'utf8' });
    const sidecar = cli('-f', file, '--weight-source', 'llama');
    assert.equal(sidecar.status, 0, sidecar.stderr);
    assert.ok(!sidecar.stdout.includes('*'), 'no YAML aliases in the output');
    const pod = YAML.parse(sidecar.stdout).spec.template;
    // Exactly the controller's own rendering with the chart's defaults.
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    const expected = renderAgentInjection(
      { metadata: { labels: { app: 'llama' } }, spec: engine },
      { ...options, weightSource: 'llama', image: `ghcr.io/seedcast/seedcast:${version}` },
    );
    assert.deepEqual(pod, JSON.parse(JSON.stringify(expected)));
    assert.equal(pod.metadata.labels[Labels.weightSource], 'llama');
    assert.deepEqual(pod.spec.readinessGates, [{ conditionType: WEIGHTS_READY }]);
    assert.equal(pod.spec.initContainers[0].restartPolicy, 'Always');
    assert.equal(pod.spec.serviceAccountName, 'seedcast-agent');
    const inContainer = YAML.parse(
      cli('-f', file, '--weight-source', 'llama', '--mode', 'InContainer').stdout,
    );
    assert.deepEqual(inContainer.spec.template.spec.containers[0].command.slice(-2), ['vllm', 'serve']);
    const bad = cli('-f', file, '--mode', 'sidecar');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--mode: "sidecar" is not one of Sidecar, InContainer/);
  });
});
