// What the agent needs from the cluster, as two small interfaces: WeightTransfers in (a source)
// and its own writes out (a sink). The real implementation is the API server (kube.ts); local.ts
// keeps the same objects in files so process-level tests and the demo run without a cluster.
import type { z } from 'zod';
import type {
  receiverStatus,
  rendezvousEntry,
  seedStatus,
  WeightTransfer,
} from '../../api/v1alpha1/weighttransfer.ts';

export type ReceiverEntry = z.input<typeof receiverStatus>;
export type SeedEntry = z.input<typeof seedStatus>;
export type RendezvousEntry = z.input<typeof rendezvousEntry>;

/** The status fields one agent owns in one WeightTransfer. */
export interface StatusFragment {
  receivers?: ReceiverEntry[];
  seed?: SeedEntry;
  rendezvous?: RendezvousEntry[];
}

export interface TransferEvents {
  /** A WeightTransfer in the agent's namespace was added or changed (already validated). */
  upsert(transfer: WeightTransfer): void;
  deleted(name: string): void;
}

export interface TransferSource {
  /** Delivers events until `signal` aborts; relists after errors. */
  run(events: TransferEvents, signal: AbortSignal): Promise<void>;
}

export interface StatusSink {
  /** Server-side apply of this agent's status entries (field manager `seedcast-agent-<pod>`). */
  applyStatus(transfer: string, fragment: StatusFragment): Promise<void>;
  /**
   * Merge-patches annotations onto the agent's own pod (`null` removes one); resolves with the
   * pod's annotations after the patch where the sink sees them (the API server returns the pod, so
   * no `get` permission is needed).
   */
  announce(annotations: Record<string, string | null>): Promise<Record<string, string> | undefined>;
}
