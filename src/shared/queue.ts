// A keyed work queue in the shape of client-go's: a key is queued at most once, one reconcile
// per key runs at a time (a key added while it runs is processed again afterwards), failures
// are retried with per-key exponential backoff, and unretryable errors are dropped, not looped.
import { errorMessage, isRetryable } from './errors.ts';
import type { Logger } from './log.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (time-driven decisions). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | undefined>;

export interface WorkQueueOptions {
  name: string;
  workers?: number;
  /** First retry delay; doubles per consecutive failure of the key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  logger?: Logger;
  /** Called after each reconcile with its outcome and duration, for metrics. */
  onResult?: (outcome: 'success' | 'error' | 'unretryable', seconds: number) => void;
}

export class WorkQueue {
  readonly name: string;
  readonly #reconcile: Reconcile;
  readonly #workers: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #logger: Logger | undefined;
  readonly #onResult: WorkQueueOptions['onResult'];
  readonly #pending = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<string, number>();
  #running = 0;
  #stopped = false;
  #idleWaiters: Array<() => void> = [];

  constructor(reconcile: Reconcile, options: WorkQueueOptions) {
    this.name = options.name;
    this.#reconcile = reconcile;
    this.#workers = options.workers ?? 2;
    this.#baseDelayMs = options.baseDelayMs ?? 50;
    this.#maxDelayMs = options.maxDelayMs ?? 60_000;
    this.#logger = options.logger;
    this.#onResult = options.onResult;
  }

  get length(): number {
    return this.#pending.size;
  }

  add(key: string): void {
    if (this.#stopped) return;
    const delayed = this.#delayed.get(key);
    if (delayed !== undefined) {
      clearTimeout(delayed.timer);
      this.#delayed.delete(key);
    }
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#pending.add(key);
    this.#pump();
  }

  /** Adds the key after `ms`; an earlier pending delay for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const existing = this.#delayed.get(key);
    if (existing !== undefined) {
      if (existing.at <= at) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#delayed.set(key, { at, timer });
  }

  /** Requeues after the key's backoff (base × 2^failures, capped). */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** failures);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Resolves once nothing is pending or running (delayed keys don't count); for tests. */
  idle(): Promise<void> {
    if (this.#pending.size === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops taking work and waits for running reconciles to finish. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#pending.clear();
    this.#dirty.clear();
    await this.idle();
  }

  #pump(): void {
    while (this.#running < this.#workers && !this.#stopped) {
      const key = this.#next();
      if (key === undefined) break;
      this.#running += 1;
      this.#processing.add(key);
      void this.#work(key);
    }
    if (this.#running === 0 && (this.#pending.size === 0 || this.#stopped)) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #next(): string | undefined {
    for (const key of this.#pending) {
      if (this.#processing.has(key)) continue;
      this.#pending.delete(key);
      return key;
    }
    return undefined;
  }

  async #work(key: string): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.#reconcile(key);
      this.#failures.delete(key);
      this.#onResult?.('success', (performance.now() - started) / 1000);
      if (result?.requeueAfterMs !== undefined)
        this.addAfter(key, Math.max(1, Math.ceil(result.requeueAfterMs)));
    } catch (err) {
      const retryable = isRetryable(err);
      this.#onResult?.(retryable ? 'error' : 'unretryable', (performance.now() - started) / 1000);
      if (retryable) {
        const delay = this.addRateLimited(key);
        this.#logger?.warn(
          { queue: this.name, key, err: errorMessage(err), retryInMs: delay },
          'reconcile failed',
        );
      } else {
        this.#failures.delete(key);
        this.#logger?.error(
          { queue: this.name, key, err: errorMessage(err) },
          'reconcile failed, not retrying',
        );
      }
    } finally {
      this.#processing.delete(key);
      this.#running -= 1;
      if (this.#dirty.delete(key)) this.#pending.add(key);
      this.#pump();
    }
  }
}
