// A file-backed stand-in for the API server, for process-level tests and the demo:
//   <dir>/transfers/<name>.json            WeightTransfer objects (written by the test or demo)
//   <dir>/status/<name>/<manager>.json     each agent's applied status fragment
//   <dir>/pods/<pod>.json                  annotations each agent announced
// Reads merge the fragments the way server-side apply merges list-map entries.
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FieldManagers } from '../../api/v1alpha1/names.ts';
import { formatIssues } from '../../api/v1alpha1/validate.ts';
import { type WeightTransfer, weightTransfer } from '../../api/v1alpha1/weighttransfer.ts';
import { KubeApiError } from '../../shared/kube.ts';
import type { Logger } from '../../shared/log.ts';
import type { StatusFragment, StatusSink, TransferEvents, TransferSource } from './types.ts';

function writeJson(file: string, value: unknown): void {
  writeFileSync(`${file}.${process.pid}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${file}.${process.pid}.tmp`, file);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

const list = (dir: string): string[] => {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
};

/** The WeightTransfer with every agent's fragment merged into its status (raw, unvalidated). */
export function readLocalTransfer(dir: string, name: string): Record<string, unknown> | undefined {
  const object = readJson(join(dir, 'transfers', `${name}.json`)) as Record<string, unknown> | undefined;
  if (object === undefined) return undefined;
  const status: Record<string, unknown> = { ...((object.status as Record<string, unknown>) ?? {}) };
  const receivers = new Map<string, unknown>();
  const rendezvous = new Map<number, unknown>();
  for (const file of list(join(dir, 'status', name)).sort()) {
    const fragment = readJson(join(dir, 'status', name, file)) as StatusFragment | undefined;
    if (fragment === undefined) continue;
    for (const entry of fragment.receivers ?? []) receivers.set(entry.pod, entry);
    for (const entry of fragment.rendezvous ?? []) rendezvous.set(entry.rank, entry);
    if (fragment.seed !== undefined) status.seed = fragment.seed;
  }
  if (receivers.size > 0) status.receivers = [...receivers.values()];
  if (rendezvous.size > 0)
    status.rendezvous = [...rendezvous.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  return Object.keys(status).length > 0 ? { ...object, status } : object;
}

export function writeLocalTransfer(
  dir: string,
  transfer: Record<string, unknown> & { metadata: { name: string; [key: string]: unknown } },
): void {
  mkdirSync(join(dir, 'transfers'), { recursive: true });
  writeJson(join(dir, 'transfers', `${transfer.metadata.name}.json`), transfer);
}

export class LocalTransferSource implements TransferSource {
  readonly #dir: string;
  readonly #namespace: string;
  readonly #log: Logger;
  readonly #pollMs: number;

  constructor(dir: string, namespace: string, log: Logger, pollMs = 100) {
    this.#dir = dir;
    this.#namespace = namespace;
    this.#log = log;
    this.#pollMs = pollMs;
  }

  async run(events: TransferEvents, signal: AbortSignal): Promise<void> {
    const seen = new Map<string, string>();
    const invalid = new Set<string>();
    while (!signal.aborted) {
      const names = new Set(list(join(this.#dir, 'transfers')).map((f) => f.slice(0, -5)));
      for (const name of names) {
        const raw = readLocalTransfer(this.#dir, name);
        if (raw === undefined) continue;
        const text = JSON.stringify(raw);
        if (seen.get(name) === text) continue;
        seen.set(name, text);
        const parsed = weightTransfer.safeParse(raw);
        if (!parsed.success) {
          if (!invalid.has(text))
            this.#log.warn(
              { transfer: name, issues: formatIssues(parsed.error) },
              'ignoring an invalid WeightTransfer',
            );
          invalid.add(text);
          continue;
        }
        const transfer: WeightTransfer = parsed.data;
        if ((transfer.metadata.namespace ?? this.#namespace) !== this.#namespace) continue;
        events.upsert(transfer);
      }
      for (const name of [...seen.keys()]) {
        if (!names.has(name)) {
          seen.delete(name);
          events.deleted(name);
        }
      }
      await sleep(this.#pollMs, undefined, { signal }).catch(() => {});
    }
  }
}

export class LocalStatusSink implements StatusSink {
  readonly #dir: string;
  readonly #pod: string;

  constructor(dir: string, pod: string) {
    this.#dir = dir;
    this.#pod = pod;
  }

  async applyStatus(transfer: string, fragment: StatusFragment): Promise<void> {
    // As the API server answers for a deleted object (a status write never creates one).
    if (readJson(join(this.#dir, 'transfers', `${transfer}.json`)) === undefined)
      throw new KubeApiError(404, 'NotFound', `weighttransfers "${transfer}" not found`, 'local status');
    const dir = join(this.#dir, 'status', transfer);
    mkdirSync(dir, { recursive: true });
    writeJson(join(dir, `${FieldManagers.agent(this.#pod)}.json`), fragment);
  }

  async announce(annotations: Record<string, string | null>): Promise<Record<string, string> | undefined> {
    const dir = join(this.#dir, 'pods');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${this.#pod}.json`);
    const current =
      (readJson(file) as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
    // As a JSON merge patch: null removes the key.
    const merged: Record<string, string> = { ...current };
    for (const [key, value] of Object.entries(annotations))
      if (value === null) delete merged[key];
      else merged[key] = value;
    writeJson(file, { annotations: merged });
    return merged;
  }
}
