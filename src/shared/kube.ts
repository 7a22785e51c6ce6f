// A small Kubernetes REST client on undici. The kubeconfig is read by ./kubeconfig.ts for the
// common cases (in-cluster service account, certificates, tokens) and by @kubernetes/client-node,
// loaded only then, for the rest (exec plugins, auth providers); this client adds what the
// operator needs and the generated clients make awkward: server-side apply on any resource and
// subresource (status, scale), and watches with bookmarks.
import type https from 'node:https';
import { Agent, request } from 'undici';
import { SeedcastError } from './errors.ts';
import { type ApiConnection, loadApiConnection } from './kubeconfig.ts';

export interface ResourceRef {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: 'status' | 'scale' | 'token';
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<Record<string, unknown>>;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeList<T = KubeObject> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

export type WatchEvent<T = KubeObject> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  | { type: 'BOOKMARK'; object: { metadata: { resourceVersion: string } } }
  | { type: 'ERROR'; object: { code?: number; reason?: string; message?: string } };

/** An API error with the HTTP status, the Status reason and the server's message. */
export class KubeApiError extends SeedcastError {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string, what: string) {
    super(
      status === 404
        ? 'SEEDCAST_ERR_NOT_FOUND'
        : status === 409
          ? 'SEEDCAST_ERR_CONFLICT'
          : 'SEEDCAST_ERR_KUBE',
      `${what}: ${status} ${reason}: ${message}`,
      // 4xx other than conflict/throttling will not change on retry.
      { retryable: status >= 500 || status === 409 || status === 429 || status === 0 },
    );
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409;

export function resourcePath(ref: ResourceRef): string {
  let path = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  if (ref.namespace !== undefined) path += `/namespaces/${encodeURIComponent(ref.namespace)}`;
  path += `/${ref.plural}`;
  if (ref.name !== undefined) path += `/${encodeURIComponent(ref.name)}`;
  if (ref.subresource !== undefined) path += `/${ref.subresource}`;
  return path;
}

/** Common core/apps resources by name, so call sites read like the domain. */
export const Resources = {
  pods: { group: '', version: 'v1', plural: 'pods' },
  events: { group: 'events.k8s.io', version: 'v1', plural: 'events' },
  secrets: { group: '', version: 'v1', plural: 'secrets' },
  serviceAccounts: { group: '', version: 'v1', plural: 'serviceaccounts' },
  namespaces: { group: '', version: 'v1', plural: 'namespaces' },
  nodes: { group: '', version: 'v1', plural: 'nodes' },
  deployments: { group: 'apps', version: 'v1', plural: 'deployments' },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
} as const satisfies Record<string, Omit<ResourceRef, 'namespace' | 'name'>>;

export interface KubeClientOptions {
  /** Path to a kubeconfig; defaults to SEEDCAST_KUBECONFIG, KUBECONFIG, ~/.kube/config, in-cluster. */
  kubeconfig?: string;
  /** Per-request timeout (ms) for non-watch calls. */
  timeoutMs?: number;
}

export class KubeClient {
  readonly server: string;
  /** Where the connection came from (a kubeconfig path, the in-cluster service account). */
  readonly source: string;
  readonly #connection: ApiConnection;
  readonly #dispatcher: Agent;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  private constructor(connection: ApiConnection, dispatcher: Agent, timeoutMs: number) {
    this.server = connection.server.replace(/\/$/, '');
    this.source = connection.source;
    this.#connection = connection;
    this.#dispatcher = dispatcher;
    this.#headers = connection.headers;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * The same client (connections shared) whose non-watch calls give up after `timeoutMs`. Close
   * the original, not this view.
   */
  withTimeout(timeoutMs: number): KubeClient {
    return new KubeClient(this.#connection, this.#dispatcher, timeoutMs);
  }

  static async create(options: KubeClientOptions = {}): Promise<KubeClient> {
    const file = options.kubeconfig ?? process.env.SEEDCAST_KUBECONFIG;
    const connection = loadApiConnection(file) ?? (await viaClientNode(file));
    const dispatcher = new Agent({
      connect: {
        ca: connection.ca,
        cert: connection.cert,
        key: connection.key,
        rejectUnauthorized: !connection.skipTLSVerify,
        servername: connection.tlsServerName,
      },
      keepAliveTimeout: 30_000,
      connections: 32,
    });
    return new KubeClient(connection, dispatcher, options.timeoutMs ?? 30_000);
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | number | boolean | undefined>;
      /** Return the body as text (e.g. `/metrics`), not parsed JSON. */
      text?: boolean;
    } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      ...this.#headers,
      accept: options.text === true ? 'text/plain' : 'application/json',
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/json';
    }
    const what = `${method} ${path}`;
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, {
        method,
        headers,
        body,
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (err) {
      throw new KubeApiError(0, 'ConnectionFailed', (err as Error).message, what);
    }
    const text = await response.body.text();
    if (options.text === true && response.statusCode < 400) return text as T;
    if (response.statusCode >= 400) {
      let reason = 'Unknown';
      let message = text.slice(0, 2000);
      try {
        const status = JSON.parse(text) as { reason?: string; message?: string };
        reason = status.reason ?? reason;
        message = status.message ?? message;
      } catch {
        // not a Status object; keep the raw text
      }
      throw new KubeApiError(response.statusCode, reason, message, what);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  get<T = KubeObject>(ref: ResourceRef): Promise<T> {
    return this.request<T>('GET', resourcePath(ref));
  }

  /** Like get, but undefined when the object does not exist. */
  async find<T = KubeObject>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.get<T>(ref);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<T = KubeObject>(
    ref: ResourceRef,
    query: { labelSelector?: string; fieldSelector?: string; resourceVersion?: string; limit?: number } = {},
  ): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(ref), { query });
  }

  create<T = KubeObject>(ref: ResourceRef, body: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>('POST', resourcePath(ref), { body, query: { fieldManager } });
  }

  /**
   * Server-side apply: `body` states the fields this manager owns; fields it no longer states
   * are removed, other managers' fields stay.
   */
  apply<T = KubeObject>(
    ref: ResourceRef & { name: string },
    body: unknown,
    fieldManager: string,
    force = true,
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref), {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force },
    });
  }

  mergePatch<T = KubeObject>(
    ref: ResourceRef & { name: string },
    body: unknown,
    fieldManager?: string,
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref), {
      body,
      contentType: 'application/merge-patch+json',
      query: { fieldManager },
    });
  }

  async delete(
    ref: ResourceRef & { name: string },
    options: { propagationPolicy?: string } = {},
  ): Promise<void> {
    try {
      await this.request('DELETE', resourcePath(ref), {
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          propagationPolicy: options.propagationPolicy ?? 'Background',
        },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * One watch request: calls `onEvent` per event until the server ends the stream, `signal`
   * aborts, or an ERROR event arrives (returned, e.g. 410 Gone means relist).
   */
  async watch<T = KubeObject>(
    ref: ResourceRef,
    query: {
      resourceVersion: string;
      labelSelector?: string;
      fieldSelector?: string;
      timeoutSeconds?: number;
    },
    onEvent: (event: WatchEvent<T>) => void,
    signal?: AbortSignal,
  ): Promise<{ code?: number; message?: string } | undefined> {
    const url = new URL(this.server + resourcePath(ref));
    url.searchParams.set('watch', 'true');
    url.searchParams.set('allowWatchBookmarks', 'true');
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const response = await request(url, {
      method: 'GET',
      headers: { ...this.#headers, accept: 'application/json' },
      dispatcher: this.#dispatcher,
      signal,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: 0,
    });
    if (response.statusCode >= 400) {
      const text = await response.body.text();
      throw new KubeApiError(
        response.statusCode,
        'WatchFailed',
        text.slice(0, 2000),
        `WATCH ${url.pathname}`,
      );
    }
    let buffered = '';
    try {
      for await (const chunk of response.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          if (line === '') continue;
          const event = JSON.parse(line) as WatchEvent<T>;
          if (event.type === 'ERROR') return event.object;
          onEvent(event);
        }
      }
    } catch (err) {
      if (signal?.aborted) return undefined;
      throw err;
    }
    return undefined;
  }
}

/** The kubeconfigs ./kubeconfig.ts does not cover (exec plugins, auth providers, merged lists). */
async function viaClientNode(file: string | undefined): Promise<ApiConnection> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (file !== undefined && file !== '') kc.loadFromFile(file);
  else kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new SeedcastError('SEEDCAST_ERR_CONFIG', 'kubeconfig has no current cluster');
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts.headers ?? {})) {
    if (typeof value === 'string') headers[key.toLowerCase()] = value;
  }
  const asBuffer = (v: unknown): Buffer | undefined =>
    v === undefined ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(String(v));
  const ca = asBuffer(opts.ca);
  const cert = asBuffer(opts.cert);
  const key = asBuffer(opts.key);
  return {
    server: cluster.server,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    skipTLSVerify: cluster.skipTLSVerify === true,
    ...(cluster.tlsServerName === undefined ? {} : { tlsServerName: cluster.tlsServerName }),
    headers,
    source: `${file ?? 'default kubeconfig'} (via @kubernetes/client-node)`,
  };
}
