// Writes one transfer's status fragment at most once per interval: the latest state wins, a
// failed write is retried with the next one, and `flush` waits for the final state to land.
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import type { StatusFragment, StatusSink } from './cluster/types.ts';

export class StatusReporter {
  readonly #sink: StatusSink;
  readonly #transfer: string;
  readonly #intervalMs: number;
  readonly #log: Logger;
  #latest: StatusFragment | undefined;
  #dirty = false;
  #lastWrite = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;

  constructor(sink: StatusSink, transfer: string, intervalMs: number, log: Logger) {
    this.#sink = sink;
    this.#transfer = transfer;
    this.#intervalMs = intervalMs;
    this.#log = log;
  }

  set(fragment: StatusFragment): void {
    this.#latest = fragment;
    this.#dirty = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#writing !== undefined) return;
    const wait = Math.max(0, this.#lastWrite + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#write();
    }, wait);
  }

  async #write(): Promise<void> {
    if (!this.#dirty || this.#latest === undefined) return;
    this.#dirty = false;
    this.#lastWrite = Date.now();
    const fragment = this.#latest;
    this.#writing = this.#sink.applyStatus(this.#transfer, fragment).catch((err) => {
      this.#log.warn({ err: errorMessage(err) }, 'status write failed; retrying');
      this.#dirty = true;
    });
    await this.#writing;
    this.#writing = undefined;
    if (this.#dirty) this.#schedule();
  }

  /** Resolves once the latest state was written (retrying for up to `timeoutMs`). */
  async flush(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.#writing !== undefined) await this.#writing;
      if (!this.#dirty) return;
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      const wait = this.#lastWrite + this.#intervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.#writing === undefined) await this.#write();
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
