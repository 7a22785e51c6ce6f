// `seedcast dev-cluster up|down|status`: a local control plane built from source with fake GPU
// nodes (see docs/dev-cluster.md). `up` prints the kubeconfig path on stdout, progress on stderr.
import { parseArgs } from 'node:util';
import { defaultDir, down, type StatusReport, status, up } from '../devcluster/cluster.ts';
import { DEMO_CPU_USAGE_ANNOTATION } from '../devcluster/kwok.ts';
import { errorMessage, SeedcastError } from '../shared/errors.ts';

const USAGE = `usage: seedcast dev-cluster up|down|status [options]

  up       build missing binaries, start etcd, kube-apiserver, kube-controller-manager,
           kube-scheduler and KWOK with fake GPU nodes; prints the kubeconfig path
  down     stop everything (no process and no port left behind)
  status   show what runs (exit 0 when healthy, 1 when not, 3 when there is no cluster)

options:
  --nodes N          fake GPU nodes (default 4)
  --gpus-per-node G  nvidia.com/gpu capacity of each node (default 8)
  --pod-cidr CIDR    loopback range for pod IPs (default 127.X.0.0/16, X derived from DIR)
  --metrics          also run metrics-server (metrics.k8s.io for the HPA) on KWOK's simulated
                     pod usage; a pod's CPU comes from its annotation ${DEMO_CPU_USAGE_ANNOTATION}
  --dir DIR          state directory (default \${SEEDCAST_CACHE:-~/.cache/seedcast}/dev-cluster)
  --no-build         fail instead of building missing binaries
  --json             status as JSON
`;

function parseCount(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new SeedcastError(
      'SEEDCAST_ERR_INVALID',
      `${flag} must be a non-negative integer, got "${value}"`,
      {
        retryable: false,
      },
    );
  }
  return n;
}

function formatStatus(report: StatusReport): string {
  if (report.state === undefined) return `no dev cluster in ${report.dir}`;
  const lines = [
    `dev cluster in ${report.dir} (started ${report.state.startedAt})`,
    `  kubeconfig  ${report.state.kubeconfig}`,
    `  api server  ${report.state.server} ${report.apiServerReady ? 'ready' : 'NOT READY'}`,
    `  pod IPs     ${report.state.podCidr}`,
    `  metrics     ${report.state.metrics === true ? 'metrics-server (metrics.k8s.io)' : 'off (up --metrics)'}`,
    `  nodes       ${report.state.nodes.length > 0 ? report.state.nodes.join(', ') : '(none)'}`,
  ];
  for (const c of report.components) {
    const what = c.running ? (c.listening ? 'running' : 'running, port closed') : 'NOT RUNNING';
    lines.push(
      `  ${c.name.padEnd(24)} pid ${String(c.pid).padEnd(8)} port ${String(c.port).padEnd(6)} ${what}`,
    );
  }
  lines.push(
    report.healthy ? 'healthy' : 'UNHEALTHY (logs in logs/; `seedcast dev-cluster up` starts it again)',
  );
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`seedcast dev-cluster: ${errorMessage(err)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action === undefined || extra.length > 0 || !['up', 'down', 'status'].includes(action)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const dir = values.dir ?? defaultDir();
  const log = (line: string) => process.stderr.write(`[dev-cluster] ${line}\n`);
  try {
    switch (action) {
      case 'up': {
        const state = await up({
          dir,
          nodes: parseCount('--nodes', values.nodes, 4),
          gpusPerNode: parseCount('--gpus-per-node', values['gpus-per-node'], 8),
          build: !values['no-build'],
          metrics: values.metrics,
          ...(values['pod-cidr'] === undefined ? {} : { podCidr: values['pod-cidr'] }),
          log,
        });
        log(`kubeconfig: export KUBECONFIG=${state.kubeconfig}`);
        process.stdout.write(`${state.kubeconfig}\n`);
        return 0;
      }
      case 'down': {
        const stopped = await down({ dir, log });
        log(stopped ? `dev cluster in ${dir} stopped` : `no dev cluster in ${dir}`);
        return 0;
      }
      default: {
        const report = await status({ dir });
        process.stdout.write(`${values.json ? JSON.stringify(report, null, 2) : formatStatus(report)}\n`);
        if (report.state === undefined) return 3;
        return report.healthy ? 0 : 1;
      }
    }
  } catch (err) {
    const code = err instanceof SeedcastError ? ` [${err.code}]` : '';
    process.stderr.write(`seedcast dev-cluster ${action}: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      'gpus-per-node': { type: 'string' },
      dir: { type: 'string' },
      'pod-cidr': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      metrics: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
