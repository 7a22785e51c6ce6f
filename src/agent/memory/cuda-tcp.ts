// tcp over cuda: the `tcp` transport with `cuda` staging slots, staged through pinned host memory.
// The tcp transport reads and writes slots synchronously in host memory; a cuda slot keeps a
// pinned mirror of its bucket for that. This wrapper hands the tcp transport an engine rank whose
// `fill` also copies the filled slot device → mirror (after the engine's `filled`), and whose
// `drain` copies mirror → device before asking the engine to drain. The tcp transport verifies
// every bucket on the host bytes as they arrive; with `verifyOnDevice` the receiver also checks
// the device copy against the host bytes (GPU sum32x2 vs the WebAssembly one over the mirror,
// ~30 ms per 256 MiB on the JS thread, hence off by default). Host slots pass through unchanged.
import { Reasons } from '../../api/v1alpha1/conditions.ts';
import type { EngineRank } from '../bridge/server.ts';
import { sum32x2 } from '../checksum.ts';
import { TransferError } from '../errors.ts';
import type {
  ReceiverRankContext,
  SeedRankContext,
  SeedRankSession,
  Transport,
} from '../transports/types.ts';
import { type CudaSlot, isCudaSlot } from './cuda.ts';

export interface CudaStagingStats {
  /** Seconds spent in device ↔ pinned copies. */
  copySeconds: number;
  copiedBytes: number;
}

/** Wraps an engine rank whose slots are cuda so that host-memory transports can use them. */
export function hostStagedEngine(
  engine: EngineRank,
  stats: CudaStagingStats,
  verifyOnDevice = true,
): EngineRank {
  const slots = engine.slots.filter(isCudaSlot) as CudaSlot[];
  if (slots.length === 0) return engine;
  const fill = async (bucket: number, slot: number, timeoutMs: number): Promise<number> => {
    const cuda = engine.slot(slot) as CudaSlot;
    await cuda.ensureMirror();
    const bytes = await engine.fill(bucket, slot, timeoutMs);
    const t0 = performance.now();
    await cuda.toHost(Math.min(bytes, cuda.bytes));
    stats.copySeconds += (performance.now() - t0) / 1000;
    stats.copiedBytes += bytes;
    return bytes;
  };
  const drain = async (bucket: number, slot: number, timeoutMs: number): Promise<void> => {
    const cuda = engine.slot(slot) as CudaSlot;
    const bytes = Math.min(cuda.bytes, engine.totalBytes - bucket * engine.bucketBytes);
    const t0 = performance.now();
    await cuda.fromHost(bytes);
    if (verifyOnDevice) {
      // The host bytes were verified by the tcp transport; the device copy must hold the same.
      const host = sum32x2(cuda.hostView(bytes));
      const device = await cuda.checksum(bytes);
      if (host !== device)
        throw new TransferError(
          'SEEDCAST_ERR_CHECKSUM',
          Reasons.ChecksumMismatch,
          `bucket ${bucket}: device copy checksum ${device} differs from the verified host bytes ${host}`,
        );
    }
    stats.copySeconds += (performance.now() - t0) / 1000;
    stats.copiedBytes += bytes;
    await engine.drain(bucket, slot, timeoutMs);
  };
  return new Proxy(engine, {
    get(target, prop) {
      if (prop === 'fill') return fill;
      if (prop === 'drain') return drain;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The tcp transport, usable with cuda staging slots (each slot gets a pinned mirror on first use). */
export class CudaStagedTransport implements Transport {
  readonly name: 'tcp' | 'nccl';
  readonly #inner: Transport;
  readonly stats: CudaStagingStats = { copySeconds: 0, copiedBytes: 0 };
  readonly #verifyOnDevice: boolean;

  constructor(inner: Transport, options: { verifyOnDevice?: boolean } = {}) {
    this.#inner = inner;
    this.name = inner.name;
    this.#verifyOnDevice = options.verifyOnDevice ?? false;
  }

  async serve(context: SeedRankContext): Promise<SeedRankSession> {
    await Promise.all(context.engine.slots.filter(isCudaSlot).map((s) => s.ensureMirror()));
    return this.#inner.serve({ ...context, engine: hostStagedEngine(context.engine, this.stats) });
  }

  async receive(context: ReceiverRankContext): Promise<void> {
    await Promise.all(context.engine.slots.filter(isCudaSlot).map((s) => s.ensureMirror()));
    return this.#inner.receive({
      ...context,
      engine: hostStagedEngine(context.engine, this.stats, this.#verifyOnDevice),
    });
  }
}
