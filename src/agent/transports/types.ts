// A transport moves one rank's buckets from the seed's staging slots to every receiver's. `tcp`
// (host memory, several streams per rank) lives here; `nccl` (a per-rank broadcast group on GPU
// memory) is provided by the native addon through the same interface.
import type { Logger } from '../../shared/log.ts';
import type { EngineRank } from '../bridge/server.ts';

export interface PodIdentity {
  pod: string;
  uid: string;
}

export interface TransferIdentity {
  namespace: string;
  name: string;
  attempt: number;
}

interface RankContext {
  transfer: TransferIdentity;
  self: PodIdentity;
  rank: number;
  /** The local engine rank: its slots and fill/drain requests. */
  engine: EngineRank;
  /** The pod-to-pod token (read per transfer so a rotated Secret takes effect). */
  token: Buffer;
  /** Absolute deadline (epoch ms) of the whole transfer. */
  deadline: number;
  /** Deadline of one step (an engine request, a rendezvous wait, a silent peer), in ms. */
  stepTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
}

export interface SeedRankContext extends RankContext {
  /** Receivers named in the transfer: the only peers accepted. */
  receivers: readonly PodIdentity[];
  /** Address to listen on (the pod IP) and the port the controller assigned to this rank. */
  host: string;
  port: number;
  /** Bytes per second across all receivers of this rank; undefined for no limit. */
  bandwidthLimit?: number;
  onBytesSent: (bytes: number) => void;
}

export interface ReceiverOutcome {
  pod: string;
  outcome: 'verified' | 'failed';
  reason?: string;
  message?: string;
}

export interface SeedRankSession {
  /** host:port for the rendezvous entry. */
  address: string;
  /** NCCL unique id (base64) for the rendezvous entry; tcp has none. */
  uniqueId?: string;
  /** Settles when every receiver reported or was lost; rejects when the rank cannot serve anyone. */
  done: Promise<ReceiverOutcome[]>;
}

export interface ReceiverRankContext extends RankContext {
  seed: PodIdentity;
  /** The seed's rendezvous entry for this rank. */
  address: string;
  uniqueId?: string;
  /** Bytes received and checksum-verified so far on this rank. */
  onProgress: (bytesDone: number) => void;
}

export interface Transport {
  readonly name: 'tcp' | 'nccl';
  /** Seed: start listening for this rank's receivers, then broadcast every bucket to them. */
  serve(context: SeedRankContext): Promise<SeedRankSession>;
  /** Receiver: fetch every bucket, verify it, drain it; resolves once the whole rank is drained. */
  receive(context: ReceiverRankContext): Promise<void>;
}
