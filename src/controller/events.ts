// events.k8s.io/v1 Events for the controller's decisions. Recorded only after the reconcile's
// status write succeeded; a failed event write is logged, never retried into a hot loop.
import { API_VERSION, GROUP } from '../api/v1alpha1/index.ts';
import { rfc3339Micro } from '../shared/clock.ts';
import { errorMessage, truncate } from '../shared/errors.ts';
import { type KubeClient, Resources } from '../shared/kube.ts';
import type { Logger } from '../shared/log.ts';
import type { PlannedEvent } from './weightsource/plan.ts';

export const REPORTING_CONTROLLER = `${GROUP}/controller`;

/** Events written at once; more wait in a bounded backlog (oldest dropped past the cap). */
const EVENT_CONCURRENCY = 8;
const EVENT_BACKLOG = 1000;

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #instance: string;
  readonly #logger: Logger;
  #sequence = 0;
  readonly #backlog: Array<() => Promise<void>> = [];
  #inFlight = 0;
  #idle: Array<() => void> = [];

  /**
   * Queues an event and returns at once: events are best effort and must not hold up the next
   * reconcile. Call only after the reconcile's status write succeeded.
   */
  emit(namespace: string, event: PlannedEvent): void {
    if (this.#backlog.length >= EVENT_BACKLOG) {
      this.#backlog.shift();
      this.#logger.warn('event backlog full, dropping the oldest event');
    }
    this.#backlog.push(() => this.record(namespace, event));
    this.#pump();
  }

  /** Resolves when every queued event was written (or failed); for shutdown and tests. */
  flush(): Promise<void> {
    if (this.#backlog.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#inFlight < EVENT_CONCURRENCY && this.#backlog.length > 0) {
      const job = this.#backlog.shift() as () => Promise<void>;
      this.#inFlight += 1;
      void job().finally(() => {
        this.#inFlight -= 1;
        this.#pump();
      });
    }
    if (this.#inFlight === 0 && this.#backlog.length === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  constructor(client: KubeClient, instance: string, logger: Logger) {
    this.#client = client;
    this.#instance = instance.slice(0, 128);
    this.#logger = logger;
  }

  async record(namespace: string, event: PlannedEvent): Promise<void> {
    const now = Date.now();
    this.#sequence += 1;
    const apiVersion = event.regarding.kind === 'Pod' ? 'v1' : API_VERSION;
    const suffix = `${now.toString(16)}${this.#sequence.toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${event.regarding.name.slice(0, 200)}.${suffix}`, namespace },
      eventTime: rfc3339Micro(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#instance,
      action: event.action,
      reason: event.reason,
      type: event.type,
      note: truncate(event.note, 1024),
      regarding: {
        apiVersion,
        kind: event.regarding.kind,
        name: event.regarding.name,
        namespace,
        ...(event.regarding.uid === undefined ? {} : { uid: event.regarding.uid }),
      },
    };
    try {
      await this.#client.create({ ...Resources.events, namespace }, body);
    } catch (err) {
      this.#logger.warn(
        { reason: event.reason, regarding: event.regarding.name, err: errorMessage(err) },
        'event not recorded',
      );
    }
  }
}
