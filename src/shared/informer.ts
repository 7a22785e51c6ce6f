// list+watch informer on KubeClient: a local cache of one resource kind, kept current by a watch
// with bookmarks; relists on 410 Gone, rewatches from the last resourceVersion after a stream
// ends, backs off on errors, and replays the cache periodically (resync, with jitter) so level-
// triggered reconcilers recover from anything a missed event could have hidden.
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from './errors.ts';
import type { KubeClient, KubeObject, ResourceRef, WatchEvent } from './kube.ts';
import type { Logger } from './log.ts';

export type InformerEventType = 'add' | 'update' | 'delete' | 'resync';
export type InformerHandler<T> = (type: InformerEventType, object: T, old?: T) => void;

export interface InformerOptions {
  resource: Omit<ResourceRef, 'name' | 'subresource'>;
  /** Watch one namespace; all namespaces when unset (cluster-scoped kinds: unset). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Replay every cached object to handlers this often (±10 % jitter); 0 disables. */
  resyncMs?: number;
  /** Server-side watch timeout; the watch is reopened from the last resourceVersion. */
  watchTimeoutSeconds?: number;
  pageSize?: number;
  logger?: Logger;
}

export function objectKey(object: { metadata: { name: string; namespace?: string } }): string {
  return object.metadata.namespace === undefined || object.metadata.namespace === ''
    ? object.metadata.name
    : `${object.metadata.namespace}/${object.metadata.name}`;
}

/** True when resourceVersion `a` is newer than `b` (they are etcd revisions in practice). */
export function newerVersion(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined) return false;
  if (b === undefined) return true;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) > BigInt(b);
  return a !== b;
}

function jitter(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly #client: KubeClient;
  readonly #options: InformerOptions;
  readonly #store = new Map<string, T>();
  readonly #handlers: InformerHandler<T>[] = [];
  #resourceVersion = '';
  #synced = false;
  #syncedWaiters: Array<() => void> = [];
  readonly #what: string;

  constructor(client: KubeClient, options: InformerOptions) {
    this.#client = client;
    this.#options = options;
    this.#what = `${options.resource.plural}${options.resource.group === '' ? '' : `.${options.resource.group}`}`;
  }

  on(handler: InformerHandler<T>): this {
    this.#handlers.push(handler);
    return this;
  }

  get synced(): boolean {
    return this.#synced;
  }

  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncedWaiters.push(resolve));
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  list(filter?: (object: T) => boolean): T[] {
    const all = [...this.#store.values()];
    return filter === undefined ? all : all.filter(filter);
  }

  /**
   * Write-through of the controller's own writes: the reconciler that just created or changed
   * an object sees it on its next pass even before the watch delivers it (no double creates).
   */
  upsert(object: T): void {
    const key = objectKey(object);
    const old = this.#store.get(key);
    if (old !== undefined && !newerVersion(object.metadata.resourceVersion, old.metadata.resourceVersion))
      return;
    this.#store.set(key, object);
  }

  forget(key: string): void {
    this.#store.delete(key);
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const resync = this.#options.resyncMs ?? 0;
    let resyncTimer: NodeJS.Timeout | undefined;
    const scheduleResync = () => {
      resyncTimer = setTimeout(() => {
        for (const object of this.#store.values()) this.#emit('resync', object);
        scheduleResync();
      }, jitter(resync));
      resyncTimer.unref();
    };
    if (resync > 0) scheduleResync();
    let failures = 0;
    let needList = true;
    try {
      while (!signal.aborted) {
        try {
          if (needList) {
            await this.#relist();
            needList = false;
          }
          const error = await this.#client.watch<T>(
            { ...this.#options.resource, namespace: this.#options.namespace },
            {
              resourceVersion: this.#resourceVersion,
              labelSelector: this.#options.labelSelector,
              fieldSelector: this.#options.fieldSelector,
              timeoutSeconds: jitter(this.#options.watchTimeoutSeconds ?? 300),
            },
            (event) => this.#onWatchEvent(event),
            signal,
          );
          failures = 0;
          if (error !== undefined) {
            // 410 Gone: our resourceVersion was compacted away; anything else: start over too.
            this.#options.logger?.info(
              { resource: this.#what, code: error.code },
              'watch expired, relisting',
            );
            needList = true;
          }
        } catch (err) {
          if (signal.aborted) break;
          failures += 1;
          needList = needList || failures > 3;
          const delay = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
          this.#options.logger?.warn(
            { resource: this.#what, err: errorMessage(err), retryInMs: delay },
            'watch failed',
          );
          await sleep(delay, undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      if (resyncTimer !== undefined) clearTimeout(resyncTimer);
    }
  }

  async #relist(): Promise<void> {
    const seen = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#client.request<{
        metadata: { resourceVersion: string; continue?: string };
        items: T[];
      }>('GET', this.#listPath(), {
        query: {
          labelSelector: this.#options.labelSelector,
          fieldSelector: this.#options.fieldSelector,
          limit: this.#options.pageSize ?? 500,
          continue: continueToken,
        },
      });
      for (const item of page.items) seen.set(objectKey(item), item);
      resourceVersion = page.metadata.resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken !== undefined);
    for (const [key, old] of this.#store) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#emit('delete', old);
      }
    }
    for (const [key, object] of seen) {
      const old = this.#store.get(key);
      this.#store.set(key, object);
      if (old === undefined) this.#emit('add', object);
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion)
        this.#emit('update', object, old);
    }
    this.#resourceVersion = resourceVersion;
    if (!this.#synced) {
      this.#synced = true;
      const waiters = this.#syncedWaiters;
      this.#syncedWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #listPath(): string {
    const { group, version, plural } = this.#options.resource;
    let path = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
    if (this.#options.namespace !== undefined)
      path += `/namespaces/${encodeURIComponent(this.#options.namespace)}`;
    return `${path}/${plural}`;
  }

  #onWatchEvent(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') return;
    if (event.object.metadata.resourceVersion !== undefined)
      this.#resourceVersion = event.object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const object = event.object;
    const key = objectKey(object);
    const old = this.#store.get(key);
    if (event.type === 'DELETED') {
      this.#store.delete(key);
      this.#emit('delete', object);
      return;
    }
    // A write-through copy may already be newer than a late event; keep the newer one.
    if (old !== undefined && newerVersion(old.metadata.resourceVersion, object.metadata.resourceVersion))
      return;
    this.#store.set(key, object);
    this.#emit(old === undefined ? 'add' : 'update', object, old);
  }

  #emit(type: InformerEventType, object: T, old?: T): void {
    for (const handler of this.#handlers) {
      try {
        handler(type, object, old);
      } catch (err) {
        this.#options.logger?.error(
          { resource: this.#what, err: errorMessage(err) },
          'informer handler threw',
        );
      }
    }
  }
}
