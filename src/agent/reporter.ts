// Writes one transfer's status fragment at most once per interval: the latest state wins, a
// failed write is retried with the next one. What others wait for — an urgent `set` (a seed's
// rendezvous addresses) and `flush` (the final state) — goes out at once, without the interval.
// Once the transfer is gone (deleted: a write found no object, or `gone()` says so) nothing is
// written any more: a transfer recreated under the same name is another object, and a late write
// of this one's state would land in it (found by the fault suite: an old seed role's retried
// "Failed" made the controller fail the recreated transfer).
import { errorMessage } from '../shared/errors.ts';
import { isNotFound } from '../shared/kube.ts';
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

  readonly #gone: () => boolean;
  #notFound = false;

  constructor(
    sink: StatusSink,
    transfer: string,
    intervalMs: number,
    log: Logger,
    gone: () => boolean = () => false,
  ) {
    this.#sink = sink;
    this.#transfer = transfer;
    this.#intervalMs = intervalMs;
    this.#log = log;
    this.#gone = gone;
  }

  /** The transfer this reporter writes into no longer exists. */
  get gone(): boolean {
    return this.#notFound || this.#gone();
  }

  #urgent = false;

  /** `urgent`: written as soon as the write in flight (if any) landed, not at the next interval. */
  set(fragment: StatusFragment, urgent = false): void {
    this.#latest = fragment;
    this.#dirty = true;
    if (urgent) {
      this.#urgent = true;
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#writing !== undefined) return;
    const wait = this.#urgent ? 0 : Math.max(0, this.#lastWrite + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#write();
    }, wait);
  }

  async #write(): Promise<void> {
    if (this.gone) this.#dirty = false;
    if (!this.#dirty || this.#latest === undefined) return;
    this.#dirty = false;
    this.#urgent = false;
    this.#lastWrite = Date.now();
    const fragment = this.#latest;
    this.#writing = this.#sink.applyStatus(this.#transfer, fragment).catch((err) => {
      if (isNotFound(err)) {
        this.#notFound = true;
        this.#log.info('the transfer is gone; its status is not written any more');
        return;
      }
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
      if (!this.#dirty || this.gone) return;
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      // The final state: written now, not at the next interval (others wait for it).
      if (this.#writing === undefined) await this.#write();
      // A failed write: retry after a pause, not in a tight loop against a struggling API server.
      if (this.#dirty) await new Promise((r) => setTimeout(r, Math.min(this.#intervalMs, 1000)));
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
