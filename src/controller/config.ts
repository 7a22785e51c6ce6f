// Controller configuration: parsed once from the environment (what the Helm chart sets) and
// command-line flags (which win), validated with zod, frozen.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { AGENT_MODES } from '../api/v1alpha1/index.ts';
import { formatIssues } from '../api/v1alpha1/validate.ts';
import { ValidationError } from '../shared/errors.ts';

const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
]);
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const controllerConfigSchema = z.object({
  kubeconfig: z.string().optional(),
  /** Watch one namespace; all namespaces when unset. */
  namespace: z.string().optional(),
  identity: z.string().min(1),
  leaderElect: bool.default(true),
  leaseNamespace: z.string().min(1).default('seedcast-system'),
  leaseName: z.string().min(1).default('seedcast-controller'),
  leaseDurationSeconds: int(2, 600).default(15),
  metricsPort: int(0, 65535).default(8080),
  healthPort: int(0, 65535).default(8081),
  bindAddress: z.string().default('0.0.0.0'),
  agentImage: z.string().min(1).default('ghcr.io/seedcast/seedcast:latest'),
  agentMode: z.enum(AGENT_MODES).default('Sidecar'),
  agentGpuSharing: z.enum(['EnvVar', 'DRA']).default('EnvVar'),
  agentPort: int(1, 65535).default(9400),
  agentServiceAccount: z.string().optional(),
  agentTokenSecret: z.string().optional(),
  agentResources: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as { requests?: Record<string, string>; limits?: Record<string, string> };
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON ({"requests": {...}, "limits": {...}})' });
        return z.NEVER;
      }
    })
    .optional(),
  workers: int(1, 64).default(4),
  resyncSeconds: int(0, 86400).default(300),
  /** Finished WeightTransfers are deleted this long after completion. */
  retentionSeconds: int(0, 30 * 86400).default(600),
  /** Watch Nodes for topology labels (needs nodes list/watch). */
  watchNodes: bool.default(true),
  logLevel: z.string().default('info'),
});
export type ControllerConfig = Readonly<z.output<typeof controllerConfigSchema>>;

const ENV: Record<string, keyof z.input<typeof controllerConfigSchema>> = {
  SEEDCAST_KUBECONFIG: 'kubeconfig',
  SEEDCAST_WATCH_NAMESPACE: 'namespace',
  POD_NAME: 'identity',
  SEEDCAST_LEADER_ELECT: 'leaderElect',
  SEEDCAST_LEASE_NAMESPACE: 'leaseNamespace',
  SEEDCAST_LEASE_NAME: 'leaseName',
  SEEDCAST_LEASE_DURATION_SECONDS: 'leaseDurationSeconds',
  SEEDCAST_METRICS_PORT: 'metricsPort',
  SEEDCAST_HEALTH_PORT: 'healthPort',
  SEEDCAST_BIND_ADDRESS: 'bindAddress',
  SEEDCAST_AGENT_IMAGE: 'agentImage',
  SEEDCAST_AGENT_MODE: 'agentMode',
  SEEDCAST_AGENT_GPU_SHARING: 'agentGpuSharing',
  SEEDCAST_AGENT_PORT: 'agentPort',
  SEEDCAST_AGENT_SERVICE_ACCOUNT: 'agentServiceAccount',
  SEEDCAST_AGENT_TOKEN_SECRET: 'agentTokenSecret',
  SEEDCAST_AGENT_RESOURCES: 'agentResources',
  SEEDCAST_WORKERS: 'workers',
  SEEDCAST_RESYNC_SECONDS: 'resyncSeconds',
  SEEDCAST_TRANSFER_RETENTION_SECONDS: 'retentionSeconds',
  SEEDCAST_WATCH_NODES: 'watchNodes',
  SEEDCAST_LOG_LEVEL: 'logLevel',
};

const FLAGS = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  identity: { type: 'string' },
  'leader-elect': { type: 'string' },
  'lease-namespace': { type: 'string' },
  'lease-name': { type: 'string' },
  'lease-duration-seconds': { type: 'string' },
  'metrics-port': { type: 'string' },
  'health-port': { type: 'string' },
  'bind-address': { type: 'string' },
  'agent-image': { type: 'string' },
  'agent-mode': { type: 'string' },
  'agent-gpu-sharing': { type: 'string' },
  'agent-port': { type: 'string' },
  'agent-service-account': { type: 'string' },
  'agent-token-secret': { type: 'string' },
  'agent-resources': { type: 'string' },
  workers: { type: 'string' },
  'resync-seconds': { type: 'string' },
  'retention-seconds': { type: 'string' },
  'watch-nodes': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CONTROLLER_USAGE = `usage: seedcast controller [flags]

Every flag also comes from the environment (the Helm chart sets these):
${Object.entries(ENV)
  .map(([env, key]) => `  --${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).padEnd(24)} ${env}`)
  .join('\n')}
  --bind-address             (default 0.0.0.0)
`;

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Parses env then flags; throws a ValidationError naming each bad setting. */
export function parseControllerConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): ControllerConfig & { help: boolean } {
  const { values } = parseArgs({ args: [...argv], options: FLAGS, strict: true, allowPositionals: false });
  const raw: Record<string, unknown> = { identity: `seedcast-controller-${process.pid}` };
  for (const [name, key] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const [flag, value] of Object.entries(values)) {
    if (flag !== 'help' && value !== undefined) raw[camel(flag)] = value;
  }
  const result = controllerConfigSchema.safeParse(raw);
  if (!result.success) throw new ValidationError('controller configuration', formatIssues(result.error));
  return Object.freeze({ ...result.data, help: values.help === true });
}
