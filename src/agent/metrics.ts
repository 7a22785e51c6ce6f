// Prometheus metrics in the text exposition format (written by hand: a handful of series).

const SECONDS_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];

const escapeLabel = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (pairs: Record<string, string>): string => {
  const body = Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return body === '' ? '' : `{${body}}`;
};

export class AgentMetrics {
  bytesSent = 0;
  bytesReceived = 0;
  badBridgeMessages = 0;
  checksumFailures = 0;
  weightsLost = 0;
  readonly #transfers = new Map<string, number>();
  readonly #refusals = new Map<string, number>();
  readonly #durations = new Map<string, { buckets: number[]; sum: number; count: number }>();

  transferFinished(role: string, outcome: 'succeeded' | 'failed', seconds: number): void {
    const key = `${role}\u0000${outcome}`;
    this.#transfers.set(key, (this.#transfers.get(key) ?? 0) + 1);
    let histogram = this.#durations.get(role);
    if (histogram === undefined) {
      histogram = { buckets: SECONDS_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#durations.set(role, histogram);
    }
    SECONDS_BUCKETS.forEach((le, i) => {
      if (seconds <= le) histogram.buckets[i] = (histogram.buckets[i] as number) + 1;
    });
    histogram.sum += seconds;
    histogram.count++;
  }

  peerRefused(reason: string): void {
    this.#refusals.set(reason, (this.#refusals.get(reason) ?? 0) + 1);
  }

  render(gauges: { engineRanks: number; activeTransfers: number; residentBytes: number }): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      type: string,
      help: string,
      samples: Array<[Record<string, string>, number]>,
    ): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [l, value] of samples) lines.push(`${name}${labels(l)} ${value}`);
    };
    metric(
      'seedcast_agent_bytes_sent_total',
      'counter',
      'Bucket bytes written to receivers (counted once per receiver).',
      [[{}, this.bytesSent]],
    );
    metric('seedcast_agent_bytes_received_total', 'counter', 'Bucket bytes received and checksum-verified.', [
      [{}, this.bytesReceived],
    ]);
    metric(
      'seedcast_agent_transfers_total',
      'counter',
      'Transfers this agent finished, by role (seed, receiver, storage) and outcome.',
      [...this.#transfers].map(([key, n]) => {
        const [role, outcome] = key.split('\u0000') as [string, string];
        return [{ role, outcome }, n];
      }),
    );
    lines.push(
      '# HELP seedcast_agent_transfer_seconds Duration of finished transfers.',
      '# TYPE seedcast_agent_transfer_seconds histogram',
    );
    for (const [role, h] of this.#durations) {
      SECONDS_BUCKETS.forEach((le, i) => {
        lines.push(
          `seedcast_agent_transfer_seconds_bucket${labels({ role, le: String(le) })} ${h.buckets[i]}`,
        );
      });
      lines.push(`seedcast_agent_transfer_seconds_bucket${labels({ role, le: '+Inf' })} ${h.count}`);
      lines.push(`seedcast_agent_transfer_seconds_sum${labels({ role })} ${h.sum}`);
      lines.push(`seedcast_agent_transfer_seconds_count${labels({ role })} ${h.count}`);
    }
    metric(
      'seedcast_agent_peer_refusals_total',
      'counter',
      'Peers refused at the handshake, by reason.',
      [...this.#refusals].map(([reason, n]) => [{ reason }, n]),
    );
    metric('seedcast_agent_checksum_failures_total', 'counter', 'Buckets whose checksum did not match.', [
      [{}, this.checksumFailures],
    ]);
    metric(
      'seedcast_agent_bridge_bad_messages_total',
      'counter',
      'Malformed or invalid frames from the engine.',
      [[{}, this.badBridgeMessages]],
    );
    metric(
      'seedcast_agent_weights_lost_total',
      'counter',
      'Times an engine rank that held verified weights registered again empty (recorded on the pod).',
      [[{}, this.weightsLost]],
    );
    metric('seedcast_agent_engine_ranks', 'gauge', 'Engine ranks registered over the bridge.', [
      [{}, gauges.engineRanks],
    ]);
    metric('seedcast_agent_active_transfers', 'gauge', 'Transfers in progress.', [
      [{}, gauges.activeTransfers],
    ]);
    metric('seedcast_agent_resident_memory_bytes', 'gauge', 'Resident set size of the agent.', [
      [{}, gauges.residentBytes],
    ]);
    return `${lines.join('\n')}\n`;
  }
}
