// The real cluster side: WeightTransfers listed and watched in the agent's own namespace (with
// bookmarks, relisting on 410 Gone or errors), status entries written with server-side apply
// under the agent's own field manager, and annotations merge-patched onto its own pod.
import { setTimeout as sleep } from 'node:timers/promises';
import { API_VERSION, FieldManagers, GROUP, Kinds, Plurals, VERSION } from '../../api/v1alpha1/names.ts';
import { formatIssues } from '../../api/v1alpha1/validate.ts';
import { weightTransfer } from '../../api/v1alpha1/weighttransfer.ts';
import { errorMessage } from '../../shared/errors.ts';
import { type KubeClient, type KubeObject, type ResourceRef, Resources } from '../../shared/kube.ts';
import type { Logger } from '../../shared/log.ts';
import type { StatusFragment, StatusSink, TransferEvents, TransferSource } from './types.ts';

const transfers = (namespace: string): ResourceRef => ({
  group: GROUP,
  version: VERSION,
  plural: Plurals.WeightTransfer,
  namespace,
});

export class KubeTransferSource implements TransferSource {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #log: Logger;

  constructor(client: KubeClient, namespace: string, log: Logger) {
    this.#client = client;
    this.#namespace = namespace;
    this.#log = log;
  }

  async run(events: TransferEvents, signal: AbortSignal): Promise<void> {
    const ref = transfers(this.#namespace);
    let backoff = 500;
    while (!signal.aborted) {
      try {
        const list = await this.#client.list<KubeObject>(ref);
        const names = new Set<string>();
        for (const item of list.items) {
          names.add(item.metadata.name);
          this.#deliver(events, item);
        }
        for (const name of this.#known) if (!names.has(name)) events.deleted(name);
        this.#known = names;
        let resourceVersion = list.metadata.resourceVersion;
        backoff = 500;
        while (!signal.aborted) {
          const ended = await this.#client.watch<KubeObject>(
            ref,
            { resourceVersion, timeoutSeconds: 300 },
            (event) => {
              if (event.type === 'ERROR') return;
              resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
              if (event.type === 'BOOKMARK') return;
              const object = event.object as KubeObject;
              if (event.type === 'DELETED') {
                this.#known.delete(object.metadata.name);
                events.deleted(object.metadata.name);
              } else {
                this.#known.add(object.metadata.name);
                this.#deliver(events, object);
              }
            },
            signal,
          );
          if (ended !== undefined) {
            // 410 Gone (or another watch error): relist.
            this.#log.debug({ code: ended.code, message: ended.message }, 'watch ended, relisting');
            break;
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn({ err: errorMessage(err), backoffMs: backoff }, 'watching WeightTransfers failed');
        await sleep(backoff + Math.random() * backoff, undefined, { signal }).catch(() => {});
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }

  #known = new Set<string>();

  #deliver(events: TransferEvents, object: KubeObject): void {
    const parsed = weightTransfer.safeParse(object);
    if (!parsed.success) {
      this.#log.warn(
        { transfer: object.metadata.name, issues: formatIssues(parsed.error) },
        'ignoring an invalid WeightTransfer',
      );
      return;
    }
    events.upsert(parsed.data);
  }
}

export class KubeStatusSink implements StatusSink {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #pod: string;

  constructor(client: KubeClient, namespace: string, pod: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#pod = pod;
  }

  async applyStatus(transfer: string, fragment: StatusFragment): Promise<void> {
    await this.#client.apply(
      { ...transfers(this.#namespace), name: transfer, subresource: 'status' },
      {
        apiVersion: API_VERSION,
        kind: Kinds.WeightTransfer,
        metadata: { name: transfer, namespace: this.#namespace },
        status: fragment,
      },
      FieldManagers.agent(this.#pod),
      true,
    );
  }

  async announce(annotations: Record<string, string | null>): Promise<Record<string, string> | undefined> {
    const pod = await this.#client.mergePatch(
      { ...Resources.pods, namespace: this.#namespace, name: this.#pod },
      { metadata: { annotations } },
      FieldManagers.agent(this.#pod),
    );
    return pod.metadata.annotations;
  }
}
