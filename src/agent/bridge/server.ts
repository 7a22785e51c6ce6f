// The agent side of the engine bridge: a Unix socket server, one connection per engine rank.
// It registers ranks (validating the table and recomputing the fingerprint), hands out staging
// slots, and gives the transfer code typed requests (fill, drain, load, complete) per rank.
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../../shared/log.ts';
import type { MemoryKind, StagingMemory, StagingSlot } from '../memory/types.ts';
import { bucketCount } from './buckets.ts';
import { FrameConnection } from './connection.ts';
import { podFingerprint, rankFingerprint } from './fingerprint.ts';
import { type CastDone, type EngineMessage, engineMessage, type Hello } from './messages.ts';

export const SLOTS_PER_RANK = 2;

export type EngineState = 'empty' | 'loaded';

export class EngineRank {
  readonly rank: number;
  readonly ranks: number;
  readonly hello: Hello;
  readonly fingerprint: string;
  readonly totalBytes: number;
  readonly bucketBytes: number;
  readonly buckets: number;
  readonly slots: readonly StagingSlot[];
  #state: EngineState;
  readonly #connection: FrameConnection<EngineMessage>;
  readonly #onLoaded: () => void;

  constructor(
    hello: Hello,
    fingerprint: string,
    bucketBytes: number,
    slots: StagingSlot[],
    connection: FrameConnection<EngineMessage>,
    onLoaded: () => void = () => {},
  ) {
    this.rank = hello.rank;
    this.ranks = hello.ranks;
    this.hello = hello;
    this.fingerprint = fingerprint;
    this.totalBytes = hello.tensors.reduce((sum, t) => sum + t.bytes, 0);
    this.bucketBytes = bucketBytes;
    this.buckets = bucketCount(this.totalBytes, bucketBytes);
    this.slots = slots;
    this.#connection = connection;
    this.#onLoaded = onLoaded;
    this.#state = 'empty';
    this.state = hello.state;
  }

  get state(): EngineState {
    return this.#state;
  }

  /** `loaded` once the engine holds real weights (registered so, cold-loaded or verified). */
  set state(state: EngineState) {
    this.#state = state;
    if (state === 'loaded') this.#onLoaded();
  }

  get connected(): boolean {
    return !this.#connection.closed;
  }

  slot(index: number): StagingSlot {
    const slot = this.slots[index];
    if (slot === undefined) throw new RangeError(`rank ${this.rank} has no slot ${index}`);
    return slot;
  }

  /** Seed: the engine copies bucket `bucket` into `slot`; resolves with the byte count. */
  async fill(bucket: number, slot: number, timeoutMs: number): Promise<number> {
    const reply = await this.#connection.request({ type: 'fill', bucket, slot }, timeoutMs);
    if (reply.type !== 'filled' || reply.bucket !== bucket)
      throw new Error(`engine answered ${reply.type} to fill ${bucket}`);
    return reply.bytes;
  }

  /** Receiver: the engine copies `slot` (holding verified bucket `bucket`) into its tensors. */
  async drain(bucket: number, slot: number, timeoutMs: number): Promise<void> {
    const reply = await this.#connection.request({ type: 'drain', bucket, slot }, timeoutMs);
    if (reply.type !== 'drained' || reply.bucket !== bucket)
      throw new Error(`engine answered ${reply.type} to drain ${bucket}`);
  }

  /** The engine offered direct casts and registered cuda slots (docs/bridge-protocol.md). */
  get direct(): boolean {
    return this.hello.direct?.transport === 'nccl' && this.hello.memory === 'cuda';
  }

  /**
   * Direct cast: the engine joins the communicator and sends (root) or receives every bucket;
   * resolves with the per-bucket checksums. The engine enforces `timeoutMs` itself; the request
   * waits a little longer so the engine's own error (naming what stalled) arrives first.
   */
  async cast(options: {
    role: 'send' | 'receive';
    uniqueId: string;
    commRank: number;
    nranks: number;
    initTimeoutMs: number;
    timeoutMs: number;
  }): Promise<CastDone> {
    const reply = await this.#connection.request({ type: 'cast', ...options }, options.timeoutMs + 5000);
    if (reply.type !== 'cast-done') throw new Error(`engine answered ${reply.type} to cast`);
    if (reply.checksums.length !== this.buckets || reply.bytes !== this.totalBytes)
      throw new Error(
        `engine cast ${reply.bytes} bytes in ${reply.checksums.length} buckets, the plan has ${this.totalBytes} in ${this.buckets}`,
      );
    return reply;
  }

  /** Ask a running cast to stop (its communicator is aborted; the cast then fails). */
  async abortCast(timeoutMs: number): Promise<void> {
    await this.#connection.request({ type: 'abort-cast' }, timeoutMs);
  }

  async load(timeoutMs: number): Promise<void> {
    const reply = await this.#connection.request({ type: 'load', source: 'storage' }, timeoutMs);
    if (reply.type !== 'loaded') throw new Error(`engine answered ${reply.type} to load`);
    this.state = 'loaded';
  }

  async complete(
    outcome: 'verified' | 'failed',
    message: string | undefined,
    timeoutMs: number,
  ): Promise<void> {
    await this.#connection.request(
      { type: 'complete', outcome, ...(message === undefined ? {} : { message }) },
      timeoutMs,
    );
    if (outcome === 'verified') this.state = 'loaded';
  }
}

/** All ranks of the engine, registered. */
export interface Engine {
  ranks: readonly EngineRank[];
  podFingerprint: string;
  totalBytes: number;
}

export interface BridgeServerOptions {
  socketPath: string;
  bucketBytes: number;
  memory: ReadonlyMap<MemoryKind, StagingMemory>;
  log: Logger;
  /** Registration changed (a rank joined or left). */
  onChange?: () => void;
  /**
   * A rank that held real weights in this agent's lifetime registered again `empty` (the engine's
   * container restarted): the pod's weights are gone until a new transfer. Called once per loss.
   */
  onWeightsLost?: (rank: number) => void;
  onInvalidMessage?: (reason: string) => void;
}

export class BridgeServer {
  readonly #options: BridgeServerOptions;
  readonly #server: Server;
  readonly #ranks = new Map<number, EngineRank>();
  /** Rank numbers whose engine held real weights since this agent started (or since the last loss). */
  readonly #held = new Set<number>();
  #expectedRanks: number | undefined;

  constructor(options: BridgeServerOptions) {
    this.#options = options;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.#options.socketPath), { recursive: true });
    rmSync(this.#options.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const rank of this.#ranks.values()) for (const slot of rank.slots) slot.close();
    this.#ranks.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#options.socketPath, { force: true });
  }

  /** The engine once every rank registered, else undefined. */
  engine(): Engine | undefined {
    const expected = this.#expectedRanks;
    if (expected === undefined || this.#ranks.size !== expected) return undefined;
    const ranks = [...this.#ranks.values()].sort((a, b) => a.rank - b.rank);
    return {
      ranks,
      podFingerprint: podFingerprint(ranks.map((r) => r.fingerprint)),
      totalBytes: ranks.reduce((sum, r) => sum + r.totalBytes, 0),
    };
  }

  get registeredRanks(): number {
    return this.#ranks.size;
  }

  #accept(socket: Socket): void {
    let registered: EngineRank | undefined;
    const log = this.#options.log;
    const connection: FrameConnection<EngineMessage> = new FrameConnection(socket, {
      schema: engineMessage,
      onInvalid: (reason) => {
        log.warn({ rank: registered?.rank, reason }, 'bad bridge message');
        this.#options.onInvalidMessage?.(reason);
      },
      onMessage: (message) => {
        if (message.type === 'hello') {
          if (registered !== undefined) {
            connection.sendError(
              'SEEDCAST_ERR_PROTOCOL',
              `this connection already registered rank ${registered.rank}`,
              message.id,
            );
            return;
          }
          registered = this.#register(message, connection);
          return;
        }
        if (message.type === 'error') {
          log.warn(
            { rank: registered?.rank, code: message.code, message: message.message },
            'engine reported an error',
          );
          return;
        }
        connection.sendError(
          'SEEDCAST_ERR_PROTOCOL',
          registered === undefined
            ? `send hello before ${message.type}`
            : `unexpected ${message.type} (no request with id ${String(message.id)})`,
          message.id,
        );
      },
      onClose: (reason) => {
        if (registered === undefined) return;
        log.info({ rank: registered.rank, reason }, 'engine rank disconnected');
        for (const slot of registered.slots) slot.close();
        if (this.#ranks.get(registered.rank) === registered) this.#ranks.delete(registered.rank);
        if (this.#ranks.size === 0) this.#expectedRanks = undefined;
        this.#options.onChange?.();
      },
    });
  }

  #register(hello: Hello, connection: FrameConnection<EngineMessage>): EngineRank | undefined {
    const computed = rankFingerprint(hello.fingerprintInputs, hello.tensors);
    if (computed !== hello.fingerprint) {
      connection.sendError(
        'SEEDCAST_ERR_FINGERPRINT_MISMATCH',
        `rank ${hello.rank}: engine sent fingerprint ${hello.fingerprint} but the table and inputs hash to ${computed}`,
        hello.id,
      );
      return undefined;
    }
    if (this.#expectedRanks !== undefined && this.#expectedRanks !== hello.ranks) {
      connection.sendError(
        'SEEDCAST_ERR_INVALID',
        `ranks: ${hello.ranks} differs from ${this.#expectedRanks} registered by other ranks`,
        hello.id,
      );
      return undefined;
    }
    const existing = this.#ranks.get(hello.rank);
    if (existing?.connected) {
      connection.sendError(
        'SEEDCAST_ERR_INVALID',
        `rank: ${hello.rank} is already registered by another connection`,
        hello.id,
      );
      return undefined;
    }
    const memory = this.#options.memory.get(hello.memory);
    if (memory === undefined) {
      connection.sendError(
        hello.memory === 'cuda' ? 'SEEDCAST_ERR_NO_CUDA' : 'SEEDCAST_ERR_INVALID',
        `memory: "${hello.memory}" staging is not available in this agent`,
        hello.id,
      );
      return undefined;
    }
    const total = hello.tensors.reduce((sum, t) => sum + t.bytes, 0);
    const slotBytes = Math.max(1, Math.min(this.#options.bucketBytes, total));
    const slots: StagingSlot[] = [];
    try {
      for (let slot = 0; slot < SLOTS_PER_RANK; slot++) {
        slots.push(
          memory.allocate({
            rank: hello.rank,
            slot,
            bytes: slotBytes,
            ...(hello.device === undefined ? {} : { device: hello.device }),
          }),
        );
      }
    } catch (err) {
      for (const slot of slots) slot.close();
      connection.sendError(
        'SEEDCAST_ERR_INVALID',
        `cannot allocate staging slots: ${(err as Error).message}`,
        hello.id,
      );
      return undefined;
    }
    if (hello.state === 'empty' && this.#held.size > 0) {
      // Any rank coming back empty leaves the pod without a whole model: every rank must be re-sent.
      this.#held.clear();
      this.#options.log.warn(
        { rank: hello.rank },
        'an engine rank that held verified weights registered empty',
      );
      this.#options.onWeightsLost?.(hello.rank);
    }
    const rank = new EngineRank(hello, computed, this.#options.bucketBytes, slots, connection, () =>
      this.#held.add(hello.rank),
    );
    this.#expectedRanks = hello.ranks;
    this.#ranks.set(hello.rank, rank);
    connection.send({
      type: 'welcome',
      id: hello.id,
      fingerprint: computed,
      bucketBytes: this.#options.bucketBytes,
      buckets: rank.buckets,
      totalBytes: rank.totalBytes,
      slots: slots.map((s) => s.describe()),
    });
    this.#options.log.info(
      {
        rank: hello.rank,
        ranks: hello.ranks,
        fingerprint: computed,
        totalBytes: rank.totalBytes,
        state: hello.state,
      },
      'engine rank registered',
    );
    this.#options.onChange?.();
    return rank;
  }
}
