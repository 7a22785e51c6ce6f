// One NCCL rank on one GPU. Every call has a deadline: past it the communicator is aborted and the
// call fails with SEEDCAST_ERR_NCCL_TIMEOUT; nothing ever waits on a dead peer.
import { SeedcastError } from '../shared/errors.ts';
import type { DeviceBuffer } from './device-buffer.ts';
import { native } from './errors.ts';
import type { CommunicatorPhase, DeviceRange, NativeCommunicator } from './types.ts';

/** Native deadlines are enforced on the communicator's thread; this JS watchdog only fires if abort itself hangs. */
const WATCHDOG_GRACE_MS = 15_000;

export interface BroadcastOptions {
  root: number;
  timeoutMs: number;
}

export type BroadcastEntry = DeviceBuffer | DeviceRange<DeviceBuffer>;

export class NcclCommunicator {
  readonly raw: NativeCommunicator;
  /** ncclCommInitRankConfig's wall time, and the connect broadcast's (0: not connected ahead). */
  initMs = 0;
  connectMs = 0;

  constructor(raw: NativeCommunicator) {
    this.raw = raw;
  }

  get rank(): number {
    return this.raw.rank;
  }
  get nranks(): number {
    return this.raw.nranks;
  }
  get device(): number {
    return this.raw.device;
  }
  get phase(): CommunicatorPhase {
    return this.raw.phase;
  }

  /**
   * Broadcasts a bucket list from `root` (in place: the root sends its buffers, every other rank
   * receives into its own), all inside one ncclGroupStart/End, as bytes (ncclUint8).
   */
  async broadcast(
    entries: readonly BroadcastEntry[],
    options: BroadcastOptions,
  ): Promise<{ bytes: number; gpuMs: number }> {
    let total = 0;
    const list: [DeviceBuffer['raw'], number, number][] = entries.map((entry) => {
      const range = 'raw' in entry ? { buffer: entry } : entry;
      const offset = range.offset ?? 0;
      const bytes = range.bytes ?? range.buffer.bytes - offset;
      total += bytes;
      return [range.buffer.raw, offset, bytes];
    });
    const gpuMs = await withWatchdog(options.timeoutMs, 'broadcast', () =>
      native(() => this.raw.broadcast(list, options.root, options.timeoutMs)),
    );
    return { bytes: total, gpuMs };
  }

  /** Aborts now: a call in flight fails (SEEDCAST_ERR_ABORTED) at its next poll; the communicator is unusable after. */
  async abort(): Promise<void> {
    await withWatchdog(0, 'abort', () => native(() => this.raw.abort()));
  }

  /** Finalizes within the deadline (then destroys); on timeout or error it aborts instead. */
  async close(options: { timeoutMs: number }): Promise<{ aborted: boolean }> {
    return withWatchdog(options.timeoutMs, 'close', () => native(() => this.raw.close(options.timeoutMs)));
  }
}

export async function withWatchdog<T>(timeoutMs: number, what: string, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new SeedcastError(
          'SEEDCAST_ERR_NCCL_TIMEOUT',
          `${what}: no answer ${WATCHDOG_GRACE_MS} ms past its ${timeoutMs} ms deadline (NCCL abort hung?); the communicator is leaked`,
        ),
      );
    }, timeoutMs + WATCHDOG_GRACE_MS);
    timer.unref();
  });
  try {
    return await Promise.race([call(), watchdog]);
  } finally {
    clearTimeout(timer);
  }
}
