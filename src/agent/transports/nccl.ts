// The `nccl` transport: one NCCL communicator per rank per transfer — the seed's rank r is the
// root (NCCL rank 0), each receiver's rank r joins (NCCL ranks 1…N, in the order the transfer
// names the receivers that connected), nranks = 1 + receivers. Buckets are broadcast in place
// from the seed's cuda staging slots into the receivers' (two slots: the engine fills/drains one
// while the other is on the wire).
//
// A TCP control connection per receiver and rank runs first, on the rendezvous port: the same
// challenge / hello / accept handshake as `tcp` (HMAC with the pod-to-pod token, named receivers
// only, rank fingerprints compared) — no communicator is formed and no byte moves before it.
// The seed publishes the NCCL unique id in `status.rendezvous[].uniqueId`; after the rendezvous
// it tells each receiver `{type:"join", commRank, nranks}` and everyone inits. Per bucket the
// seed computes the checksum of the filled slot on the GPU and sends `{type:"bucket", …}` on the
// control connection; the receiver checksums its slot on the GPU after the broadcast and drains
// only a match. Every NCCL call has a deadline (step timeout, capped by the transfer deadline);
// a timeout, a lost control connection, an abort or a checksum mismatch aborts the communicator
// (ncclCommAbort, never a collective destroy), so nothing waits on a dead peer.
//
// Direct casts (ADR 0002, docs/bridge-protocol.md): when the seed's engine and every receiver's
// offer them (the engine's `hello.direct`, the receiver's signed `hello.direct`), the seed says
// `{type:"join", direct:true}` and no agent joins the communicator: each agent sends its engine
// one `cast` and the engines broadcast between their own tensors, in their own CUDA contexts,
// with no per-bucket host round trip. The seed's engine answers with every bucket's sum32x2, which
// the seed sends as `bucket` frames; each receiver compares them with its engine's and only then
// reports verified (its engine stays `empty` until `complete verified`). Aborts, deadlines and a
// lost control connection become `abort-cast`, which makes the engine abort its communicator.
import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import { Reasons } from '../../api/v1alpha1/conditions.ts';
import { onAbort } from '../../shared/abort.ts';
import { errorMessage, truncate } from '../../shared/errors.ts';
import { bucketRange } from '../bridge/buckets.ts';
import type { CastDone } from '../bridge/messages.ts';
import type { EngineRank } from '../bridge/server.ts';
import { SLOTS_PER_RANK } from '../bridge/server.ts';
import { asTransferError, deadlineError, TransferError } from '../errors.ts';
import { type CudaSlot, isCudaSlot } from '../memory/cuda.ts';
import {
  acceptError,
  acceptReceiver,
  listenForReceivers,
  receiverHello,
  refusedError,
  unexpectedInHandshake,
} from '../peer/handshake.ts';
import {
  type accept as acceptSchema,
  ControlReader,
  encodeHeader,
  FRAME_CONTROL,
  newNonce,
  PEER_PROTOCOL_VERSION,
  peerMessage,
} from '../peer/protocol.ts';
import type {
  ReceiverOutcome,
  ReceiverRankContext,
  SeedRankContext,
  SeedRankSession,
  Transport,
} from './types.ts';

const V = PEER_PROTOCOL_VERSION;
const PING_INTERVAL_MS = 2000;
/** Wire buffers per rank when the agent does not say (SEEDCAST_NCCL_WIRE_BUFFERS). */
export const DEFAULT_WIRE_BUFFERS = 4;

/** Seed → receiver after the rendezvous: your rank in the communicator and its size. */
const join = z.object({
  v: z.literal(V),
  type: z.literal('join'),
  commRank: z.number().int().min(1),
  nranks: z.number().int().min(2).max(4096),
  /** The engines cast directly (every member offered it); absent: the agents broadcast. */
  direct: z.literal(true).optional(),
});
const ncclMessage = z.union([peerMessage, join]);
type NcclMessage = z.infer<typeof ncclMessage>;
/** No chunk frames ever travel on this transport: control frames only, both ways. */
const CONTROL_ONLY = { schema: ncclMessage, noChunks: 'the nccl transport carries no chunk frames' };
type Accept = z.infer<typeof acceptSchema>;

function encode(message: NcclMessage): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  return Buffer.concat([encodeHeader(FRAME_CONTROL, body.length), body]);
}

/** The communicator surface used here (the addon's NcclCommunicator, or a test double). */
export interface Communicator {
  broadcast(
    entries: readonly { buffer: CudaSlot['buffer']; offset?: number; bytes?: number }[],
    options: { root: number; timeoutMs: number },
  ): Promise<{ bytes: number; gpuMs: number }>;
  abort(): Promise<void>;
  close(options: { timeoutMs: number }): Promise<{ aborted: boolean }>;
  /** Of initMs: the connect broadcast that makes NCCL set up its ring before the first bucket. */
  readonly connectMs?: number;
}

export interface NcclApi {
  ncclUniqueId(): Promise<string>;
  initCommunicator(options: {
    uniqueId: string;
    rank: number;
    nranks: number;
    device: number;
    timeoutMs: number;
  }): Promise<Communicator>;
}

/** What one rank's transfer measured (logged, and handed to `onStats`). */
export interface NcclRankStats {
  role: 'seed' | 'receiver';
  /** The engines broadcast themselves (direct cast); the slot and wire figures are then 0. */
  direct: boolean;
  rank: number;
  nranks: number;
  bytes: number;
  buckets: number;
  /** Communicator init, the ring's connection included (connectMs of it). */
  initMs: number;
  connectMs: number;
  /** Wall time of every broadcast call, summed, and the GPU time NCCL reported. */
  broadcastMs: number;
  broadcastGpuMs: number;
  /** First broadcast start → last broadcast end. */
  broadcastSpanMs: number;
  /** Seed: waiting for engine fills; receiver: waiting for drains before a slot could be reused. */
  engineWaitMs: number;
  checksumMs: number;
  /** Wire buffers used (0: broadcast from/into the engine's slots) and time in slot ↔ wire copies. */
  wireBuffers: number;
  copyMs: number;
  teardownMs: number;
  teardownAborted: boolean;
  totalMs: number;
}

export interface NcclTransportOptions {
  api: NcclApi;
  /**
   * Allocates the transport's own "wire" buffers on a device (the addon's allocDevice). With it and
   * `wireBuffers` ≥ 1, buckets go through a ring of agent-owned buffers: the seed copies each filled
   * engine slot into a wire buffer (device → device, ~0.1 ms per 256 MiB) and hands the slot back to
   * the engine at once; the receiver broadcasts into wire buffers and copies into the engine's slot
   * only after the checksum matched. The engine's two slots then never wait on the wire, and up to
   * `wireBuffers` buckets are in flight between the GPUs. Without it, buckets are broadcast from and
   * into the engine's slots directly (two in flight, lock-step with fill/drain).
   */
  allocate?: (device: number, bytes: number) => Promise<WireBuffer>;
  /** Wire buffers per rank and transfer (memory: this × bucket bytes on each side). 0 = off. */
  wireBuffers?: number;
  /** Use direct casts where every member's engine offers them (default true). */
  direct?: boolean;
  onRefused?: (reason: string) => void;
  onStats?: (stats: NcclRankStats) => void;
}

/** An agent-owned device buffer of the wire ring (a DeviceBuffer of the addon). */
export interface WireBuffer {
  readonly device: number;
  readonly bytes: number;
  checksum(offset?: number, bytes?: number): Promise<string>;
  copyFromDevice(
    src: WireBuffer | CudaSlot['buffer'],
    options: { srcOffset?: number; dstOffset?: number; bytes?: number },
  ): Promise<unknown>;
  free(): Promise<void>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (err: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

function cudaSlots(engine: EngineRank): CudaSlot[] {
  const slots = engine.slots;
  if (slots.length < SLOTS_PER_RANK || !slots.every(isCudaSlot))
    throw new TransferError(
      'SEEDCAST_ERR_INVALID',
      Reasons.ValidationFailed,
      `rank ${engine.rank}: the nccl transport needs cuda staging slots (the engine registered ${slots[0]?.kind ?? 'no'} memory); use memory "cuda" in the engine or transport tcp`,
      { retryable: false },
    );
  return slots as CudaSlot[];
}

/** ms left for one NCCL call: the step timeout, never past the transfer deadline. */
function callTimeout(ctx: { stepTimeoutMs: number; deadline: number }): number {
  return Math.max(1, Math.min(ctx.stepTimeoutMs, ctx.deadline - Date.now()));
}

class Peer {
  readonly pod: string;
  readonly uid: string;
  socket: Socket | undefined;
  /** The receiver's engine offered direct casts (signed in its hello). */
  direct = false;
  outcome: ReceiverOutcome | undefined;
  #waiters: Array<() => void> = [];
  constructor(pod: string, uid: string) {
    this.pod = pod;
    this.uid = uid;
  }
  get alive(): boolean {
    return this.outcome === undefined;
  }
  finish(outcome: ReceiverOutcome): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    for (const w of this.#waiters.splice(0)) w();
  }
  waitResult(): Promise<void> {
    if (this.outcome !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  send(message: NcclMessage): void {
    if (this.socket !== undefined && !this.socket.destroyed) this.socket.write(encode(message));
  }
}

export class NcclTransport implements Transport {
  readonly name = 'nccl' as const;
  readonly #options: NcclTransportOptions;

  constructor(options: NcclTransportOptions) {
    this.#options = options;
  }

  // ---------------------------------------------------------------- seed

  async serve(ctx: SeedRankContext): Promise<SeedRankSession> {
    if (ctx.signal.aborted) throw asTransferError(ctx.signal.reason);
    const slots = cudaSlots(ctx.engine);
    const device = slots[0]!.device;
    const uniqueId = await this.#options.api.ncclUniqueId();
    const log = ctx.log;
    const peers = new Map(ctx.receivers.map((r) => [r.pod, new Peer(r.pod, r.uid)]));
    let started = false;
    let comm: Communicator | undefined;
    let aborting: Promise<void> | undefined;
    /** The engine's direct cast while it runs (its communicator is the engine's to abort). */
    let casting: Promise<unknown> | undefined;
    const abortComm = (why: string): void => {
      if (aborting !== undefined) return;
      if (comm !== undefined) {
        log.warn({ why }, 'aborting the nccl communicator');
        aborting = comm.abort().catch(() => {});
      } else if (casting !== undefined) {
        log.warn({ why }, "aborting the engine's direct cast");
        aborting = abortCast(ctx.engine, casting, ctx.stepTimeoutMs);
      }
    };
    let rendezvousDone: () => void = () => {};
    const rendezvous = new Promise<void>((resolve) => {
      rendezvousDone = resolve;
    });
    const checkRendezvous = (): void => {
      if ([...peers.values()].every((p) => p.socket !== undefined || !p.alive)) rendezvousDone();
    };

    const server = await listenForReceivers(
      ctx,
      (socket) =>
        acceptReceiver<Peer, NcclMessage>(socket, {
          ctx,
          peers,
          started: () => started,
          read: (s, onMessage, onError) => new ControlReader(s, CONTROL_ONLY, onMessage, onError),
          chunkBytes: 4,
          lostMessage: 'receiver control connection closed before it reported',
          slotRefusal: (peer, hello) =>
            peer.socket !== undefined || hello.stream !== 0 || hello.streams !== 1
              ? {
                  code: 'SEEDCAST_ERR_INVALID',
                  reason: Reasons.Failed,
                  message: `${hello.pod} is already connected (nccl uses one control connection per rank)`,
                }
              : undefined,
          admit: (peer, hello, socket) => {
            peer.socket = socket;
            peer.direct = hello.direct === true;
          },
          admitted: (_peer, hello) => {
            log.info({ peer: hello.pod }, 'receiver accepted (nccl control)');
            checkRendezvous();
          },
          dropped: (_peer, why) => {
            // One communicator for all: a lost member would stall every broadcast until the deadline.
            if (started) abortComm(why);
            checkRendezvous();
          },
          onRefused: this.#options.onRefused,
        }),
      'seed listening (nccl)',
    );

    const done = (async (): Promise<ReceiverOutcome[]> => {
      const abort = new AbortController();
      const unlink = onAbort(ctx.signal, () => abort.abort(ctx.signal.reason));
      const deadline = setTimeout(
        () => abort.abort(deadlineError('while broadcasting')),
        Math.max(0, ctx.deadline - Date.now()),
      );
      abort.signal.addEventListener('abort', () => abortComm(errorMessage(abort.signal.reason)), {
        once: true,
      });
      const pinger = setInterval(() => {
        for (const p of peers.values()) if (p.alive) p.send({ v: V, type: 'ping' });
      }, PING_INTERVAL_MS);
      const t0 = performance.now();
      let ring: WireBuffer[] = [];
      const stats: NcclRankStats = {
        role: 'seed',
        direct: false,
        rank: ctx.rank,
        nranks: 0,
        bytes: ctx.engine.totalBytes,
        buckets: ctx.engine.buckets,
        initMs: 0,
        connectMs: 0,
        broadcastMs: 0,
        broadcastGpuMs: 0,
        broadcastSpanMs: 0,
        engineWaitMs: 0,
        checksumMs: 0,
        wireBuffers: 0,
        copyMs: 0,
        teardownMs: 0,
        teardownAborted: false,
        totalMs: 0,
      };
      try {
        const aborted = new Promise<never>((_, reject) => {
          const fail = (): void => reject(asTransferError(abort.signal.reason));
          if (abort.signal.aborted) fail();
          abort.signal.addEventListener('abort', fail, { once: true });
        });
        aborted.catch(() => {});
        const rendezvousTimer = new Promise<void>((resolve) =>
          setTimeout(resolve, ctx.stepTimeoutMs).unref(),
        );
        await Promise.race([rendezvous, rendezvousTimer, aborted]);
        started = true;
        for (const p of peers.values())
          if (p.alive && p.socket === undefined)
            p.finish({
              pod: p.pod,
              outcome: 'failed',
              reason: Reasons.ReceiverLost,
              message: `did not connect within ${ctx.stepTimeoutMs} ms`,
            });
        const live = ctx.receivers.map((r) => peers.get(r.pod) as Peer).filter((p) => p.alive);
        if (live.length === 0)
          throw new TransferError('SEEDCAST_ERR_PEER_LOST', Reasons.ReceiverLost, 'no receiver connected');
        const nranks = 1 + live.length;
        stats.nranks = nranks;
        const direct = this.#options.direct !== false && ctx.engine.direct && live.every((p) => p.direct);
        for (const [i, p] of live.entries())
          p.send({ v: V, type: 'join', commRank: i + 1, nranks, ...(direct ? { direct } : {}) });
        log.info(
          { receivers: live.map((p) => p.pod), nranks, device, direct },
          'rendezvous complete, forming the communicator',
        );
        if (direct) {
          stats.direct = true;
          const cast = ctx.engine.cast({
            role: 'send',
            uniqueId,
            commRank: 0,
            nranks,
            initTimeoutMs: callTimeout(ctx),
            timeoutMs: Math.max(1, ctx.deadline - Date.now()),
          });
          casting = cast;
          cast.catch(() => {});
          if (abort.signal.aborted) abortComm('aborted as the cast started');
          const result = await Promise.race([cast, aborted]);
          casting = undefined;
          castStats(stats, result);
          for (const p of live) {
            if (!p.alive) continue;
            for (const [bucket, checksum] of result.checksums.entries()) {
              const { bytes } = bucketRange(ctx.engine.totalBytes, ctx.engine.bucketBytes, bucket);
              p.send({ v: V, type: 'bucket', bucket, bytes, checksum });
            }
          }
          ctx.onBytesSent(ctx.engine.totalBytes * live.filter((p) => p.alive).length);
        } else {
          const ringing = this.#ring(device, ctx.engine.bucketBytes, ctx.engine.buckets, log);
          const tInit = performance.now();
          const initTimeout = callTimeout(ctx);
          const initing = this.#options.api.initCommunicator({
            uniqueId,
            rank: 0,
            nranks,
            device,
            timeoutMs: initTimeout,
          });
          initing.then(
            (c) => {
              comm = c;
              if (abort.signal.aborted) abortComm('aborted during init');
            },
            () => {},
          );
          comm = await Promise.race([initing, aborted]);
          stats.initMs = performance.now() - tInit;
          stats.connectMs = comm.connectMs ?? 0;
          ring = await ringing;
          stats.wireBuffers = ring.length;
          if (!live.some((p) => p.alive))
            throw new TransferError(
              'SEEDCAST_ERR_PEER_LOST',
              Reasons.ReceiverLost,
              'every receiver was lost',
            );
          await Promise.race([
            ring.length > 0
              ? this.#broadcastRing(ctx, comm, slots, ring, live, stats, abort.signal, aborted)
              : this.#broadcastAll(ctx, comm, slots, live, stats, abort.signal),
            aborted,
          ]);
        }
        await Promise.race([
          Promise.all(live.map((p) => p.waitResult())),
          aborted,
          new Promise<void>((_, reject) =>
            setTimeout(
              () =>
                reject(
                  new TransferError(
                    'SEEDCAST_ERR_TIMEOUT',
                    Reasons.ReceiverLost,
                    `no result from every receiver within ${ctx.stepTimeoutMs} ms of the last broadcast`,
                  ),
                ),
              ctx.stepTimeoutMs,
            ).unref(),
          ),
        ]);
        if (comm !== undefined) {
          const tClose = performance.now();
          const closed = await comm.close({ timeoutMs: callTimeout(ctx) });
          stats.teardownMs = performance.now() - tClose;
          stats.teardownAborted = closed.aborted;
          comm = undefined;
        }
        stats.totalMs = performance.now() - t0;
        log.info({ nccl: stats }, 'nccl seed rank done');
        this.#options.onStats?.(stats);
        return [...peers.values()].map((p) => p.outcome as ReceiverOutcome);
      } catch (err) {
        const failure = asTransferError(err);
        for (const p of peers.values()) {
          p.send({ v: V, type: 'abort', reason: failure.reason, message: truncate(failure.message) });
          p.finish({ pod: p.pod, outcome: 'failed', reason: failure.reason, message: failure.message });
        }
        if (comm !== undefined || casting !== undefined) {
          const tAbort = performance.now();
          abortComm(failure.message);
          await aborting;
          stats.teardownMs = performance.now() - tAbort;
          stats.teardownAborted = true;
        }
        stats.totalMs = performance.now() - t0;
        log.warn({ nccl: stats, err: failure.message }, 'nccl seed rank failed');
        this.#options.onStats?.(stats);
        throw failure;
      } finally {
        // After close/abort no NCCL call touches the wire buffers; a copy or checksum still running
        // (the producer after a failure) pins its buffer in the addon, which frees it afterwards.
        for (const w of ring) void w.free().catch(() => {});
        clearTimeout(deadline);
        clearInterval(pinger);
        unlink();
        server.close();
        for (const p of peers.values()) p.socket?.end();
      }
    })();
    return { address: `${ctx.host}:${ctx.port}`, uniqueId, done };
  }

  /** The wire ring for one rank's transfer ([] when off or when the memory is not there). */
  async #ring(
    device: number,
    bucketBytes: number,
    buckets: number,
    log: SeedRankContext['log'],
  ): Promise<WireBuffer[]> {
    const allocate = this.#options.allocate;
    const count = Math.min(this.#options.wireBuffers ?? DEFAULT_WIRE_BUFFERS, buckets);
    if (allocate === undefined || count < 1) return [];
    const ring: WireBuffer[] = [];
    try {
      for (let i = 0; i < count; i++) ring.push(await allocate(device, bucketBytes));
      return ring;
    } catch (err) {
      for (const w of ring) void w.free().catch(() => {});
      log.warn(
        { err: errorMessage(err), device, wireBuffers: count, bucketBytes },
        'no memory for the nccl wire buffers: broadcasting from the engine slots directly',
      );
      return [];
    }
  }

  /**
   * Seed with a wire ring: a producer copies each filled slot into wire buffer `b mod K` (once
   * bucket b−K left it), returns the slot to the engine and checksums the wire buffer; the
   * broadcast loop sends bucket after bucket as soon as each is staged, without waiting for fills.
   */
  async #broadcastRing(
    ctx: SeedRankContext,
    comm: Communicator,
    slots: CudaSlot[],
    ring: WireBuffer[],
    peers: Peer[],
    stats: NcclRankStats,
    signal: AbortSignal,
    aborted: Promise<never>,
  ): Promise<void> {
    const { engine } = ctx;
    const n = engine.buckets;
    const K = ring.length;
    const staged = Array.from({ length: n }, () => deferred<string>());
    const sent = Array.from({ length: n }, () => deferred<void>());
    const fills: Array<Promise<number>> = [];
    const startFill = (bucket: number): void => {
      const fill = engine.fill(bucket, bucket % SLOTS_PER_RANK, ctx.stepTimeoutMs);
      fill.catch(() => {});
      fills[bucket] = fill;
    };
    for (let b = 0; b < Math.min(SLOTS_PER_RANK, n); b++) startFill(b);
    const producer = (async () => {
      for (let bucket = 0; bucket < n; bucket++) {
        if (signal.aborted) throw asTransferError(signal.reason);
        const range = bucketRange(engine.totalBytes, engine.bucketBytes, bucket);
        const filled = await Promise.race([fills[bucket] as Promise<number>, aborted]);
        if (filled !== range.bytes)
          throw new TransferError(
            'SEEDCAST_ERR_PROTOCOL',
            Reasons.Failed,
            `engine filled ${filled} bytes of bucket ${bucket}, expected ${range.bytes}`,
          );
        if (bucket >= K) await Promise.race([(sent[bucket - K] as Deferred<void>).promise, aborted]);
        const wire = ring[bucket % K] as WireBuffer;
        const tCopy = performance.now();
        await wire.copyFromDevice((slots[bucket % SLOTS_PER_RANK] as CudaSlot).buffer, {
          bytes: range.bytes,
        });
        stats.copyMs += performance.now() - tCopy;
        if (bucket + SLOTS_PER_RANK < n) startFill(bucket + SLOTS_PER_RANK);
        const d = staged[bucket] as Deferred<string>;
        const tSum = performance.now();
        wire.checksum(0, range.bytes).then((sum) => {
          stats.checksumMs += performance.now() - tSum;
          d.resolve(sum);
        }, d.reject);
      }
    })();
    producer.catch(() => {});
    const producerFailed = producer.then(
      () => new Promise<never>(() => {}),
      (err: unknown) => Promise.reject(err),
    );
    producerFailed.catch(() => {});
    let first = 0;
    try {
      for (let bucket = 0; bucket < n; bucket++) {
        if (signal.aborted) throw asTransferError(signal.reason);
        const range = bucketRange(engine.totalBytes, engine.bucketBytes, bucket);
        const tWait = performance.now();
        const checksum = await Promise.race([
          (staged[bucket] as Deferred<string>).promise,
          producerFailed,
          aborted,
        ]);
        stats.engineWaitMs += performance.now() - tWait;
        for (const p of peers)
          if (p.alive) p.send({ v: V, type: 'bucket', bucket, bytes: range.bytes, checksum });
        if (!peers.some((p) => p.alive))
          throw new TransferError('SEEDCAST_ERR_PEER_LOST', Reasons.ReceiverLost, 'every receiver was lost');
        const tCast = performance.now();
        if (bucket === 0) first = tCast;
        const result = await comm.broadcast(
          [{ buffer: ring[bucket % K] as unknown as CudaSlot['buffer'], offset: 0, bytes: range.bytes }],
          { root: 0, timeoutMs: callTimeout(ctx) },
        );
        const tEnd = performance.now();
        stats.broadcastMs += tEnd - tCast;
        stats.broadcastGpuMs += result.gpuMs;
        stats.broadcastSpanMs = tEnd - first;
        ctx.onBytesSent(range.bytes * peers.filter((p) => p.alive).length);
        (sent[bucket] as Deferred<void>).resolve();
      }
      await producer;
    } catch (err) {
      // Unblock the producer so it does not wait on a bucket that will never be sent.
      for (const d of sent) d.reject(err);
      throw err;
    }
  }

  async #broadcastAll(
    ctx: SeedRankContext,
    comm: Communicator,
    slots: CudaSlot[],
    peers: Peer[],
    stats: NcclRankStats,
    signal: AbortSignal,
  ): Promise<void> {
    const { engine } = ctx;
    const fills: Array<Promise<number>> = [];
    const startFill = (bucket: number): void => {
      const fill = engine.fill(bucket, bucket % SLOTS_PER_RANK, ctx.stepTimeoutMs);
      fill.catch(() => {});
      fills[bucket] = fill;
    };
    for (let b = 0; b < Math.min(SLOTS_PER_RANK, engine.buckets); b++) startFill(b);
    let first = 0;
    for (let bucket = 0; bucket < engine.buckets; bucket++) {
      if (signal.aborted) throw asTransferError(signal.reason);
      const range = bucketRange(engine.totalBytes, engine.bucketBytes, bucket);
      const tWait = performance.now();
      const filled = await fills[bucket];
      stats.engineWaitMs += performance.now() - tWait;
      if (filled !== range.bytes)
        throw new TransferError(
          'SEEDCAST_ERR_PROTOCOL',
          Reasons.Failed,
          `engine filled ${filled} bytes of bucket ${bucket}, expected ${range.bytes}`,
        );
      const slot = slots[bucket % SLOTS_PER_RANK] as CudaSlot;
      const tSum = performance.now();
      const checksum = await slot.checksum(range.bytes);
      stats.checksumMs += performance.now() - tSum;
      for (const p of peers)
        if (p.alive) p.send({ v: V, type: 'bucket', bucket, bytes: range.bytes, checksum });
      if (!peers.some((p) => p.alive))
        throw new TransferError('SEEDCAST_ERR_PEER_LOST', Reasons.ReceiverLost, 'every receiver was lost');
      const tCast = performance.now();
      if (bucket === 0) first = tCast;
      const result = await comm.broadcast([{ buffer: slot.buffer, offset: 0, bytes: range.bytes }], {
        root: 0,
        timeoutMs: callTimeout(ctx),
      });
      const tEnd = performance.now();
      stats.broadcastMs += tEnd - tCast;
      stats.broadcastGpuMs += result.gpuMs;
      stats.broadcastSpanMs = tEnd - first;
      ctx.onBytesSent(range.bytes * peers.filter((p) => p.alive).length);
      // The slot is on every receiver now: the engine may refill it.
      if (bucket + SLOTS_PER_RANK < engine.buckets) startFill(bucket + SLOTS_PER_RANK);
    }
  }

  /**
   * Receiver with a wire ring: broadcast bucket b into wire buffer `b mod K` once bucket b−K was
   * copied out of it; in the background, per bucket in order: checksum the wire buffer on the GPU,
   * compare with the seed's, wait until the engine drained the slot's previous bucket, copy wire →
   * slot (device → device) and ask the engine to drain. Nothing reaches the engine unverified.
   */
  async #receiveRing(
    ctx: ReceiverRankContext,
    comm: Communicator,
    slots: CudaSlot[],
    ring: WireBuffer[],
    stats: NcclRankStats,
    io: {
      failedPromise: Promise<never>;
      expectChecksum: (bucket: number) => Promise<string | undefined>;
      fail: (err: unknown) => void;
      /** The first failure, once there is one: no drain starts after it. */
      failure: () => TransferError | undefined;
    },
  ): Promise<void> {
    const { engine } = ctx;
    const n = engine.buckets;
    const K = ring.length;
    const freed = Array.from({ length: n }, () => deferred<void>());
    const drained = Array.from({ length: n }, () => deferred<void>());
    const posts: Array<Promise<void>> = [];
    let verifiedBytes = 0;
    const post = async (bucket: number, bytes: number): Promise<void> => {
      const wire = ring[bucket % K] as WireBuffer;
      const tSum = performance.now();
      const actual = await wire.checksum(0, bytes);
      stats.checksumMs += performance.now() - tSum;
      const want = await io.expectChecksum(bucket);
      if (actual !== want) throw checksumMismatch(bucket, actual, want);
      if (bucket >= SLOTS_PER_RANK) {
        const tWait = performance.now();
        await Promise.race([(drained[bucket - SLOTS_PER_RANK] as Deferred<void>).promise, io.failedPromise]);
        stats.engineWaitMs += performance.now() - tWait;
      }
      const slot = slots[bucket % SLOTS_PER_RANK] as CudaSlot;
      const tCopy = performance.now();
      await (slot.buffer as unknown as WireBuffer).copyFromDevice(wire, { bytes });
      stats.copyMs += performance.now() - tCopy;
      (freed[bucket] as Deferred<void>).resolve();
      // Drains go to the engine in bucket order, and none starts once a bucket has failed.
      if (bucket > 0) await Promise.race([(drained[bucket - 1] as Deferred<void>).promise, io.failedPromise]);
      const failure = io.failure();
      if (failure !== undefined) throw failure;
      await engine.drain(bucket, bucket % SLOTS_PER_RANK, ctx.stepTimeoutMs);
      (drained[bucket] as Deferred<void>).resolve();
      verifiedBytes += bytes;
      ctx.onProgress(verifiedBytes);
    };
    let first = 0;
    for (let bucket = 0; bucket < n; bucket++) {
      const range = bucketRange(engine.totalBytes, engine.bucketBytes, bucket);
      if (bucket >= K) await Promise.race([(freed[bucket - K] as Deferred<void>).promise, io.failedPromise]);
      const tCast = performance.now();
      if (bucket === 0) first = tCast;
      const result = await Promise.race([
        comm.broadcast(
          [{ buffer: ring[bucket % K] as unknown as CudaSlot['buffer'], offset: 0, bytes: range.bytes }],
          { root: 0, timeoutMs: callTimeout(ctx) },
        ),
        io.failedPromise,
      ]);
      const tEnd = performance.now();
      stats.broadcastMs += tEnd - tCast;
      stats.broadcastGpuMs += result.gpuMs;
      stats.broadcastSpanMs = tEnd - first;
      const p = post(bucket, range.bytes);
      p.catch((err) => io.fail(err));
      posts.push(p);
    }
    await Promise.race([Promise.all(posts), io.failedPromise]);
  }

  // ---------------------------------------------------------------- receiver

  async receive(ctx: ReceiverRankContext): Promise<void> {
    const { engine } = ctx;
    const slots = cudaSlots(engine);
    const device = slots[0]!.device;
    const uniqueId = ctx.uniqueId;
    if (uniqueId === undefined)
      throw new TransferError(
        'SEEDCAST_ERR_PROTOCOL',
        Reasons.Failed,
        `the seed's rendezvous entry for rank ${ctx.rank} has no NCCL uniqueId`,
      );
    if (ctx.signal.aborted) throw asTransferError(ctx.signal.reason);
    const log = ctx.log;
    const [host, port] = splitAddress(ctx.address);
    const t0 = performance.now();
    const stats: NcclRankStats = {
      role: 'receiver',
      direct: false,
      rank: ctx.rank,
      nranks: 0,
      bytes: engine.totalBytes,
      buckets: engine.buckets,
      initMs: 0,
      connectMs: 0,
      broadcastMs: 0,
      broadcastGpuMs: 0,
      broadcastSpanMs: 0,
      engineWaitMs: 0,
      checksumMs: 0,
      wireBuffers: 0,
      copyMs: 0,
      teardownMs: 0,
      teardownAborted: false,
      totalMs: 0,
    };
    let comm: Communicator | undefined;
    let aborting: Promise<void> | undefined;
    let casting: Promise<unknown> | undefined;
    /** Stops what holds NCCL now: this agent's communicator, or its engine's direct cast. */
    const abortRunning = (): void => {
      if (aborting !== undefined) return;
      if (comm !== undefined) aborting = comm.abort().catch(() => {});
      else if (casting !== undefined) aborting = abortCast(engine, casting, ctx.stepTimeoutMs);
    };
    const offerDirect = this.#options.direct !== false && engine.direct;
    let failed: TransferError | undefined;
    let socket: Socket | undefined;
    const expected = new Map<number, string>();
    const checksumWaiters = new Map<number, () => void>();
    type Join = { commRank: number; nranks: number; direct: boolean };
    let joined: ((j: Join) => void) | undefined;
    const joining = new Promise<Join>((resolve) => {
      joined = resolve;
    });
    let rejectFailed: (err: TransferError) => void = () => {};
    const failedPromise = new Promise<never>((_, reject) => {
      rejectFailed = reject;
    });
    failedPromise.catch(() => {});
    const fail = (err: unknown): void => {
      if (failed !== undefined) return;
      failed = asTransferError(err, Reasons.SeedLost);
      if (socket !== undefined && !socket.destroyed)
        socket.end(encode({ v: V, type: 'abort', reason: failed.reason, message: truncate(failed.message) }));
      abortRunning();
      rejectFailed(failed);
    };
    const unlink = onAbort(ctx.signal, () => fail(ctx.signal.reason));
    const deadline = setTimeout(
      () => fail(deadlineError('while receiving')),
      Math.max(0, ctx.deadline - Date.now()),
    );
    let drainedAll = false;
    let ring: WireBuffer[] = [];
    const takeExpected = (bucket: number): string | undefined => {
      checksumWaiters.delete(bucket);
      const want = expected.get(bucket);
      expected.delete(bucket);
      return want;
    };
    /** Rejects when the seed's checksum of `bucket` has not come within the step timeout. */
    const checksumTimeout = (bucket: number): Promise<never> =>
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new TransferError('SEEDCAST_ERR_TIMEOUT', Reasons.SeedLost, `no checksum for bucket ${bucket}`),
            ),
          ctx.stepTimeoutMs,
        ).unref(),
      );
    /** The seed's checksum of `bucket`: at once if it came, else when it comes (or the step times out). */
    const expectChecksum = (bucket: number): Promise<string | undefined> =>
      expected.has(bucket)
        ? Promise.resolve(takeExpected(bucket))
        : Promise.race([
            new Promise<string | undefined>((resolve) =>
              checksumWaiters.set(bucket, () => resolve(takeExpected(bucket))),
            ),
            failedPromise,
            checksumTimeout(bucket),
          ]);
    try {
      const accepted = await new Promise<Accept>((resolve, reject) => {
        const nonce = newNonce();
        let seedNonce: string | undefined;
        let handshaken = false;
        const s = connect({ host, port });
        socket = s;
        s.setNoDelay(true);
        const handshakeTimer = setTimeout(
          () =>
            reject(
              new TransferError(
                'SEEDCAST_ERR_TIMEOUT',
                Reasons.SeedLost,
                `no accept from ${ctx.address} in time`,
              ),
            ),
          ctx.stepTimeoutMs,
        );
        s.on('error', (err) => {
          if (!handshaken)
            reject(
              new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.SeedLost,
                `cannot reach seed at ${ctx.address}: ${err.message}`,
              ),
            );
        });
        s.on('close', () => {
          clearTimeout(handshakeTimer);
          if (!handshaken)
            reject(
              new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.SeedLost,
                `seed at ${ctx.address} closed the connection during the handshake`,
              ),
            );
          else if (!drainedAll)
            fail(
              new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.SeedLost,
                'lost the control connection to the seed',
              ),
            );
        });
        new ControlReader(
          s,
          CONTROL_ONLY,
          (message) => {
            if (!handshaken) {
              if (message.type === 'challenge') {
                seedNonce = message.nonce;
                s.write(encode(receiverHello(ctx, 0, 1, nonce, message.nonce, offerDirect)));
                return;
              }
              if (message.type === 'accept' && seedNonce !== undefined) {
                clearTimeout(handshakeTimer);
                const refused = acceptError(ctx, message, nonce, seedNonce);
                if (refused !== undefined) return reject(refused);
                handshaken = true;
                return resolve(message);
              }
              if (message.type === 'refuse') {
                clearTimeout(handshakeTimer);
                return reject(refusedError(ctx, message));
              }
              return reject(unexpectedInHandshake(message.type));
            }
            switch (message.type) {
              case 'join':
                if (message.direct === true && !offerDirect) {
                  fail(
                    new TransferError(
                      'SEEDCAST_ERR_PROTOCOL',
                      Reasons.Failed,
                      'the seed asked for a direct cast this receiver did not offer',
                    ),
                  );
                  return;
                }
                joined?.({
                  commRank: message.commRank,
                  nranks: message.nranks,
                  direct: message.direct === true,
                });
                return;
              case 'bucket':
                expected.set(message.bucket, message.checksum);
                checksumWaiters.get(message.bucket)?.();
                return;
              case 'abort':
                fail(
                  new TransferError(
                    'SEEDCAST_ERR_ABORTED',
                    message.reason || Reasons.SeedLost,
                    `seed aborted: ${message.message}`,
                  ),
                );
                return;
              case 'ping':
                return;
              default:
                fail(
                  new TransferError(
                    'SEEDCAST_ERR_PROTOCOL',
                    Reasons.Failed,
                    `unexpected ${message.type} from the seed`,
                  ),
                );
            }
          },
          (reason) => {
            const err = new TransferError(
              'SEEDCAST_ERR_PROTOCOL',
              Reasons.Failed,
              `seed control connection: ${reason}`,
            );
            if (handshaken) fail(err);
            else reject(err);
            s.destroy();
          },
        );
      });
      if (accepted.fingerprint !== engine.fingerprint)
        throw new TransferError(
          'SEEDCAST_ERR_FINGERPRINT_MISMATCH',
          Reasons.FingerprintMismatch,
          `seed rank ${ctx.rank} fingerprint ${accepted.fingerprint} differs from ours ${engine.fingerprint}`,
        );
      if (accepted.totalBytes !== engine.totalBytes || accepted.bucketBytes !== engine.bucketBytes)
        throw new TransferError(
          'SEEDCAST_ERR_INVALID',
          Reasons.ValidationFailed,
          `seed plans ${accepted.totalBytes} bytes in buckets of ${accepted.bucketBytes}, this agent ${engine.totalBytes} in buckets of ${engine.bucketBytes}; agents of one WeightSource need the same bucket size`,
          { retryable: false },
        );
      const rendezvousTimer = new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new TransferError(
                'SEEDCAST_ERR_TIMEOUT',
                Reasons.SeedLost,
                `no join from the seed within ${ctx.stepTimeoutMs} ms`,
              ),
            ),
          callTimeout(ctx) + 1000,
        ).unref(),
      );
      rendezvousTimer.catch(() => {});
      const { commRank, nranks, direct } = await Promise.race([joining, failedPromise, rendezvousTimer]);
      stats.nranks = nranks;
      log.info({ commRank, nranks, device, direct }, 'joining the nccl communicator');
      if (direct) {
        stats.direct = true;
        const cast = engine.cast({
          role: 'receive',
          uniqueId,
          commRank,
          nranks,
          initTimeoutMs: callTimeout(ctx),
          timeoutMs: Math.max(1, ctx.deadline - Date.now()),
        });
        casting = cast;
        cast.catch(() => {});
        if (failed !== undefined) abortRunning();
        const result = await Promise.race([cast, failedPromise]);
        casting = undefined;
        castStats(stats, result);
        const tSum = performance.now();
        for (const [bucket, actual] of result.checksums.entries()) {
          const want = await expectChecksum(bucket);
          if (actual !== want) throw checksumMismatch(bucket, actual, want);
        }
        stats.checksumMs = performance.now() - tSum;
        ctx.onProgress(engine.totalBytes);
        drainedAll = true;
        socket?.write(encode({ v: V, type: 'result', outcome: 'verified' }));
        stats.totalMs = performance.now() - t0;
        log.info({ nccl: stats }, 'nccl receiver rank done (direct cast)');
        this.#options.onStats?.(stats);
        return;
      }
      const tInit = performance.now();
      const initing = this.#options.api.initCommunicator({
        uniqueId,
        rank: commRank,
        nranks,
        device,
        timeoutMs: callTimeout(ctx),
      });
      initing.then(
        (c) => {
          comm = c;
          if (failed !== undefined) abortRunning();
        },
        () => {},
      );
      const ringing = this.#ring(device, engine.bucketBytes, engine.buckets, log);
      const c = await Promise.race([initing, failedPromise]);
      comm = c;
      stats.initMs = performance.now() - tInit;
      stats.connectMs = c.connectMs ?? 0;
      ring = await ringing;
      stats.wireBuffers = ring.length;
      if (ring.length > 0) {
        await this.#receiveRing(ctx, c, slots, ring, stats, {
          failedPromise,
          expectChecksum,
          fail,
          failure: () => failed,
        });
      }

      const drains: Array<Promise<void>> = [];
      let verifiedBytes = 0;
      let first = 0;
      const verifyAndDrain = async (
        bucket: number,
        slot: CudaSlot,
        bytes: number,
        previous: Promise<void> | undefined,
      ): Promise<void> => {
        const tSum = performance.now();
        const actual = await slot.checksum(bytes);
        stats.checksumMs += performance.now() - tSum;
        const want = await expectChecksum(bucket);
        if (actual !== want) throw checksumMismatch(bucket, actual, want);
        // Drains go to the engine in bucket order, and none starts once a bucket has failed.
        if (previous !== undefined) await Promise.race([previous, failedPromise]);
        if (failed !== undefined) throw failed;
        await engine.drain(bucket, bucket % SLOTS_PER_RANK, ctx.stepTimeoutMs);
        verifiedBytes += bytes;
        ctx.onProgress(verifiedBytes);
      };
      for (let bucket = 0; ring.length === 0 && bucket < engine.buckets; bucket++) {
        if (failed !== undefined) throw failed;
        const range = bucketRange(engine.totalBytes, engine.bucketBytes, bucket);
        const slot = slots[bucket % SLOTS_PER_RANK] as CudaSlot;
        // The slot still holds bucket-2 until the engine drained it.
        const previous = drains[bucket - SLOTS_PER_RANK];
        if (previous !== undefined) {
          const tWait = performance.now();
          await Promise.race([previous, failedPromise]);
          stats.engineWaitMs += performance.now() - tWait;
        }
        const tCast = performance.now();
        if (bucket === 0) first = tCast;
        const result = await Promise.race([
          c.broadcast([{ buffer: slot.buffer, offset: 0, bytes: range.bytes }], {
            root: 0,
            timeoutMs: callTimeout(ctx),
          }),
          failedPromise,
        ]);
        const tEnd = performance.now();
        stats.broadcastMs += tEnd - tCast;
        stats.broadcastGpuMs += result.gpuMs;
        stats.broadcastSpanMs = tEnd - first;
        const drain = verifyAndDrain(bucket, slot, range.bytes, drains[bucket - 1]);
        drain.catch((err) => fail(err));
        drains[bucket] = drain;
      }
      await Promise.race([Promise.all(drains), failedPromise]);
      drainedAll = true;
      socket?.write(encode({ v: V, type: 'result', outcome: 'verified' }));
      const tClose = performance.now();
      const closed = await c.close({ timeoutMs: callTimeout(ctx) });
      stats.teardownMs = performance.now() - tClose;
      stats.teardownAborted = closed.aborted;
      comm = undefined;
      stats.totalMs = performance.now() - t0;
      log.info({ nccl: stats }, 'nccl receiver rank done');
      this.#options.onStats?.(stats);
    } catch (err) {
      fail(err);
      if (aborting !== undefined) {
        const tAbort = performance.now();
        await aborting;
        stats.teardownMs = performance.now() - tAbort;
        stats.teardownAborted = true;
      }
      stats.totalMs = performance.now() - t0;
      log.warn({ nccl: stats, err: failed?.message }, 'nccl receiver rank failed');
      this.#options.onStats?.(stats);
      throw failed ?? asTransferError(err);
    } finally {
      // After close/abort no NCCL call writes into the wire buffers; a checksum or copy still
      // running (a post after a failure) pins its buffer in the addon, which frees it afterwards.
      for (const w of ring) void w.free().catch(() => {});
      clearTimeout(deadline);
      unlink();
      if (socket !== undefined && !socket.destroyed) socket.end();
    }
  }
}

/** Ask the engine to stop its cast, then wait (bounded) for the cast to settle: its communicator is aborted then. */
async function abortCast(engine: EngineRank, casting: Promise<unknown>, timeoutMs: number): Promise<void> {
  await engine.abortCast(timeoutMs).catch(() => {});
  await Promise.race([
    casting.then(
      () => {},
      () => {},
    ),
    new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
  ]);
}

/** A direct cast's figures, as the engine measured them, in the agent's per-rank stats. */
function castStats(stats: NcclRankStats, result: CastDone): void {
  const figure = (key: string): number => result.stats?.[key] ?? 0;
  stats.initMs = figure('initMs');
  stats.connectMs = figure('connectMs');
  stats.broadcastMs = figure('castMs');
  stats.broadcastGpuMs = figure('gpuMs');
  stats.broadcastSpanMs = figure('gpuMs');
  // The engine finalizes its communicator after answering (off the critical path): no teardown here.
}

function checksumMismatch(bucket: number, actual: string, want: string | undefined): TransferError {
  return new TransferError(
    'SEEDCAST_ERR_CHECKSUM',
    Reasons.ChecksumMismatch,
    `bucket ${bucket} checksum ${actual} differs from the seed's ${want}`,
  );
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))];
}
