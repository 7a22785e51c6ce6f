// The `tcp` transport: host-staged buckets over several TCP streams per rank. The seed fills
// each bucket once (double-buffered), reads it out of the slot chunk by chunk into pooled
// buffers, and writes every chunk to every receiver (fan-out costs sockets, not fills or
// copies). Receivers read chunks straight into pooled buffers (`onread`), write them into their
// slot, checksum them, and drain a bucket only after its checksum matched. Flow control is
// per receiver: a credit per bucket, granted once the slot that will hold it is free.
import { connect, type Socket } from 'node:net';
import { Reasons } from '../../api/v1alpha1/conditions.ts';
import { onAbort } from '../../shared/abort.ts';
import { errorMessage, truncate } from '../../shared/errors.ts';
import { bucketRange } from '../bridge/buckets.ts';
import { SLOTS_PER_RANK } from '../bridge/server.ts';
import { BucketChecksum, type Partial32x2 } from '../checksum.ts';
import { asTransferError, deadlineError, TransferError } from '../errors.ts';
import { isAsyncSlot, mappedView } from '../memory/host.ts';
import {
  acceptError,
  acceptReceiver,
  listenForReceivers,
  receiverHello,
  refusedError,
  unexpectedInHandshake,
} from '../peer/handshake.ts';
import {
  type Accept,
  ControlReader,
  decodeHeader,
  encodeControl,
  encodeHeader,
  FRAME_CHUNK,
  HEADER_BYTES,
  MAX_CHUNK_BYTES,
  newNonce,
  PEER_PROTOCOL_VERSION,
  type PeerMessage,
  parseControl,
  peerMessage,
} from '../peer/protocol.ts';
import { type ChunkPool, Pacer } from './pool.ts';
import type {
  ReceiverOutcome,
  ReceiverRankContext,
  SeedRankContext,
  SeedRankSession,
  Transport,
} from './types.ts';

export interface TcpTransportOptions {
  /** Parallel TCP streams each receiver opens per rank. */
  streams: number;
  /** Bytes per chunk frame (≤ 4 MiB, a multiple of 4). */
  chunkBytes: number;
  /** Chunks a seed rank may have in flight (read from the slot, not yet on the wire). */
  window: number;
  pool: ChunkPool;
  /**
   * sum32x2 over any host range (the native addon's). With it, mapped host slots are sent and
   * received in place: no chunk buffers, no copies by the agent besides the kernel's.
   */
  sum?: (bytes: Uint8Array) => Partial32x2;
  /**
   * The same on a pool thread: a seed sending in place checksums each chunk there while its JS
   * thread writes the sockets (its busiest thread otherwise spends a third of its time summing).
   */
  sumAsync?: (bytes: Uint8Array) => Promise<Partial32x2>;
  /**
   * Where an in-place receiver sums what landed: `inline` on its socket thread, read by read
   * while the bytes are in cache (least CPU), or `pool` on a pool thread (frees the socket
   * thread on hosts with cores to spare). Needs `sumAsync` for `pool`; default `inline`.
   */
  receiveChecksum?: 'inline' | 'pool';
  /** A peer was refused at the handshake (for metrics). */
  onRefused?: (reason: string) => void;
}

const PING_INTERVAL_MS = 2000;
/** Where a failed in-place receiver's last socket reads go. */
const discard = Buffer.alloc(64 * 1024);
/** A receiver checksums arriving chunk bytes in pieces of at least this size (cache-hot). */
const SUM_STEP = 128 * 1024;
/**
 * An in-place receiver that sums on its socket thread reads at most this much at a time, so what
 * one read copied is still in this core's cache when it is summed (a 4 MiB read evicts its own
 * start: the sum then reads memory again; bench `transport`, docs/agent.md).
 */
const READ_STEP = 256 * 1024;

/** A receiver stream's chunk buffers (see `receive`). */
interface StreamState {
  /** The pooled buffer the next chunk is read into; undefined while the stream waits for one. */
  buffer: Buffer | undefined;
  /** Chunks of this stream being written into the slot. */
  writes: number;
  /** Reading stopped (no buffer, or too many writes in flight). */
  paused: boolean;
  acquiring: boolean;
}
const V = PEER_PROTOCOL_VERSION;
/** The seed's side of a stream: receivers send control frames only. */
const SEED_SIDE = { schema: peerMessage, noChunks: 'receivers send no chunk frames' };

/** One receiver pod as the seed sees it for one rank. */
class ReceiverPeer {
  readonly pod: string;
  readonly uid: string;
  streams: Socket[] = [];
  expectedStreams = 0;
  connected = 0;
  readonly credited = new Set<number>();
  #creditWaiters: Array<() => void> = [];
  outcome: ReceiverOutcome | undefined;
  #resultWaiters: Array<() => void> = [];

  constructor(pod: string, uid: string) {
    this.pod = pod;
    this.uid = uid;
  }

  get ready(): boolean {
    return this.expectedStreams > 0 && this.connected === this.expectedStreams;
  }

  get alive(): boolean {
    return this.outcome === undefined;
  }

  grant(bucket: number): void {
    this.credited.add(bucket);
    this.#wake();
  }

  finish(outcome: ReceiverOutcome): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    for (const socket of this.streams) socket?.destroy();
    this.#wake();
    for (const waiter of this.#resultWaiters.splice(0)) waiter();
  }

  #wake(): void {
    for (const waiter of this.#creditWaiters.splice(0)) waiter();
  }

  /** Waits for the credit of `bucket`; false if the peer went away meanwhile. */
  async waitCredit(bucket: number, timeoutMs: number): Promise<boolean> {
    const start = performance.now();
    while (this.alive && !this.credited.has(bucket)) {
      const left = timeoutMs - (performance.now() - start);
      if (left <= 0) {
        this.finish({
          pod: this.pod,
          outcome: 'failed',
          reason: Reasons.ReceiverLost,
          message: `no credit for bucket ${bucket} within ${timeoutMs} ms`,
        });
        return false;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#creditWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.alive;
  }

  waitResult(): Promise<void> {
    if (this.outcome !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#resultWaiters.push(resolve));
  }

  send(stream: number, frames: Buffer[]): Promise<void> {
    const socket = this.streams[stream % this.streams.length];
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      socket.cork();
      for (let i = 0; i < frames.length - 1; i++) socket.write(frames[i] as Buffer);
      socket.write(frames[frames.length - 1] as Buffer, () => resolve());
      socket.uncork();
    });
  }

  control(message: PeerMessage): void {
    const socket = this.streams[0];
    if (socket !== undefined && !socket.destroyed) socket.write(encodeControl(message));
  }
}

export class TcpTransport implements Transport {
  readonly name = 'tcp' as const;
  readonly #options: TcpTransportOptions;

  constructor(options: TcpTransportOptions) {
    if (
      options.chunkBytes % 4 !== 0 ||
      options.chunkBytes > MAX_CHUNK_BYTES ||
      options.chunkBytes > options.pool.chunkBytes
    ) {
      throw new RangeError(
        `chunkBytes ${options.chunkBytes} must be a multiple of 4, at most ${MAX_CHUNK_BYTES} and the pool's chunk size`,
      );
    }
    this.#options = options;
  }

  // ---------------------------------------------------------------- seed

  async serve(ctx: SeedRankContext): Promise<SeedRankSession> {
    if (ctx.signal.aborted) throw asTransferError(ctx.signal.reason);
    const peers = new Map(ctx.receivers.map((r) => [r.pod, new ReceiverPeer(r.pod, r.uid)]));
    let started = false;
    let rendezvousDone: () => void = () => {};
    const rendezvous = new Promise<void>((resolve) => {
      rendezvousDone = resolve;
    });
    const checkRendezvous = (): void => {
      if ([...peers.values()].every((p) => p.ready || !p.alive)) rendezvousDone();
    };
    const log = ctx.log;

    const server = await listenForReceivers(
      ctx,
      (socket) =>
        acceptReceiver<ReceiverPeer, PeerMessage>(socket, {
          ctx,
          peers,
          started: () => started,
          read: (s, onMessage, onError) => new ControlReader(s, SEED_SIDE, onMessage, onError),
          chunkBytes: this.#options.chunkBytes,
          lostMessage: 'receiver connection closed before it reported',
          slotRefusal: (peer, hello) =>
            hello.stream >= hello.streams ||
            (peer.expectedStreams !== 0 && peer.expectedStreams !== hello.streams) ||
            peer.streams[hello.stream] !== undefined
              ? {
                  code: 'SEEDCAST_ERR_INVALID',
                  reason: Reasons.Failed,
                  message: `stream ${hello.stream}/${hello.streams} is invalid or taken`,
                }
              : undefined,
          admit: (peer, hello, socket) => {
            if (peer.expectedStreams === 0) peer.expectedStreams = hello.streams;
            peer.streams[hello.stream] = socket;
            peer.connected++;
          },
          admitted: (_peer, hello) => {
            log.info(
              { peer: hello.pod, stream: hello.stream, streams: hello.streams },
              'receiver stream accepted',
            );
            checkRendezvous();
          },
          handle: (peer, message) => {
            if (message.type !== 'credit') return false;
            peer.grant(message.bucket);
            return true;
          },
          dropped: () => checkRendezvous(),
          onRefused: this.#options.onRefused,
        }),
      'seed listening',
    );

    const done = (async (): Promise<ReceiverOutcome[]> => {
      const abort = new AbortController();
      const unlink = onAbort(ctx.signal, () => abort.abort(ctx.signal.reason));
      const deadline = setTimeout(
        () => abort.abort(deadlineError('while sending')),
        Math.max(0, ctx.deadline - Date.now()),
      );
      const pinger = setInterval(() => {
        for (const peer of peers.values()) if (peer.alive && peer.ready) peer.control({ v: V, type: 'ping' });
      }, PING_INTERVAL_MS);
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
        for (const peer of peers.values()) {
          if (peer.alive && !peer.ready) {
            peer.finish({
              pod: peer.pod,
              outcome: 'failed',
              reason: Reasons.ReceiverLost,
              message: `did not connect all streams within ${ctx.stepTimeoutMs} ms`,
            });
          }
        }
        const live = [...peers.values()].filter((p) => p.alive);
        if (live.length === 0)
          throw new TransferError('SEEDCAST_ERR_PEER_LOST', Reasons.ReceiverLost, 'no receiver connected');
        log.info(
          { receivers: live.map((p) => p.pod), buckets: ctx.engine.buckets },
          'rendezvous complete, sending',
        );
        await Promise.race([this.#broadcast(ctx, [...peers.values()], abort.signal), aborted]);
        await Promise.race([Promise.all([...peers.values()].map((p) => p.waitResult())), aborted]);
        return [...peers.values()].map((p) => p.outcome as ReceiverOutcome);
      } catch (err) {
        const failure = asTransferError(err);
        for (const peer of peers.values()) {
          peer.control({ v: V, type: 'abort', reason: failure.reason, message: truncate(failure.message) });
          peer.finish({ pod: peer.pod, outcome: 'failed', reason: failure.reason, message: failure.message });
        }
        throw failure;
      } finally {
        clearTimeout(deadline);
        clearInterval(pinger);
        unlink();
        server.close();
        for (const peer of peers.values()) for (const socket of peer.streams) socket?.end();
      }
    })();
    return { address: `${ctx.host}:${ctx.port}`, done };
  }

  async #broadcast(ctx: SeedRankContext, peers: ReceiverPeer[], signal: AbortSignal): Promise<void> {
    const { engine } = ctx;
    const { pool, chunkBytes, window, sum, sumAsync } = this.#options;
    const pacer = ctx.bandwidthLimit === undefined ? undefined : new Pacer(ctx.bandwidthLimit);
    const quiet = <T>(promise: Promise<T>): Promise<T> => {
      promise.catch(() => {});
      return promise;
    };
    // fills[k] settles with the bytes the engine put in slot k mod 2; bucket k+2's fill starts as
    // soon as every chunk of bucket k was read out of that slot.
    const fills: Array<Promise<number>> = [];
    const fill = (bucket: number): Promise<number> =>
      engine.fill(bucket, bucket % SLOTS_PER_RANK, ctx.stepTimeoutMs);
    for (let bucket = 0; bucket < Math.min(SLOTS_PER_RANK, engine.buckets); bucket++)
      fills[bucket] = quiet(fill(bucket));
    let inFlight = 0;
    let windowWaiter: (() => void) | undefined;
    const wakeWindow = (): void => {
      const waiter = windowWaiter;
      windowWaiter = undefined;
      waiter?.();
    };
    // The first failure of a chunk running in the background (a short read, every receiver lost).
    let failure: unknown;
    const failed = (err: unknown): void => {
      if (failure === undefined) failure = err;
      wakeWindow();
    };
    const check = (): void => {
      if (failure !== undefined) throw asTransferError(failure);
      if (signal.aborted) throw asTransferError(signal.reason);
    };
    const tails: Array<Promise<void>> = [];
    let chunkIndex = 0;
    for (let bucket = 0; bucket < engine.buckets; bucket++) {
      const range = bucketRange(engine.totalBytes, engine.bucketBytes, bucket);
      const filled = await fills[bucket];
      check();
      if (filled !== range.bytes) {
        throw new TransferError(
          'SEEDCAST_ERR_PROTOCOL',
          Reasons.Failed,
          `engine filled ${filled} bytes of bucket ${bucket}, expected ${range.bytes}`,
        );
      }
      const slot = engine.slot(bucket % SLOTS_PER_RANK);
      const asyncSlot = isAsyncSlot(slot) ? slot : undefined;
      // A mapped slot is sent in place: chunks are views of the slot, checksummed there.
      const view = sum === undefined ? undefined : mappedView(slot);
      if (view !== undefined && view.length < range.bytes)
        throw new TransferError(
          'SEEDCAST_ERR_PROTOCOL',
          Reasons.Failed,
          `staging slot shorter than bucket ${bucket}`,
        );
      const checksum = new BucketChecksum(range.bytes);
      const reads: Array<Promise<void>> = []; // read out of the slot and checksummed
      const flushes: Array<Promise<void>> = []; // in place: on every receiver's socket (or failed)
      const issued: Array<Promise<void>> = []; // handed to every receiver's socket
      for (let offset = 0; offset < range.bytes; offset += chunkBytes) {
        check();
        const length = Math.min(chunkBytes, range.bytes - offset);
        while (inFlight >= window && failure === undefined && !signal.aborted)
          await new Promise<void>((resolve) => (windowWaiter = resolve));
        check();
        const buffer = view === undefined ? await pool.acquire() : undefined;
        inFlight++;
        const release = (): void => {
          if (buffer !== undefined) pool.release(buffer);
          inFlight--;
          wakeWindow();
        };
        const index = chunkIndex++;
        const payload =
          buffer === undefined
            ? (view as Buffer).subarray(offset, offset + length)
            : buffer.subarray(0, length);
        // The copy out of the slot runs on a pool thread (host slots) while this thread sends;
        // a mapped slot needs no copy, only its checksum.
        const read = quiet(
          buffer === undefined
            ? sumAsync !== undefined
              ? sumAsync(payload).then((p) => checksum.add(offset, length, p))
              : Promise.resolve().then(() =>
                  checksum.add(offset, length, (sum as NonNullable<typeof sum>)(payload)),
                )
            : (asyncSlot !== undefined
                ? asyncSlot.readAsync(buffer, offset, length)
                : Promise.resolve().then(() => slot.read(buffer, offset, length))
              ).then((n) => {
                if (n !== length)
                  throw new TransferError(
                    'SEEDCAST_ERR_PROTOCOL',
                    Reasons.Failed,
                    `staging slot shorter than bucket ${bucket}`,
                  );
                // Checksummed right after the read, while the chunk is still in cache.
                checksum.add(offset, length, pool.arena.partial(payload));
              }),
        );
        reads.push(read);
        // In place, the sockets need not wait for the checksum (only the bucket's checksum frame
        // does, through `reads`); otherwise a chunk goes out once it was read out of the slot.
        const sendable = buffer === undefined ? Promise.resolve() : read;
        const send = quiet(
          sendable.then(async (): Promise<Array<Promise<void>>> => {
            if (pacer !== undefined)
              await pacer.take(length * Math.max(1, peers.filter((p) => p.alive).length), signal);
            const header = encodeHeader(FRAME_CHUNK, length, bucket, offset);
            const writes: Array<Promise<void>> = [];
            for (const peer of peers) {
              if (!peer.alive) continue;
              if (!(await peer.waitCredit(bucket, ctx.stepTimeoutMs))) continue;
              writes.push(peer.send(index, [header, payload]));
            }
            if (writes.length === 0)
              throw new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.ReceiverLost,
                'every receiver was lost',
              );
            ctx.onBytesSent(length * writes.length);
            return writes;
          }),
        );
        issued.push(quiet(send.then(() => {})));
        // The buffer goes back once every socket flushed it (or the chunk failed before a write).
        const flushed = send.then(
          (writes) => Promise.all(writes).then(release),
          (err) => {
            release();
            failed(err);
          },
        );
        flushes.push(flushed);
      }
      const readOut = quiet(Promise.all(reads).then(() => {}));
      const next = bucket + SLOTS_PER_RANK;
      // The slot has been read out completely (in place: every socket flushed its views of it):
      // the engine may refill it.
      const slotFree =
        view === undefined ? readOut : quiet(Promise.all([readOut, ...flushes]).then(() => {}));
      if (next < engine.buckets) fills[next] = quiet(slotFree.then(() => fill(next)));
      tails.push(
        quiet(
          Promise.all([readOut, ...issued]).then(() => {
            const text = checksum.toString();
            for (const peer of peers)
              if (peer.alive)
                peer.control({ v: V, type: 'bucket', bucket, bytes: range.bytes, checksum: text });
          }),
        ),
      );
    }
    // Every chunk is on its way and every bucket's checksum was sent; chunks may still sit in
    // socket buffers and are released as they flush.
    await Promise.all(tails);
    check();
  }

  // ---------------------------------------------------------------- receiver

  async receive(ctx: ReceiverRankContext): Promise<void> {
    const { engine } = ctx;
    const { streams: streamCount, pool, sum, sumAsync } = this.#options;
    // In place: with mapped slots, chunk payloads are read straight into the slot (validated at
    // their header, before a byte lands) and checksummed there; no chunk buffers, no slot writes.
    const views = Array.from({ length: SLOTS_PER_RANK }, (_, i) =>
      engine.buckets > i ? mappedView(engine.slot(i)) : undefined,
    );
    const direct =
      sum !== undefined &&
      views.slice(0, Math.min(SLOTS_PER_RANK, engine.buckets)).every((v) => v !== undefined);
    // In place with receiveChecksum `pool`, a chunk that landed is checksummed on a pool thread
    // (the main thread reads every socket; on a host with spare cores it is the receiver's
    // busiest). Pending sums are awaited before receive() settles: they read the slot's mapping.
    const offThread = direct && this.#options.receiveChecksum === 'pool' ? sumAsync : undefined;
    const sums = new Set<Promise<void>>();
    const [host, portText] = splitAddress(ctx.address);
    if (ctx.signal.aborted) throw asTransferError(ctx.signal.reason);
    const abort = new AbortController();
    const unlink = onAbort(ctx.signal, () => abort.abort(ctx.signal.reason));
    const deadline = setTimeout(
      () => abort.abort(deadlineError('while receiving')),
      Math.max(0, ctx.deadline - Date.now()),
    );
    const sockets: Socket[] = [];
    // Per stream: the pooled buffer the next chunk is read into (undefined while the stream waits
    // for one), the chunks it handed to slot writes still in flight, and whether it is paused.
    const streamState: StreamState[] = [];
    let closed = false;
    let failed: TransferError | undefined;
    let settle: { resolve: () => void; reject: (err: TransferError) => void } | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    finished.catch(() => {});
    const fail = (err: unknown): void => {
      if (failed !== undefined) return;
      failed = asTransferError(err, Reasons.SeedLost);
      const stream0 = sockets[0];
      if (stream0 !== undefined && !stream0.destroyed) {
        stream0.end(
          encodeControl({ v: V, type: 'abort', reason: failed.reason, message: truncate(failed.message) }),
        );
      }
      for (const socket of sockets) socket.destroySoon();
      settle?.reject(failed);
    };
    abort.signal.addEventListener('abort', () => fail(abort.signal.reason), { once: true });

    // Per-bucket receive state.
    // `arrived`: bytes read off the sockets; `bytes`: bytes written into the slot (a bucket is
    // verified and drained only once every write landed).
    const received = new Map<
      number,
      { arrived: number; bytes: number; checksum: BucketChecksum; expected?: string }
    >();
    const credited = new Set<number>();
    let verifiedBytes = 0;
    let drained = 0;
    let lastActivity = performance.now();
    let accepted: Accept | undefined;

    const credit = (bucket: number): void => {
      if (bucket >= engine.buckets) return;
      credited.add(bucket);
      received.set(bucket, {
        arrived: 0,
        bytes: 0,
        checksum: new BucketChecksum(bucketRange(engine.totalBytes, engine.bucketBytes, bucket).bytes),
      });
      sockets[0]?.write(encodeControl({ v: V, type: 'credit', bucket }));
    };

    const maybeVerify = (bucket: number): void => {
      if (failed !== undefined) return; // nothing reaches the engine after a failure
      const state = received.get(bucket);
      if (state === undefined || state.expected === undefined || state.bytes !== state.checksum.length)
        return;
      const actual = state.checksum.toString();
      if (actual !== state.expected) {
        fail(
          new TransferError(
            'SEEDCAST_ERR_CHECKSUM',
            Reasons.ChecksumMismatch,
            `bucket ${bucket} checksum ${actual} differs from the seed's ${state.expected}`,
          ),
        );
        return;
      }
      received.delete(bucket);
      credited.delete(bucket);
      engine.drain(bucket, bucket % SLOTS_PER_RANK, ctx.stepTimeoutMs).then(
        () => {
          if (failed !== undefined) return;
          drained++;
          verifiedBytes += state.bytes;
          ctx.onProgress(verifiedBytes);
          if (drained === engine.buckets) {
            const stream0 = sockets[0];
            stream0?.write(encodeControl({ v: V, type: 'result', outcome: 'verified' }));
            for (const socket of sockets) socket.end();
            settle?.resolve();
            return;
          }
          credit(bucket + SLOTS_PER_RANK);
        },
        (err) =>
          fail(
            new TransferError(
              'SEEDCAST_ERR_PROTOCOL',
              Reasons.Failed,
              `engine drain of bucket ${bucket} failed: ${errorMessage(err)}`,
            ),
          ),
      );
    };

    /** A chunk's header checks out (credited bucket, inside it, not more than it holds): counts it. */
    const admit = (bucket: number, offset: number, length: number) => {
      const state = received.get(bucket);
      if (state === undefined || !credited.has(bucket)) {
        fail(
          new TransferError(
            'SEEDCAST_ERR_PROTOCOL',
            Reasons.Failed,
            `chunk of bucket ${bucket} arrived without credit`,
          ),
        );
        return undefined;
      }
      if (
        offset % 4 !== 0 ||
        offset + length > state.checksum.length ||
        state.arrived + length > state.checksum.length
      ) {
        fail(
          new TransferError(
            'SEEDCAST_ERR_PROTOCOL',
            Reasons.Failed,
            `chunk ${bucket}@${offset}+${length} outside the bucket`,
          ),
        );
        return undefined;
      }
      state.arrived += length;
      return state;
    };

    /** In place: a whole chunk landed in the slot (admitted at its header). */
    const onDirectChunk = (bucket: number, offset: number, length: number, partial: Partial32x2): boolean => {
      const state = received.get(bucket);
      if (state === undefined || failed !== undefined) return false;
      state.checksum.add(offset, length, partial);
      state.bytes += length;
      maybeVerify(bucket);
      return failed === undefined;
    };

    /** Slot writes a stream may have in flight before it stops reading its socket. */
    const WRITES_PER_STREAM = 2;
    const resumeStream = (stream: number): void => {
      const st = streamState[stream];
      const socket = sockets[stream];
      if (st === undefined || socket === undefined || !st.paused || st.acquiring) return;
      if (failed !== undefined || socket.destroyed || st.writes >= WRITES_PER_STREAM) return;
      st.acquiring = true;
      pool.acquire().then((buffer) => {
        st.acquiring = false;
        if (failed !== undefined || closed || socket.destroyed) {
          pool.release(buffer);
          return;
        }
        st.buffer = buffer;
        st.paused = false;
        socket.resume();
      });
    };

    /**
     * A whole chunk arrived in `target` (the stream's buffer, now owned here), with its checksum
     * partial (computed piecewise as the bytes arrived, while they were in cache). Writes it into
     * the slot, off this thread for host slots. Returns whether the stream has a buffer for its
     * next chunk (false: stop reading until `resumeStream`).
     */
    const onChunk = (
      stream: number,
      bucket: number,
      offset: number,
      target: Buffer,
      length: number,
      partial: Partial32x2,
    ): boolean => {
      const st = streamState[stream] as StreamState;
      const state = admit(bucket, offset, length);
      if (state === undefined) return false;
      const payload = target.subarray(0, length);
      state.checksum.add(offset, length, partial);
      const slot = engine.slot(bucket % SLOTS_PER_RANK);
      if (!isAsyncSlot(slot)) {
        slot.write(payload, offset);
        state.bytes += length;
        maybeVerify(bucket);
        return failed === undefined;
      }
      st.buffer = undefined;
      st.writes++;
      slot.writeAsync(payload, offset).then(
        () => {
          st.writes--;
          pool.release(target);
          if (failed !== undefined) return;
          state.bytes += length;
          maybeVerify(bucket);
          resumeStream(stream);
        },
        (err) => {
          st.writes--;
          pool.release(target);
          fail(
            new TransferError(
              'SEEDCAST_ERR_PROTOCOL',
              Reasons.Failed,
              `writing bucket ${bucket} into the staging slot failed: ${errorMessage(err)}`,
            ),
          );
        },
      );
      if (st.writes < WRITES_PER_STREAM) st.buffer = pool.tryAcquire();
      if (st.buffer !== undefined) return true;
      st.paused = true;
      resumeStream(stream);
      return false;
    };

    const onControl = (message: PeerMessage, stream: number, handshake: (m: PeerMessage) => void): void => {
      switch (message.type) {
        case 'challenge':
        case 'accept':
        case 'refuse':
          handshake(message);
          return;
        case 'bucket': {
          const state = received.get(message.bucket);
          if (state === undefined) {
            fail(
              new TransferError(
                'SEEDCAST_ERR_PROTOCOL',
                Reasons.Failed,
                `checksum for uncredited bucket ${message.bucket}`,
              ),
            );
            return;
          }
          state.expected = message.checksum;
          maybeVerify(message.bucket);
          return;
        }
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
              `unexpected ${message.type} on stream ${stream}`,
            ),
          );
      }
    };

    const openStream = (stream: number, st: StreamState): Promise<Accept> =>
      new Promise<Accept>((resolve, reject) => {
        const header = Buffer.alloc(HEADER_BYTES);
        /** In place: the slot range the current chunk is read into. */
        let slotTarget: Buffer | undefined;
        let phase: 'header' | 'control' | 'chunk' = 'header';
        let frame = { type: 0, length: 0, bucket: 0, offset: 0 };
        let control = Buffer.alloc(0);
        let filled = 0;
        // The running checksum partial of the chunk being read: bytes [0, summed) are in it.
        let summed = 0;
        let sumA = 0;
        let sumC = 0;
        const nonce = newNonce();
        let handshaken = false;
        const handshake = (message: PeerMessage): void => {
          if (message.type === 'challenge' && !handshaken) {
            socket.write(encodeControl(receiverHello(ctx, stream, streamCount, nonce, message.nonce)));
            seedNonce = message.nonce;
            return;
          }
          if (message.type === 'accept' && !handshaken && seedNonce !== undefined) {
            const refused = acceptError(ctx, message, nonce, seedNonce);
            if (refused !== undefined) {
              reject(refused);
              return;
            }
            handshaken = true;
            resolve(message);
            return;
          }
          if (message.type === 'refuse') {
            reject(refusedError(ctx, message));
            return;
          }
          reject(unexpectedInHandshake(message.type));
        };
        let seedNonce: string | undefined;
        const protocolError = (reason: string): void => {
          const err = new TransferError(
            'SEEDCAST_ERR_PROTOCOL',
            Reasons.Failed,
            `stream ${stream}: ${reason}`,
          );
          if (handshaken) fail(err);
          else reject(err);
          socket.destroy();
        };
        const socket = connect({
          host,
          port: portText,
          onread: {
            buffer: () => {
              if (phase === 'header') return header.subarray(filled);
              if (phase === 'control') return control.subarray(filled);
              // After a failure nothing more lands in the slot (the engine may reuse it).
              if (direct)
                return failed === undefined
                  ? (slotTarget as Buffer).subarray(
                      filled,
                      offThread === undefined ? filled + READ_STEP : undefined,
                    )
                  : discard;
              // A chunk phase starts only while the stream holds a buffer (it pauses otherwise).
              return (st.buffer as Buffer).subarray(filled, frame.length);
            },
            callback: (bytes: number) => {
              if (direct && failed !== undefined) return false;
              lastActivity = performance.now();
              filled += bytes;
              if (phase === 'header') {
                if (filled < HEADER_BYTES) return true;
                const decoded = decodeHeader(header);
                filled = 0;
                if (typeof decoded === 'string') {
                  protocolError(decoded);
                  return false;
                }
                frame = decoded;
                if (decoded.type === FRAME_CHUNK) {
                  const limit = direct ? pool.chunkBytes : (st.buffer?.length ?? 0);
                  if (
                    !handshaken ||
                    accepted === undefined ||
                    decoded.length > limit ||
                    decoded.length === 0
                  ) {
                    protocolError('chunk before the handshake or larger than agreed');
                    return false;
                  }
                  if (direct) {
                    // Checked before any byte lands in the slot: the engine may be draining the other one.
                    if (admit(decoded.bucket, decoded.offset, decoded.length) === undefined) {
                      socket.destroy();
                      return false;
                    }
                    const view = views[decoded.bucket % SLOTS_PER_RANK] as Buffer;
                    slotTarget = view.subarray(decoded.offset, decoded.offset + decoded.length);
                  }
                  phase = 'chunk';
                  summed = 0;
                  sumA = 0;
                  sumC = 0;
                } else {
                  control = Buffer.alloc(decoded.length);
                  phase = 'control';
                }
                return true;
              }
              if (phase === 'control') {
                if (filled < control.length) return true;
                phase = 'header';
                filled = 0;
                const parsed = parseControl(control, peerMessage);
                if (typeof parsed === 'string') {
                  protocolError(parsed);
                  return false;
                }
                onControl(parsed, stream, handshake);
                return true;
              }
              // Checksum what just arrived while the kernel's copy left it in this core's cache:
              // every SUM_STEP bytes (whole 16-byte vectors), and the rest at the chunk's end.
              // (Off this thread instead when the chunk is in the slot and sumAsync is there.)
              const complete = filled === frame.length;
              if (offThread !== undefined) {
                if (!complete) return true;
                phase = 'header';
                filled = 0;
                const target = slotTarget as Buffer;
                const { bucket, offset, length } = frame;
                slotTarget = undefined;
                const summing = offThread(target).then(
                  (p) => {
                    onDirectChunk(bucket, offset, length, p);
                  },
                  (err) => fail(err),
                );
                sums.add(summing);
                summing.finally(() => sums.delete(summing));
                return failed === undefined;
              }
              if (complete || filled - summed >= SUM_STEP) {
                const end = complete ? filled : filled - (filled % 16);
                const p = direct
                  ? (sum as NonNullable<typeof sum>)((slotTarget as Buffer).subarray(summed, end))
                  : pool.arena.partial((st.buffer as Buffer).subarray(summed, end));
                sumC = (sumC + p.c + Math.imul(summed / 4, p.a)) | 0;
                sumA = (sumA + p.a) | 0;
                summed = end;
              }
              if (!complete) return true;
              phase = 'header';
              filled = 0;
              if (direct) {
                slotTarget = undefined;
                return onDirectChunk(frame.bucket, frame.offset, frame.length, {
                  a: sumA >>> 0,
                  c: sumC >>> 0,
                });
              }
              return onChunk(stream, frame.bucket, frame.offset, st.buffer as Buffer, frame.length, {
                a: sumA >>> 0,
                c: sumC >>> 0,
              });
            },
          },
        });
        sockets[stream] = socket;
        socket.setNoDelay(true);
        socket.on('error', (err) => {
          if (!handshaken)
            reject(
              new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.SeedLost,
                `cannot reach seed at ${ctx.address}: ${err.message}`,
              ),
            );
        });
        socket.on('close', () => {
          if (!handshaken)
            reject(
              new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.SeedLost,
                `seed at ${ctx.address} closed stream ${stream} during the handshake`,
              ),
            );
          else if (drained < engine.buckets)
            fail(
              new TransferError(
                'SEEDCAST_ERR_PEER_LOST',
                Reasons.SeedLost,
                `lost the seed on stream ${stream} after ${verifiedBytes} verified bytes`,
              ),
            );
        });
      });

    const watchdog = setInterval(
      () => {
        const idle = performance.now() - lastActivity;
        if (idle > ctx.stepTimeoutMs)
          fail(
            new TransferError(
              'SEEDCAST_ERR_TIMEOUT',
              Reasons.SeedLost,
              `seed silent for ${Math.round(idle)} ms`,
            ),
          );
      },
      Math.min(1000, ctx.stepTimeoutMs / 2),
    );
    try {
      for (let stream = 0; stream < streamCount; stream++)
        streamState.push({
          buffer: direct ? undefined : await pool.acquire(),
          writes: 0,
          paused: false,
          acquiring: false,
        });
      const handshakes = Promise.all(streamState.map((st, stream) => openStream(stream, st)));
      handshakes.catch(() => {});
      const accepts = await Promise.race([handshakes, finished.then(() => [] as Accept[])]);
      accepted = accepts[0];
      if (accepted === undefined)
        throw new TransferError('SEEDCAST_ERR_PROTOCOL', Reasons.Failed, 'no accept from the seed');
      if (accepted.fingerprint !== engine.fingerprint) {
        throw new TransferError(
          'SEEDCAST_ERR_FINGERPRINT_MISMATCH',
          Reasons.FingerprintMismatch,
          `seed rank ${ctx.rank} fingerprint ${accepted.fingerprint} differs from ours ${engine.fingerprint}`,
        );
      }
      if (accepted.totalBytes !== engine.totalBytes || accepted.bucketBytes !== engine.bucketBytes) {
        throw new TransferError(
          'SEEDCAST_ERR_INVALID',
          Reasons.ValidationFailed,
          `seed plans ${accepted.totalBytes} bytes in buckets of ${accepted.bucketBytes}, this agent ${engine.totalBytes} in buckets of ${engine.bucketBytes}; agents of one WeightSource need the same bucket size`,
          { retryable: false },
        );
      }
      ctx.log.info(
        { peer: ctx.seed.pod, streams: streamCount, buckets: engine.buckets },
        'accepted by the seed',
      );
      lastActivity = performance.now();
      for (let bucket = 0; bucket < Math.min(SLOTS_PER_RANK, engine.buckets); bucket++) credit(bucket);
      if (engine.buckets === 0) settle?.resolve();
      await finished;
    } catch (err) {
      fail(err);
      throw failed ?? asTransferError(err);
    } finally {
      clearTimeout(deadline);
      clearInterval(watchdog);
      unlink();
      for (const socket of sockets) if (!socket.destroyed) socket.destroySoon();
      // Checksums still running on pool threads read the slot: they finish before the engine
      // may be told anything (and before its slots could be unmapped).
      await Promise.allSettled([...sums]);
      // A buffer may still be the target of a pending read until its socket is gone (buffers
      // handed to slot writes go back when those settle).
      closed = true;
      const release = (): void => {
        for (const st of streamState) {
          if (st.buffer !== undefined) pool.release(st.buffer);
          st.buffer = undefined;
        }
      };
      if (sockets.every((s) => s.destroyed)) release();
      else
        Promise.all(
          sockets.map((s) => (s.destroyed ? undefined : new Promise((r) => s.once('close', r)))),
        ).then(release);
    }
  }
}

export function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return [host, Number(address.slice(colon + 1))];
}
