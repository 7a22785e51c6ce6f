// Watches a scale-out from the outside, the way an operator would with kubectl: polls pods and
// WeightTransfers of one namespace and records when each pod was scheduled, announced by its
// agent, verified and Ready. Pods are listed before transfers in every round, so a pod seen
// Ready without a verified transfer in the (newer) transfer list — and without its agent's
// record on the pod (seedcast.dev/weights-verified) naming a transfer seen to name it — is a real
// violation.
import {
  Annotations,
  GROUP,
  Labels,
  Plurals,
  parseWeightsVerified,
  recordNames,
  VERSION,
  WEIGHTS_READY,
} from '../api/v1alpha1/names.ts';
import type { WeightTransfer } from '../api/v1alpha1/weighttransfer.ts';
import type { KubeClient, KubeObject } from '../shared/kube.ts';
import { Resources } from '../shared/kube.ts';
import type { PodObservation } from './timeline.ts';

interface Pod extends KubeObject {
  spec: { nodeName?: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

export interface ObserverOptions {
  kube: KubeClient;
  namespace: string;
  weightSource: string;
  intervalMs?: number;
  /** Reads the per-rank weight digests a pod's engine reports (fixture engine status file). */
  readDigests?: (pod: { namespace: string; name: string; uid: string }) => Promise<string[] | undefined>;
  now?: () => number;
}

export class ScaleOutObserver {
  readonly pods = new Map<string, PodObservation>();
  transfers: WeightTransfer[] = [];
  /** Every transfer any round saw, by name (the last version seen). */
  readonly #everSeen = new Map<string, WeightTransfer>();
  readonly #options: ObserverOptions;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> = Promise.resolve();
  #listeners: Array<() => void> = [];

  constructor(options: ObserverOptions) {
    this.#options = options;
  }

  start(): void {
    const tick = () => {
      this.#round = this.poll()
        .catch(() => undefined)
        .finally(() => {
          if (this.#timer !== undefined) this.#timer = setTimeout(tick, this.#options.intervalMs ?? 250);
        });
    };
    this.#timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  /**
   * A transfer known to have existed though a poll may have missed it (the fault suite deletes
   * transfers it caught in their first few hundred ms): a pod's record naming it then counts, as it
   * does for the controller.
   */
  remember(transfer: WeightTransfer): void {
    this.#everSeen.set(transfer.metadata.name, transfer);
  }

  /** Called after every round (for live views and waits). */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Pods that exist now (not deleted). */
  current(): PodObservation[] {
    return [...this.pods.values()].filter((p) => p.deletedAt === undefined);
  }

  async poll(): Promise<void> {
    const { kube, namespace, weightSource } = this.#options;
    const now = (this.#options.now ?? Date.now)();
    const pods = await kube.list<Pod>(
      { ...Resources.pods, namespace },
      { labelSelector: `${Labels.weightSource}=${weightSource}` },
    );
    const transfers = await kube.list<WeightTransfer>({
      group: GROUP,
      version: VERSION,
      plural: Plurals.WeightTransfer,
      namespace,
    });
    this.transfers = transfers.items.filter((t) => t.spec.weightSource === weightSource);
    for (const t of this.transfers) this.#everSeen.set(t.metadata.name, t);
    const seen = new Set<string>();
    for (const pod of pods.items) {
      const uid = pod.metadata.uid ?? '';
      seen.add(uid);
      let obs = this.pods.get(uid);
      if (obs === undefined) {
        obs = {
          name: pod.metadata.name,
          uid,
          createdAt: pod.metadata.creationTimestamp ? Date.parse(pod.metadata.creationTimestamp) : now,
        };
        this.pods.set(uid, obs);
      }
      if (pod.metadata.deletionTimestamp !== undefined) obs.deletedAt ??= now;
      if (pod.spec.nodeName !== undefined) obs.scheduledAt ??= now;
      if (pod.metadata.annotations?.[Annotations.fingerprint] !== undefined) obs.agentUpAt ??= now;
      if (pod.status?.conditions?.some((c) => c.type === WEIGHTS_READY && c.status === 'True') === true)
        obs.weightsReadyAt ??= now;
      const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      if (ready && obs.readyAt === undefined) {
        obs.readyAt = now;
        // Verified: the pod's receiver entry says so, or its agent's record on the pod (written
        // just before that entry) names a transfer this observer saw naming the pod.
        const record = parseWeightsVerified(pod.metadata.annotations?.[Annotations.weightsVerified]);
        const recordedIn = record === undefined ? undefined : this.#everSeen.get(record.transfer);
        const verified =
          (record !== undefined &&
            recordedIn !== undefined &&
            recordNames(record, { name: recordedIn.metadata.name, spec: recordedIn.spec }, uid)) ||
          this.transfers.some((t) =>
            t.status?.receivers?.some(
              (r) =>
                r.pod === obs!.name &&
                r.verified &&
                r.phase === 'Succeeded' &&
                t.spec.receivers.some((x) => x.pod === obs!.name && x.uid === uid),
            ),
          );
        if (!verified) {
          obs.readyBeforeVerified = true;
          // What the observer saw, for the report: every transfer naming the pod.
          obs.readyBeforeVerifiedDetail = `${this.transfers
            .filter((t) => t.spec.receivers.some((x) => x.pod === obs!.name))
            .map((t) => {
              const e = t.status?.receivers?.find((r) => r.pod === obs!.name);
              const uidOk = t.spec.receivers.some((x) => x.pod === obs!.name && x.uid === uid);
              return `${t.metadata.name} ${t.status?.phase ?? 'Pending'} entry=${e?.phase ?? '-'}/${e?.verified ?? '-'} uid ${uidOk ? 'ok' : 'other'}`;
            })
            .join(
              '; ',
            )}; record on the pod: ${pod.metadata.annotations?.[Annotations.weightsVerified] ?? 'none'}${
            record !== undefined && recordedIn === undefined ? ' (a transfer this observer never saw)' : ''
          }`;
        }
      }
      if (ready && obs.rankDigests === undefined && this.#options.readDigests !== undefined) {
        obs.rankDigests = await this.#options
          .readDigests({ namespace, name: pod.metadata.name, uid })
          .catch(() => undefined);
      }
    }
    for (const obs of this.pods.values()) if (!seen.has(obs.uid)) obs.deletedAt ??= now;
    for (const listener of this.#listeners) listener();
  }

  /** Resolves when `predicate` holds after a round, or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners = this.#listeners.filter((l) => l !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== check);
        resolve();
      };
      this.#listeners.push(check);
      check();
    });
  }
}
