// Leader election on a coordination.k8s.io/v1 Lease, like client-go's leaderelection: acquire
// when the lease is free or expired, renew every retry period with optimistic concurrency
// (resourceVersion on update), step down when renewals fail past the renew deadline, and release
// the lease on a clean shutdown so a standby takes over at once.
import { setTimeout as sleep } from 'node:timers/promises';
import { type Clock, rfc3339Micro, systemClock } from './clock.ts';
import { errorMessage } from './errors.ts';
import { isConflict, isNotFound, type KubeClient, Resources, resourcePath } from './kube.ts';
import type { Logger } from './log.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Pure: may `identity` take or keep the lease as observed at `now`? */
export function canAcquire(spec: LeaseSpec | undefined, identity: string, now: number): boolean {
  if (spec === undefined) return true;
  const holder = spec.holderIdentity ?? '';
  if (holder === '' || holder === identity) return true;
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return true;
  return renewed + (spec.leaseDurationSeconds ?? 15) * 1000 < now;
}

export class LeaderElector {
  readonly #client: KubeClient;
  readonly #options: Required<Omit<LeaderElectionOptions, 'logger'>> & { logger?: Logger };
  #leading = false;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.#client = client;
    this.#options = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock: systemClock,
      ...options,
    };
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * Campaigns until leading, then calls `lead` with a signal that aborts when leadership is lost
   * or `signal` aborts. Resolves after `lead` returns and the lease is released.
   */
  async run(signal: AbortSignal, lead: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, clock, logger } = this.#options;
    while (!signal.aborted && !(await this.#tryAcquireOrRenew(clock.now() + renewDeadlineMs))) {
      await sleep(retryPeriodMs, undefined, { signal }).catch(() => undefined);
    }
    if (signal.aborted) return;
    this.#leading = true;
    logger?.info({ lease: this.#options.name, identity: this.#options.identity }, 'became leader');
    const leadership = new AbortController();
    const onAbort = () => leadership.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const renewing = (async () => {
      let lastRenew = clock.now();
      while (!leadership.signal.aborted) {
        await sleep(retryPeriodMs, undefined, { signal: leadership.signal }).catch(() => undefined);
        if (leadership.signal.aborted) break;
        // A renewal may not outlast the renew deadline (with the client's 30 s request timeout a
        // hanging renewal kept a controller "leading" past its lease: two leaders), but it gets
        // all the time up to it — an API server under load answers lease reads in seconds (the
        // fault suite's 64-receiver scene: > 2.5 s).
        if (await this.#tryAcquireOrRenew(lastRenew + renewDeadlineMs)) lastRenew = clock.now();
        else if (clock.now() - lastRenew > renewDeadlineMs) {
          logger?.error({ lease: this.#options.name }, 'lost leadership');
          this.#leading = false;
          leadership.abort();
        }
      }
    })();
    try {
      await lead(leadership.signal);
    } finally {
      leadership.abort();
      signal.removeEventListener('abort', onAbort);
      await renewing;
      if (this.#leading) await this.#release();
      this.#leading = false;
    }
  }

  /** One attempt; its calls (read, then write) give up at `deadlineAt` together. */
  async #tryAcquireOrRenew(deadlineAt: number): Promise<boolean> {
    const { namespace, name, identity, leaseDurationMs, clock, logger } = this.#options;
    const ref = { ...Resources.leases, namespace, name };
    const now = clock.now();
    const client = (): KubeClient => this.#client.withTimeout(Math.max(100, deadlineAt - clock.now()));
    try {
      const lease = await client().find<Lease>(ref);
      const spec: LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
        renewTime: rfc3339Micro(now),
      };
      if (lease === undefined) {
        await client().create(
          { ...Resources.leases, namespace },
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: rfc3339Micro(now), leaseTransitions: 0 },
          },
        );
        return true;
      }
      if (!canAcquire(lease.spec, identity, now)) return false;
      const taking = (lease.spec.holderIdentity ?? '') !== identity;
      const next: Lease = {
        ...lease,
        spec: {
          ...lease.spec,
          ...spec,
          acquireTime: taking ? rfc3339Micro(now) : lease.spec.acquireTime,
          leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
        },
      };
      await client().request('PUT', resourcePath(ref), { body: next });
      return true;
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err))
        logger?.warn({ lease: name, err: errorMessage(err) }, 'lease update failed');
      return false;
    }
  }

  async #release(): Promise<void> {
    const { namespace, name, identity, clock } = this.#options;
    const ref = { ...Resources.leases, namespace, name };
    try {
      const lease = await this.#client.find<Lease>(ref);
      if (lease === undefined || lease.spec.holderIdentity !== identity) return;
      await this.#client.request('PUT', resourcePath(ref), {
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: null,
            leaseDurationSeconds: 1,
            renewTime: rfc3339Micro(clock.now()),
          },
        },
      });
    } catch (err) {
      this.#options.logger?.warn({ lease: name, err: errorMessage(err) }, 'lease release failed');
    }
  }
}
