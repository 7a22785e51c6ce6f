// events.k8s.io/v1 Events for the controller's decisions. Recorded only after the reconcile's
// status write succeeded; a failed event write is logged, never retried into a hot loop.
import { API_VERSION, GROUP } from '../api/v1alpha1/index.ts';
import { rfc3339Micro } from '../shared/clock.ts';
import { errorMessage, truncate } from '../shared/errors.ts';
import { type KubeClient, Resources } from '../shared/kube.ts';
import type { Logger } from '../shared/log.ts';
import type { PlannedEvent } from './weightsource/plan.ts';

export const REPORTING_CONTROLLER = `${GROUP}/controller`;

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #instance: string;
  readonly #logger: Logger;
  #sequence = 0;

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
