// `seedcast inject`: for users of their own workloads (StatefulSets, LeaderWorkerSets, plain
// Deployments): reads YAML holding pod templates and prints it with the agent, the readiness
// gate, the WeightSource label and the volumes added — exactly what the controller renders for an
// InferenceDeployment, because it is the controller's own renderer.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { AGENT_MODES, Labels, type PodTemplate, parseOrThrow, podTemplate } from '../api/v1alpha1/index.ts';
import {
  type AgentInjectionOptions,
  type GpuSharing,
  renderAgentInjection,
} from '../controller/inferencedeployment/inject.ts';
import { errorMessage, SeedcastError } from '../shared/errors.ts';

const USAGE = `usage: seedcast inject -f FILE [options]

Prints FILE (YAML, one or more documents; - for stdin) with the seedcast agent injected into
every pod template: a Pod, a PodTemplateSpec, or any workload with spec.template (Deployment,
StatefulSet, Job, LeaderWorkerSet's leaderWorkerTemplate). Apply the result with kubectl.

options:
  -f, --filename FILE        input YAML (- for stdin)
  --weight-source NAME       WeightSource the pods load (default: the template's
                             ${Labels.weightSource} label)
  --mode MODE                Sidecar (default) or InContainer
  --gpu-sharing HOW          Sidecar GPU visibility: EnvVar (default) or DRA
  --image IMAGE              agent image (default: ghcr.io/seedcast/seedcast:<version>)
  --agent-port PORT          agent port (default 9400)
  --service-account NAME     agent ServiceAccount (default seedcast-agent)
  --token-secret NAME        pod-to-pod token Secret (default seedcast-agent-token)
  -h, --help`;

export const GPU_SHARING: readonly GpuSharing[] = ['EnvVar', 'DRA'];

/** What `seedcast inject` hands the controller's renderer. */
export type InjectOptions = AgentInjectionOptions & {
  gpuSharing: GpuSharing;
  serviceAccountName: string;
  tokenSecret: string;
};

export type Renderer = (template: PodTemplate, options: InjectOptions) => PodTemplate;

/** A pod template found in a document: where it is, so the injected one can be put back. */
interface TemplateSlot {
  path: string;
  get: () => unknown;
  set: (template: PodTemplate) => void;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every pod template in a document: a Pod, a PodTemplateSpec or a workload's spec.template. */
export function templateSlots(doc: unknown): TemplateSlot[] {
  if (!isObject(doc)) return [];
  if (doc.kind === 'Pod') {
    // A Pod is a template with its own metadata; apiVersion and kind stay as they are.
    return [
      {
        path: '<root>',
        get: () => ({ metadata: doc.metadata ?? {}, spec: doc.spec }),
        set: (t) => {
          doc.metadata = t.metadata;
          doc.spec = t.spec;
        },
      },
    ];
  }
  const slots: TemplateSlot[] = [];
  const visit = (holder: Json, key: string, path: string) => {
    const value = holder[key];
    if (isObject(value) && isObject(value.spec) && Array.isArray(value.spec.containers)) {
      slots.push({ path, get: () => holder[key], set: (t) => (holder[key] = t) });
    }
  };
  const spec = doc.spec;
  if (isObject(spec)) {
    visit(spec, 'template', 'spec.template');
    // CronJob: spec.jobTemplate.spec.template
    const job =
      isObject(spec.jobTemplate) && isObject(spec.jobTemplate.spec) ? spec.jobTemplate.spec : undefined;
    if (job) visit(job, 'template', 'spec.jobTemplate.spec.template');
    // LeaderWorkerSet: spec.leaderWorkerTemplate.{leaderTemplate, workerTemplate}
    const lws = spec.leaderWorkerTemplate;
    if (isObject(lws)) {
      visit(lws, 'leaderTemplate', 'spec.leaderWorkerTemplate.leaderTemplate');
      visit(lws, 'workerTemplate', 'spec.leaderWorkerTemplate.workerTemplate');
    }
  }
  // A bare PodTemplateSpec (what `kubectl explain` calls it): {metadata, spec: {containers}}.
  if (slots.length === 0 && doc.kind === undefined && isObject(spec) && Array.isArray(spec.containers)) {
    slots.push({
      path: '<root>',
      get: () => doc,
      set: (t) => {
        for (const k of Object.keys(doc)) delete doc[k];
        Object.assign(doc, t);
      },
    });
  }
  return slots;
}

/** Injects the agent into every pod template of a multi-document YAML text; returns the text. */
export function injectYaml(
  text: string,
  options: Omit<InjectOptions, 'weightSource'> & { weightSource?: string },
  render: Renderer = renderAgentInjection,
): string {
  const docs = YAML.parseAllDocuments(text);
  let injected = 0;
  const out: string[] = [];
  docs.forEach((document, index) => {
    if (document.errors.length > 0) {
      throw new SeedcastError(
        'SEEDCAST_ERR_INVALID',
        `document ${index + 1}: ${document.errors[0]!.message}`,
        {
          retryable: false,
        },
      );
    }
    const doc = document.toJS() as unknown;
    if (doc === null || doc === undefined) return;
    for (const slot of templateSlots(doc)) {
      const name = isObject(doc) && isObject(doc.metadata) ? ` ${String(doc.metadata.name ?? '')}` : '';
      const where = `document ${index + 1}${name} ${slot.path}`;
      const template = parseOrThrow(podTemplate, slot.get(), `pod template (${where})`);
      const weightSource = options.weightSource ?? template.metadata?.labels?.[Labels.weightSource];
      if (weightSource === undefined || weightSource === '') {
        throw new SeedcastError(
          'SEEDCAST_ERR_INVALID',
          `${where}: no WeightSource: pass --weight-source NAME or label the template ${Labels.weightSource}=NAME`,
          { retryable: false },
        );
      }
      slot.set(render(template, { ...options, weightSource }));
      injected++;
    }
    out.push(YAML.stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false }));
  });
  if (injected === 0) {
    throw new SeedcastError(
      'SEEDCAST_ERR_INVALID',
      'no pod template found (expected a Pod, a PodTemplateSpec, or a workload with spec.template)',
      { retryable: false },
    );
  }
  return out.join('---\n');
}

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new SeedcastError('SEEDCAST_ERR_INVALID', `${flag}: "${value}" is not one of ${allowed.join(', ')}`, {
    retryable: false,
  });
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        filename: { type: 'string', short: 'f' },
        'weight-source': { type: 'string' },
        mode: { type: 'string' },
        'gpu-sharing': { type: 'string' },
        image: { type: 'string' },
        'agent-port': { type: 'string' },
        'service-account': { type: 'string' },
        'token-secret': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (values.filename === undefined) {
      process.stderr.write(`seedcast inject: -f FILE is required\n\n${USAGE}\n`);
      return 2;
    }
    const port = Number(values['agent-port'] ?? 9400);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new SeedcastError(
        'SEEDCAST_ERR_INVALID',
        `--agent-port: "${values['agent-port']}" is not a port`,
        {
          retryable: false,
        },
      );
    }
    const options = {
      ...(values['weight-source'] === undefined ? {} : { weightSource: values['weight-source'] }),
      mode: oneOf('--mode', values.mode, AGENT_MODES, 'Sidecar'),
      gpuSharing: oneOf('--gpu-sharing', values['gpu-sharing'], GPU_SHARING, 'EnvVar'),
      image: values.image ?? `ghcr.io/seedcast/seedcast:${await packageVersion()}`,
      agentPort: port,
      serviceAccountName: values['service-account'] ?? 'seedcast-agent',
      tokenSecret: values['token-secret'] ?? 'seedcast-agent-token',
    };
    const text = await readInput(values.filename);
    process.stdout.write(injectYaml(text, options));
    return 0;
  } catch (err) {
    process.stderr.write(`seedcast inject: ${errorMessage(err)}\n`);
    return err instanceof SeedcastError && err.code === 'SEEDCAST_ERR_INVALID' ? 2 : 1;
  }
}
