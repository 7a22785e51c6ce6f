// The agent's configuration: read once from flags and environment variables, validated with zod
// into a frozen object. Errors name the variable (or flag) that is wrong.
import { z } from 'zod';
import { formatIssues } from '../api/v1alpha1/validate.ts';
import { ValidationError } from '../shared/errors.ts';
import { MAX_CHUNK_BYTES } from './peer/protocol.ts';
import { parseBytes } from './units.ts';

const bytes = (min: number) =>
  z.string().transform((text, ctx) => {
    const value = parseBytes(text);
    if (value === undefined || value < min) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a byte size of at least ${min}` });
      return z.NEVER;
    }
    return value;
  });
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Every setting: its env variable, its flag, and its schema (with the default applied to the text). */
export const SETTINGS = {
  podName: {
    env: 'SEEDCAST_POD_NAME',
    flag: 'pod-name',
    schema: z.string().min(1).max(253),
    help: 'this pod (downward API)',
  },
  namespace: {
    env: 'SEEDCAST_POD_NAMESPACE',
    flag: 'namespace',
    schema: z.string().min(1).max(63),
    help: "this pod's namespace",
  },
  podUid: {
    env: 'SEEDCAST_POD_UID',
    flag: 'pod-uid',
    schema: z.string().min(1).max(64),
    help: "this pod's uid",
  },
  podIp: {
    env: 'SEEDCAST_POD_IP',
    flag: 'pod-ip',
    schema: z.string().min(1).max(64),
    help: 'address peers reach this pod on',
  },
  socketPath: {
    env: 'SEEDCAST_SOCKET',
    flag: 'socket',
    schema: z.string().min(1).default('/run/seedcast/agent.sock'),
    help: 'engine bridge Unix socket',
  },
  httpPort: {
    env: 'SEEDCAST_AGENT_PORT',
    flag: 'port',
    schema: int(0, 65535).default(9464),
    help: 'HTTP port for /metrics and /healthz',
  },
  httpHost: {
    env: 'SEEDCAST_AGENT_HOST',
    flag: 'http-host',
    schema: z.string().min(1).default('0.0.0.0'),
    help: 'HTTP listen address',
  },
  tokenFile: {
    env: 'SEEDCAST_TOKEN_FILE',
    flag: 'token-file',
    schema: z.string().min(1).default('/var/run/seedcast/token/token'),
    help: 'pod-to-pod token (a mounted Secret)',
  },
  kubeconfig: {
    env: 'SEEDCAST_KUBECONFIG',
    flag: 'kubeconfig',
    schema: z.string().min(1).optional(),
    help: 'kubeconfig (default: in-cluster)',
  },
  localDir: {
    env: 'SEEDCAST_LOCAL_DIR',
    flag: 'local-dir',
    schema: z.string().min(1).optional(),
    help: 'no API server: WeightTransfers and status as files here (tests, demo)',
  },
  bucketBytes: {
    env: 'SEEDCAST_BUCKET_BYTES',
    flag: 'bucket-bytes',
    schema: bytes(4096).default(64 * 2 ** 20),
    help: 'bucket and staging slot size; equal on all agents of a source',
  },
  stagingDir: {
    env: 'SEEDCAST_STAGING_DIR',
    flag: 'staging-dir',
    schema: z.string().min(1).default('/run/seedcast'),
    help: 'host staging slot files (tmpfs)',
  },
  streams: {
    env: 'SEEDCAST_TCP_STREAMS',
    flag: 'streams',
    schema: int(1, 64).default(4),
    help: 'TCP streams per rank (receiver)',
  },
  chunkBytes: {
    env: 'SEEDCAST_CHUNK_BYTES',
    flag: 'chunk-bytes',
    schema: bytes(4096).default(MAX_CHUNK_BYTES),
    help: 'TCP chunk size (≤ 4Mi, multiple of 4)',
  },
  window: {
    env: 'SEEDCAST_SEND_WINDOW',
    flag: 'window',
    schema: int(1, 256).default(8),
    help: 'chunks in flight per seed rank',
  },
  poolChunks: {
    env: 'SEEDCAST_CHUNK_POOL',
    flag: 'chunk-pool',
    schema: int(2, 1024).default(64),
    help: 'chunk buffers the agent may use in all',
  },
  bandwidthLimit: {
    env: 'SEEDCAST_BANDWIDTH_LIMIT',
    flag: 'bandwidth-limit',
    schema: bytes(1).optional(),
    help: 'seed send limit per rank, bytes/s (e.g. 10Gi)',
  },
  stepTimeoutMs: {
    env: 'SEEDCAST_STEP_TIMEOUT_MS',
    flag: 'step-timeout-ms',
    schema: int(100, 3_600_000).default(60_000),
    help: 'deadline of one step: engine request, rendezvous, silent peer',
  },
  progressIntervalMs: {
    env: 'SEEDCAST_PROGRESS_INTERVAL_MS',
    flag: 'progress-interval-ms',
    schema: int(500, 60_000).default(500),
    help: 'status writes per transfer at most this often',
  },
  hostMapping: {
    env: 'SEEDCAST_HOST_MAPPING',
    flag: 'host-mapping',
    schema: z.enum(['auto', 'on', 'off']).default('auto'),
    help: 'map host staging slots through the native addon, so tcp reads and writes sockets in place: auto (if the addon loads), on (required), off',
  },
  tcpReceiveChecksum: {
    env: 'SEEDCAST_TCP_RECEIVE_CHECKSUM',
    flag: 'tcp-receive-checksum',
    schema: z.enum(['auto', 'inline', 'pool']).default('auto'),
    help: 'where a tcp receiver checksums what lands in place: inline (its socket thread, while the bytes are in cache: least CPU), pool (a libuv pool thread: frees the socket thread), auto (pool with 4 or more usable CPUs)',
  },
  gpu: {
    env: 'SEEDCAST_GPU',
    flag: 'gpu',
    schema: z.enum(['auto', 'on', 'off']).default('auto'),
    help: 'cuda staging + nccl through the native addon: auto (if a driver is visible), on (required), off',
  },
  cudaDevices: {
    env: 'SEEDCAST_CUDA_DEVICES',
    flag: 'cuda-devices',
    schema: z
      .string()
      .regex(/^(all|\d+(,\d+)*)$/, { message: 'must be "all" or a list of device ordinals like 0,1' })
      .default('all'),
    help: 'devices to allocate cuda staging slots on (all visible, or 0,1,…)',
  },
  cudaSlotsPerDevice: {
    env: 'SEEDCAST_CUDA_SLOTS_PER_DEVICE',
    flag: 'cuda-slots-per-device',
    schema: int(2, 64).default(2),
    help: 'cuda staging buffers (of bucket-bytes) allocated ahead per device: 2 per engine rank on it',
  },
  logLevel: {
    env: 'SEEDCAST_LOG_LEVEL',
    flag: 'log-level',
    schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    help: 'pino level',
  },
} as const;

type Settings = typeof SETTINGS;
export type AgentConfig = Readonly<{ [K in keyof Settings]: z.output<Settings[K]['schema']> }>;

/** Flags win over environment variables. */
export function loadConfig(
  flags: Record<string, string | undefined>,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  const out: Record<string, unknown> = {};
  const issues: string[] = [];
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const raw = flags[setting.flag] ?? env[setting.env];
    const parsed = (setting.schema as z.ZodType).safeParse(raw === '' ? undefined : raw);
    if (parsed.success) out[key] = parsed.data;
    else
      issues.push(
        ...formatIssues(parsed.error).map(
          (issue) => `${setting.env} (--${setting.flag}): ${issue.replace(/^<root>: /, '')}`,
        ),
      );
  }
  const chunk = out.chunkBytes as number | undefined;
  if (chunk !== undefined && (chunk % 4 !== 0 || chunk > MAX_CHUNK_BYTES)) {
    issues.push(
      `SEEDCAST_CHUNK_BYTES (--chunk-bytes): must be a multiple of 4 and at most ${MAX_CHUNK_BYTES}`,
    );
  }
  if (issues.length > 0) throw new ValidationError('agent configuration', issues);
  return Object.freeze(out) as AgentConfig;
}

export function configHelp(): string {
  return Object.values(SETTINGS)
    .map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(30)} ${s.help}`)
    .join('\n');
}
