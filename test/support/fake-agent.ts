// Plays the agent side of docs/agent-contract.md against a real API server, exactly as written
// there: announce on the own pod (merge patch, field manager seedcast-agent-<pod>), then server-side
// apply of the own status entries on weighttransfers/status (rendezvous + seed as a seed,
// receivers[] as a receiver). Tests decide when a transfer progresses, succeeds or fails.
import {
  Annotations,
  API_VERSION,
  FieldManagers,
  GROUP,
  Kinds,
  Labels,
  Plurals,
  type ReceiverStatus,
  TERMINAL_PHASES,
  VERSION,
  type WeightTransferSpec,
  type WeightTransferStatus,
  weightsVerifiedValue,
} from '../../src/api/v1alpha1/index.ts';
import { type KubeClient, type KubeObject, Resources } from '../../src/shared/kube.ts';

export const TRANSFERS = { group: GROUP, version: VERSION, plural: Plurals.WeightTransfer } as const;

export interface TransferObject extends KubeObject {
  spec: WeightTransferSpec;
  status?: WeightTransferStatus;
}

export interface PodObject extends KubeObject {
  status?: {
    podIP?: string;
    phase?: string;
    conditions?: Array<{ type: string; status: string; reason?: string }>;
  };
}

export const BYTES_PER_RANK = 1_000_000;

export class FakeAgents {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly fingerprint: string;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(client: KubeClient, namespace: string, fingerprint = 'fp-test') {
    this.client = client;
    this.namespace = namespace;
    this.fingerprint = fingerprint;
  }

  /** §1: the agent announces its fingerprint and endpoint on its own pod. */
  async announce(pod: string, fingerprint = this.fingerprint): Promise<void> {
    const current = await this.client.get<PodObject>({
      ...Resources.pods,
      namespace: this.namespace,
      name: pod,
    });
    const ip = current.status?.podIP ?? '127.0.0.1';
    await this.client.mergePatch(
      { ...Resources.pods, namespace: this.namespace, name: pod },
      {
        metadata: {
          annotations: { [Annotations.fingerprint]: fingerprint, [Annotations.agentEndpoint]: `${ip}:9400` },
        },
      },
      FieldManagers.agent(pod),
    );
  }

  async transfers(): Promise<TransferObject[]> {
    const list = await this.client.list<TransferObject>({ ...TRANSFERS, namespace: this.namespace });
    return list.items;
  }

  async transfer(name: string): Promise<TransferObject> {
    return this.client.get<TransferObject>({ ...TRANSFERS, namespace: this.namespace, name });
  }

  /** §3, seed side: listening on every rank. */
  async seedRendezvous(
    t: TransferObject,
    phase: 'Rendezvous' | 'Transferring' | 'Succeeded' | 'Failed' = 'Transferring',
    reason?: string,
  ) {
    const seed = t.spec.source.seed;
    if (seed === undefined) return;
    await this.#applyStatus(t.metadata.name, seed.pod, {
      rendezvous: t.spec.ports.map((p) => ({ rank: p.rank, address: `127.0.0.1:${p.port}` })),
      seed: {
        pod: seed.pod,
        phase,
        bytesSent: phase === 'Succeeded' ? t.spec.ranks * BYTES_PER_RANK : 0,
        ...(reason === undefined ? {} : { reason, message: `seed says ${reason}` }),
      },
    });
  }

  /** §3, receiver side: one entry, owned by the receiver's own field manager. */
  async receiver(
    t: TransferObject,
    pod: string,
    entry: Partial<ReceiverStatus> & Pick<ReceiverStatus, 'phase'>,
  ): Promise<void> {
    const total = t.spec.ranks * BYTES_PER_RANK;
    const done = entry.phase === 'Succeeded';
    const body: ReceiverStatus = {
      pod,
      bytesDone: done ? total : 0,
      bytesTotal: total,
      verified: done,
      startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      ...(done ? { verifiedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } : {}),
      ranks: Array.from({ length: t.spec.ranks }, (_, rank) => ({
        rank,
        bytesDone: done ? BYTES_PER_RANK : 0,
        bytesTotal: BYTES_PER_RANK,
        verified: done,
      })),
      ...entry,
    };
    await this.#applyStatus(t.metadata.name, pod, { receivers: [body] });
  }

  /** §3a: the receiver's record on its own pod, written before its entry says Succeeded. */
  async recordVerified(t: TransferObject, pod: string): Promise<void> {
    await this.client.mergePatch(
      { ...Resources.pods, namespace: this.namespace, name: pod },
      {
        metadata: {
          annotations: {
            [Annotations.weightsVerified]: weightsVerifiedValue(t.spec.source.type, t.metadata.name),
          },
        },
      },
      FieldManagers.agent(pod),
    );
  }

  /**
   * §3a: the pod's engine restarted empty after its weights were verified — the agent removes its
   * record and dates the loss on its own pod, in one merge patch.
   */
  async loseWeights(pod: string, at = new Date()): Promise<void> {
    await this.client.mergePatch(
      { ...Resources.pods, namespace: this.namespace, name: pod },
      {
        metadata: {
          annotations: { [Annotations.weightsVerified]: null, [Annotations.weightsLost]: at.toISOString() },
        },
      },
      FieldManagers.agent(pod),
    );
  }

  /** Every receiver (and the seed) reports success, verified — each receiver records it first. */
  async succeed(t: TransferObject): Promise<void> {
    if (t.spec.source.type === 'Seed') await this.seedRendezvous(t, 'Succeeded');
    for (const r of t.spec.receivers) {
      await this.recordVerified(t, r.pod);
      await this.receiver(t, r.pod, { phase: 'Succeeded', gbps: 12.5 });
    }
  }

  async fail(t: TransferObject, pod: string, reason: string): Promise<void> {
    await this.receiver(t, pod, {
      phase: 'Failed',
      reason,
      message: `agent of ${pod}: ${reason}`,
      verified: false,
    });
  }

  /**
   * Auto-pilot: announce every Running pod labelled with `source` and let each active transfer
   * succeed `delayMs` after the agents first saw it — unless `hold(transfer)` says to wait.
   */
  start(
    source: string,
    options: { delayMs?: number; hold?: (t: TransferObject) => boolean; intervalMs?: number } = {},
  ): void {
    const seen = new Map<string, number>();
    const announced = new Set<string>();
    this.#loop = (async () => {
      while (!this.#stopped) {
        try {
          const pods = await this.client.list<PodObject>(
            { ...Resources.pods, namespace: this.namespace },
            { labelSelector: `${Labels.weightSource}=${source}` },
          );
          for (const pod of pods.items) {
            const key = pod.metadata.uid ?? pod.metadata.name;
            if (announced.has(key) || pod.metadata.deletionTimestamp !== undefined) continue;
            if (
              pod.status?.phase !== 'Running' ||
              pod.metadata.annotations?.[Annotations.fingerprint] !== undefined
            ) {
              if (pod.metadata.annotations?.[Annotations.fingerprint] !== undefined) announced.add(key);
              continue;
            }
            await this.announce(pod.metadata.name);
            announced.add(key);
          }
          for (const t of await this.transfers()) {
            if (TERMINAL_PHASES.has(t.status?.phase ?? 'Pending')) continue;
            const first = seen.get(t.metadata.name) ?? Date.now();
            seen.set(t.metadata.name, first);
            if (options.hold?.(t) === true) continue;
            const entries = t.status?.receivers ?? [];
            const allDone = t.spec.receivers.every((r) =>
              entries.some((e) => e.pod === r.pod && e.phase === 'Succeeded'),
            );
            if (allDone) continue;
            if (Date.now() - first >= (options.delayMs ?? 0)) await this.succeed(t);
            else if (entries.length === 0) {
              await this.seedRendezvous(t);
              for (const r of t.spec.receivers) await this.receiver(t, r.pod, { phase: 'Transferring' });
            }
          }
        } catch {
          // Objects come and go under a running test; the next round sees the new state.
        }
        await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  async #applyStatus(transfer: string, pod: string, status: Partial<WeightTransferStatus>): Promise<void> {
    await this.client.apply(
      { ...TRANSFERS, namespace: this.namespace, name: transfer, subresource: 'status' },
      {
        apiVersion: API_VERSION,
        kind: Kinds.WeightTransfer,
        metadata: { name: transfer, namespace: this.namespace },
        status,
      },
      FieldManagers.agent(pod),
      true,
    );
  }
}
