// What a scale-out looked like, pod by pod: built from what an observer saw in the API server
// (pods, WeightTransfers) and what each pod's engine reported. Pure: observations in, summary out.
import type { WeightTransfer } from '../api/v1alpha1/weighttransfer.ts';

export interface PodObservation {
  name: string;
  uid: string;
  createdAt?: number;
  scheduledAt?: number;
  agentUpAt?: number;
  /** When the controller's weights-ready condition was first seen True. */
  weightsReadyAt?: number;
  readyAt?: number;
  /** Set when the pod was seen Ready while none of its transfers said verified. */
  readyBeforeVerified?: boolean;
  /** The transfers naming the pod when it was seen Ready unverified (for reports). */
  readyBeforeVerifiedDetail?: string;
  deletedAt?: number;
  /** sha256 of each rank's weights, as the engine reported after its load or receive. */
  rankDigests?: string[];
}

export interface PodSummary {
  name: string;
  source: string;
  transfer: string | null;
  transport: string | null;
  bytes: number;
  gbps: number | null;
  verified: boolean;
  scheduledAt: string | null;
  agentUpAt: string | null;
  transferStartAt: string | null;
  verifiedAt: string | null;
  /** The controller's weights-ready condition first seen True (before KWOK/kubelet marks Ready). */
  weightsReadyAt: string | null;
  readyAt: string | null;
  /** Seconds from the pod's creation to Ready. */
  secondsToReady: number | null;
  deleted: boolean;
  weightsMatchSeed: boolean | null;
}

export interface ScaleOutSummary {
  coldStarts: number;
  warmStarts: number;
  /** WeightTransfers from a seed, with their receiver count: one group serving many is the point. */
  groups: Array<{ transfer: string; seed: string; receivers: number; transport: string | null }>;
  failedTransfers: number;
  readyBeforeVerified: string[];
  totalBytes: number;
  pods: PodSummary[];
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const parse = (text: string | undefined) => (text === undefined ? undefined : Date.parse(text));

/** The transfer that delivered a pod's weights: the succeeded one naming its uid, else the latest. */
function deliveringTransfer(pod: PodObservation, transfers: WeightTransfer[]) {
  const mine = transfers
    .filter((t) => t.spec.receivers.some((r) => r.pod === pod.name && r.uid === pod.uid))
    .map((t) => ({ transfer: t, entry: t.status?.receivers?.find((r) => r.pod === pod.name) }))
    .sort((a, b) => a.transfer.spec.attempt - b.transfer.spec.attempt);
  return mine.find((m) => m.entry?.phase === 'Succeeded' && m.entry.verified) ?? mine.at(-1);
}

export function summarize(pods: PodObservation[], transfers: WeightTransfer[]): ScaleOutSummary {
  const summaries: PodSummary[] = [];
  // The reference weights: whatever the pods that loaded from storage hold.
  let reference: string[] | undefined;
  for (const pod of pods) {
    const delivered = deliveringTransfer(pod, transfers);
    if (delivered?.transfer.spec.source.type === 'Storage' && pod.rankDigests !== undefined) {
      reference ??= pod.rankDigests;
    }
  }
  for (const pod of [...pods].sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0))) {
    const delivered = deliveringTransfer(pod, transfers);
    const entry = delivered?.entry;
    const spec = delivered?.transfer.spec;
    const verifiedAt = parse(entry?.verifiedAt);
    summaries.push({
      name: pod.name,
      source:
        spec === undefined
          ? 'none'
          : spec.source.type === 'Storage'
            ? 'storage'
            : (spec.source.seed?.pod ?? '?'),
      transfer: delivered?.transfer.metadata.name ?? null,
      transport: spec?.source.type === 'Seed' ? (spec.transport ?? null) : null,
      bytes: entry?.bytesDone ?? 0,
      gbps: entry?.gbps ?? null,
      verified: entry?.verified === true && entry.phase === 'Succeeded',
      scheduledAt: iso(pod.scheduledAt),
      agentUpAt: iso(pod.agentUpAt),
      transferStartAt: entry?.startedAt ?? null,
      verifiedAt: iso(verifiedAt),
      weightsReadyAt: iso(pod.weightsReadyAt),
      readyAt: iso(pod.readyAt),
      secondsToReady:
        pod.readyAt !== undefined && pod.createdAt !== undefined
          ? (pod.readyAt - pod.createdAt) / 1000
          : null,
      deleted: pod.deletedAt !== undefined,
      weightsMatchSeed:
        reference === undefined || pod.rankDigests === undefined
          ? null
          : pod.rankDigests.length === reference.length &&
            pod.rankDigests.every((d, i) => d === reference![i]),
    });
  }
  const podNames = new Set(pods.map((p) => p.name));
  const groups = transfers
    .filter((t) => t.spec.source.type === 'Seed' && t.spec.receivers.some((r) => podNames.has(r.pod)))
    .map((t) => ({
      transfer: t.metadata.name,
      seed: t.spec.source.seed?.pod ?? '?',
      receivers: t.spec.receivers.length,
      transport: t.spec.transport ?? null,
    }));
  const delivered = summaries.filter((s) => s.verified);
  return {
    coldStarts: delivered.filter((s) => s.source === 'storage').length,
    warmStarts: delivered.filter((s) => s.source !== 'storage' && s.source !== 'none').length,
    groups,
    failedTransfers: transfers.filter((t) => t.status?.phase === 'Failed').length,
    readyBeforeVerified: pods.filter((p) => p.readyBeforeVerified === true).map((p) => p.name),
    totalBytes: delivered.filter((s) => s.source !== 'storage').reduce((sum, s) => sum + s.bytes, 0),
    pods: summaries,
  };
}

const pad = (text: string, width: number) =>
  text.length >= width ? text : text + ' '.repeat(width - text.length);
const clock = (isoText: string | null, start: number) =>
  isoText === null ? '-' : `+${((Date.parse(isoText) - start) / 1000).toFixed(1)}s`;

/** The human summary printed at the end of the demo. */
export function renderSummary(summary: ScaleOutSummary, startedAt: number): string {
  const header = [
    'pod',
    'source',
    'scheduled',
    'agent up',
    'transfer',
    'verified',
    'ready',
    'MB',
    'GB/s',
    'same',
  ];
  const rows = summary.pods.map((p) => [
    p.name + (p.deleted ? ' (gone)' : ''),
    p.source,
    clock(p.scheduledAt, startedAt),
    clock(p.agentUpAt, startedAt),
    clock(p.transferStartAt, startedAt),
    clock(p.verifiedAt, startedAt),
    clock(p.readyAt, startedAt),
    (p.bytes / 1e6).toFixed(0),
    p.gbps === null ? '-' : p.gbps.toFixed(2),
    p.weightsMatchSeed === null ? '-' : p.weightsMatchSeed ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!)).join('  ');
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  for (const group of summary.groups) {
    out.push(
      `group ${group.transfer}: seed ${group.seed} → ${group.receivers} receiver(s) over ${group.transport}`,
    );
  }
  out.push(
    `cold starts: ${summary.coldStarts}   warm starts: ${summary.warmStarts}   failed transfers: ${summary.failedTransfers}` +
      `   bytes moved pod-to-pod: ${(summary.totalBytes / 1e9).toFixed(2)} GB`,
  );
  out.push(
    summary.readyBeforeVerified.length === 0
      ? 'no pod turned Ready before its weights were verified'
      : `VIOLATION: Ready before verified: ${summary.readyBeforeVerified.join(', ')}`,
  );
  return out.join('\n');
}
