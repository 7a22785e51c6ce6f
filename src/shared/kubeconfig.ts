// Where the API server is and how to authenticate to it, for the common cases, without loading
// @kubernetes/client-node (~0.3 s of CPU per process: every agent pays it at start, and a
// scale-out starts many agents on one node). Covered: the in-cluster service account, and
// kubeconfig files whose current context uses a server URL, a CA (data or file), client
// certificates (data or files), a bearer token or token file, insecure-skip-tls-verify and
// tls-server-name. Anything else (exec plugins, auth providers, basic auth, merged KUBECONFIG
// lists) returns undefined and the caller falls back to @kubernetes/client-node.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import YAML from 'yaml';
import { SeedcastError } from './errors.ts';

export interface ApiConnection {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  skipTLSVerify: boolean;
  tlsServerName?: string;
  /** Lower-case header names (`authorization`). */
  headers: Record<string, string>;
  /** Where it came from, for messages. */
  source: string;
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Named<T> {
  name?: string;
  cluster?: T;
  user?: T;
  context?: T;
}

type Fields = Record<string, unknown>;

/**
 * The connection for `file` (explicit), else as client-node's loadFromDefault would pick it:
 * $KUBECONFIG, ~/.kube/config, then the in-cluster service account. Undefined: not a case this
 * loader covers (use client-node). Throws SEEDCAST_ERR_CONFIG for a file that is broken.
 */
export function loadApiConnection(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir = SERVICE_ACCOUNT,
): ApiConnection | undefined {
  if (file !== undefined && file !== '') return fromFile(file);
  const list = env.KUBECONFIG;
  if (list !== undefined && list !== '') {
    const paths = list.split(delimiter).filter((p) => p !== '');
    return paths.length === 1 ? fromFile(paths[0] as string) : undefined;
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFile(home);
  return inCluster(env, serviceAccountDir);
}

function inCluster(env: NodeJS.ProcessEnv, dir: string): ApiConnection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || port === undefined || !existsSync(join(dir, 'token'))) return undefined;
  const token = readFileSync(join(dir, 'token'), 'utf8').trim();
  const caPath = join(dir, 'ca.crt');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...(existsSync(caPath) ? { ca: readFileSync(caPath) } : {}),
    skipTLSVerify: false,
    headers: { authorization: `Bearer ${token}` },
    source: 'in-cluster service account',
  };
}

function fromFile(path: string): ApiConnection | undefined {
  let doc: Fields;
  try {
    doc = (YAML.parse(readFileSync(path, 'utf8')) ?? {}) as Fields;
  } catch (err) {
    throw new SeedcastError('SEEDCAST_ERR_CONFIG', `kubeconfig ${path}: ${(err as Error).message}`);
  }
  const base = dirname(path);
  const pick = (list: unknown, key: 'cluster' | 'user' | 'context', name: unknown): Fields | undefined =>
    Array.isArray(list)
      ? ((list as Array<Named<Fields>>).find((entry) => entry.name === name)?.[key] ?? undefined)
      : undefined;
  const context = pick(doc.contexts, 'context', doc['current-context']);
  if (context === undefined)
    throw new SeedcastError('SEEDCAST_ERR_CONFIG', `kubeconfig ${path} has no current context`);
  const cluster = pick(doc.clusters, 'cluster', context.cluster);
  if (cluster === undefined || typeof cluster.server !== 'string')
    throw new SeedcastError('SEEDCAST_ERR_CONFIG', `kubeconfig ${path} has no current cluster`);
  const user = pick(doc.users, 'user', context.user) ?? {};
  const covered = new Set([
    'client-certificate',
    'client-certificate-data',
    'client-key',
    'client-key-data',
    'token',
    'tokenFile',
  ]);
  if (Object.keys(user).some((k) => !covered.has(k))) return undefined; // exec, auth-provider, …
  const bytes = (data: unknown, file: unknown): Buffer | undefined => {
    if (typeof data === 'string') return Buffer.from(data, 'base64');
    if (typeof file === 'string') return readFileSync(isAbsolute(file) ? file : join(base, file));
    return undefined;
  };
  const token =
    typeof user.token === 'string'
      ? user.token
      : typeof user.tokenFile === 'string'
        ? readFileSync(
            isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile),
            'utf8',
          ).trim()
        : undefined;
  const ca = bytes(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = bytes(user['client-certificate-data'], user['client-certificate']);
  const key = bytes(user['client-key-data'], user['client-key']);
  return {
    server: cluster.server,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    skipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(typeof cluster['tls-server-name'] === 'string' ? { tlsServerName: cluster['tls-server-name'] } : {}),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    source: path,
  };
}
