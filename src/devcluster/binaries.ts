// Where the dev-cluster binaries live and how they get there: test/cluster/build.sh builds them
// from source into ${SEEDCAST_CACHE:-~/.cache/seedcast}/bin/<name>-<version>; versions come from
// test/cluster/versions.env, the one place they are pinned.
import { spawn } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeedcastError } from '../shared/errors.ts';

export const BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
  'helm',
  'metrics-server',
] as const;
export type BinaryName = (typeof BINARIES)[number];

/** What `up` needs; helm and metrics-server are built on demand by their users. */
export const CONTROL_PLANE_BINARIES: readonly BinaryName[] = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
];

/** Repo root: this file is src/devcluster/ (or dist/devcluster/ in a build). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUILD_SCRIPT = join(REPO_ROOT, 'test/cluster/build.sh');
const VERSIONS_FILE = join(REPO_ROOT, 'test/cluster/versions.env');

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.SEEDCAST_CACHE;
  return dir !== undefined && dir !== '' ? dir : join(homedir(), '.cache', 'seedcast');
}

export interface Versions {
  kubernetes: string;
  etcd: string;
  kwok: string;
  helm: string;
  metricsServer: string;
}

export async function readVersions(file = VERSIONS_FILE): Promise<Versions> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SeedcastError('SEEDCAST_ERR_CONFIG', `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
      retryable: false,
    });
  }
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_]+)=(\S+)\s*$/.exec(line);
    if (m !== null) vars.set(m[1]!, m[2]!);
  }
  const need = (key: string): string => {
    const value = vars.get(key);
    if (value === undefined) {
      throw new SeedcastError('SEEDCAST_ERR_CONFIG', `${file} does not set ${key}`, { retryable: false });
    }
    return value;
  };
  return {
    kubernetes: need('KUBERNETES_VERSION'),
    etcd: need('ETCD_VERSION'),
    kwok: need('KWOK_VERSION'),
    helm: need('HELM_VERSION'),
    metricsServer: need('METRICS_SERVER_VERSION'),
  };
}

export function versionOf(name: BinaryName, v: Versions): string {
  switch (name) {
    case 'etcd':
      return v.etcd;
    case 'kwok':
      return v.kwok;
    case 'helm':
      return v.helm;
    case 'metrics-server':
      return v.metricsServer;
    default:
      return v.kubernetes;
  }
}

/** Absolute path of the pinned build of `name` (it may not exist yet). */
export function binaryPath(name: BinaryName, v: Versions, env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), 'bin', `${name}-${versionOf(name, v)}`);
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function missingBinaries(names: readonly BinaryName[], v: Versions): Promise<BinaryName[]> {
  const missing: BinaryName[] = [];
  for (const name of names) if (!(await isExecutable(binaryPath(name, v)))) missing.push(name);
  return missing;
}

/**
 * Builds whatever of `names` is missing by running test/cluster/build.sh; its progress goes to
 * our stderr. Returns the paths of all of `names`.
 */
export async function ensureBinaries(
  names: readonly BinaryName[],
  options: { build?: boolean; log?: (line: string) => void } = {},
): Promise<Record<BinaryName, string>> {
  const versions = await readVersions();
  const missing = await missingBinaries(names, versions);
  if (missing.length > 0) {
    if (options.build === false) {
      throw new SeedcastError(
        'SEEDCAST_ERR_CLUSTER',
        `missing binaries: ${missing.join(', ')} (build them with: bash test/cluster/build.sh)`,
        { retryable: false },
      );
    }
    options.log?.(`building ${missing.join(', ')} from source (first time only; see docs/dev-cluster.md)`);
    await runBuild(missing);
    const still = await missingBinaries(missing, versions);
    if (still.length > 0) {
      throw new SeedcastError(
        'SEEDCAST_ERR_CLUSTER',
        `build.sh finished but ${still.join(', ')} are missing`,
        {
          retryable: false,
        },
      );
    }
  }
  const paths = {} as Record<BinaryName, string>;
  for (const name of BINARIES) paths[name] = binaryPath(name, versions);
  return paths;
}

function runBuild(names: readonly BinaryName[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // stdout -> our stderr so a caller's stdout stays machine-readable (the kubeconfig path).
    const child = spawn('bash', [BUILD_SCRIPT, ...names], { stdio: ['ignore', 2, 2] });
    child.on('error', (err) =>
      reject(
        new SeedcastError('SEEDCAST_ERR_CLUSTER', `cannot run ${BUILD_SCRIPT}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new SeedcastError(
            'SEEDCAST_ERR_CLUSTER',
            `${BUILD_SCRIPT} failed (${signal ?? `exit ${code}`}); its output above says why`,
            { retryable: false },
          ),
        );
    });
  });
}
