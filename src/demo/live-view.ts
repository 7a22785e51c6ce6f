// The demo's live view: one line whenever a pod reaches a new stage or a transfer changes phase,
// stamped with seconds since the workload was applied. Works the same in a terminal and in a log.
import type { ScaleOutObserver } from './observer.ts';

type Stage = 'created' | 'scheduled' | 'agent up' | 'Ready' | 'deleted';

export class LiveView {
  readonly #observer: ScaleOutObserver;
  readonly #startedAt: number;
  readonly #say: (line: string) => void;
  readonly #podStages = new Map<string, Stage>();
  readonly #transferPhases = new Map<string, string>();
  #active = false;

  constructor(observer: ScaleOutObserver, startedAt: number, say: (line: string) => void) {
    this.#observer = observer;
    this.#startedAt = startedAt;
    this.#say = say;
    observer.onChange(() => {
      if (this.#active) this.#render();
    });
  }

  start(): void {
    this.#active = true;
    this.#render();
  }

  stop(): void {
    this.#active = false;
  }

  #stamp(): string {
    return `+${((Date.now() - this.#startedAt) / 1000).toFixed(1)}s`.padStart(8);
  }

  #render(): void {
    for (const pod of this.#observer.pods.values()) {
      const stage: Stage =
        pod.deletedAt !== undefined
          ? 'deleted'
          : pod.readyAt !== undefined
            ? 'Ready'
            : pod.agentUpAt !== undefined
              ? 'agent up'
              : pod.scheduledAt !== undefined
                ? 'scheduled'
                : 'created';
      if (this.#podStages.get(pod.uid) === stage) continue;
      this.#podStages.set(pod.uid, stage);
      this.#say(`${this.#stamp()}  pod ${pod.name}: ${stage}`);
    }
    for (const transfer of this.#observer.transfers) {
      const phase = transfer.status?.phase ?? 'Pending';
      const key = transfer.metadata.name;
      if (this.#transferPhases.get(key) === phase) continue;
      this.#transferPhases.set(key, phase);
      const source =
        transfer.spec.source.type === 'Storage' ? 'storage' : `seed ${transfer.spec.source.seed?.pod ?? '?'}`;
      const receivers = transfer.spec.receivers.map((r) => r.pod).join(', ');
      const extra =
        phase === 'Succeeded' && transfer.status?.gbps !== undefined
          ? ` (${transfer.status.gbps.toFixed(2)} GB/s)`
          : '';
      this.#say(`${this.#stamp()}  transfer ${key}: ${phase} — ${source} → ${receivers}${extra}`);
    }
  }
}
