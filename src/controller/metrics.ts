// The controller's Prometheus metrics, in one place so docs/controller.md can list them.
import { Registry } from '../shared/metrics.ts';

export function controllerMetrics(registry = new Registry()) {
  return {
    registry,
    transfersCreated: registry.counter(
      'seedcast_transfers_created_total',
      'WeightTransfers created, by source type.',
      ['source_type'],
    ),
    transfersFinished: registry.counter(
      'seedcast_transfers_finished_total',
      'WeightTransfers finished, by outcome (Succeeded|Failed), reason and source type.',
      ['outcome', 'reason', 'source_type'],
    ),
    timeToWeightsReady: registry.histogram(
      'seedcast_time_to_weights_ready_seconds',
      'Pod creation to weights-ready True, by reason (WeightsVerified = warm, ColdLoaded = cold).',
      ['reason'],
      [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600],
    ),
    seeds: registry.gauge('seedcast_seeds', 'Pods holding verified weights, per WeightSource.', [
      'namespace',
      'weight_source',
    ]),
    waitingReceivers: registry.gauge(
      'seedcast_waiting_receivers',
      'Announced pods waiting for a seed or a cold load.',
      ['namespace', 'weight_source'],
    ),
    activeTransfers: registry.gauge('seedcast_active_transfers', 'WeightTransfers not yet finished.', [
      'namespace',
      'weight_source',
    ]),
    portsInUse: registry.gauge('seedcast_ports_in_use', 'Rendezvous ports reserved by active transfers.', [
      'namespace',
      'weight_source',
    ]),
    reconciles: registry.counter('seedcast_reconcile_total', 'Reconciles by controller and outcome.', [
      'controller',
      'outcome',
    ]),
    reconcileSeconds: registry.histogram('seedcast_reconcile_duration_seconds', 'Reconcile duration.', [
      'controller',
    ]),
    leader: registry.gauge('seedcast_leader', '1 while this instance holds the leader lease.'),
  };
}
export type ControllerMetrics = ReturnType<typeof controllerMetrics>;
