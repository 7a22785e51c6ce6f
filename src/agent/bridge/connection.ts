// One bridge connection: frames in and out, validation of what arrives, request/reply by `id`,
// pings answered. Bad input is answered with an `error` frame; only a framing error closes.
import type { Socket } from 'node:net';
import type { z } from 'zod';
import { formatIssues } from '../../api/v1alpha1/validate.ts';
import { SeedcastError } from '../../shared/errors.ts';
import { encodeFrame, FrameDecoder } from './frames.ts';
import { PROTOCOL_VERSION } from './messages.ts';

interface Message {
  type: string;
  id?: number | undefined;
}

const REPLY_TYPES = new Set(['welcome', 'filled', 'drained', 'loaded', 'cast-done', 'ack', 'pong', 'error']);

/** The remote side answered `error`, or went away. */
export class BridgeRequestError extends SeedcastError {
  readonly remoteCode: string | undefined;
  constructor(
    message: string,
    remoteCode?: string,
    code:
      | 'SEEDCAST_ERR_PROTOCOL'
      | 'SEEDCAST_ERR_PEER_LOST'
      | 'SEEDCAST_ERR_TIMEOUT' = 'SEEDCAST_ERR_PROTOCOL',
  ) {
    super(code, message);
    this.name = 'BridgeRequestError';
    this.remoteCode = remoteCode;
  }
}

interface Pending {
  resolve: (message: Message) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface FrameConnectionOptions<In extends Message> {
  /** Validates what arrives; a failure is answered with `error`. */
  schema: z.ZodType<In>;
  /** A validated message that is not a reply to one of our requests (pings are answered here). */
  onMessage: (message: In) => void;
  /** A bad frame or message arrived (already answered); for logs and metrics. */
  onInvalid?: (reason: string) => void;
  onClose?: (reason: string) => void;
}

export class FrameConnection<In extends Message> {
  readonly socket: Socket;
  readonly #options: FrameConnectionOptions<In>;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1_000_000;
  #closed = false;

  constructor(socket: Socket, options: FrameConnectionOptions<In>) {
    this.socket = socket;
    this.#options = options;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {
      // 'close' follows and handles it
    });
    socket.on('close', () => this.#onClose('connection closed'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: Record<string, unknown>): void {
    if (this.#closed || this.socket.destroyed) return;
    this.socket.write(encodeFrame({ v: PROTOCOL_VERSION, ...message }));
  }

  sendError(code: string, message: string, id?: number): void {
    this.send(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
  }

  /** Sends a request and waits for the reply with the same id (an `error` reply rejects). */
  request(message: Record<string, unknown>, timeoutMs: number): Promise<In> {
    if (this.#closed)
      return Promise.reject(new BridgeRequestError('connection closed', undefined, 'SEEDCAST_ERR_PEER_LOST'));
    const id = this.#nextId++;
    return new Promise<In>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new BridgeRequestError(
            `no reply to ${String(message.type)} within ${timeoutMs} ms`,
            undefined,
            'SEEDCAST_ERR_TIMEOUT',
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (m: Message) => void, reject, timer });
      this.send({ ...message, id });
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon();
  }

  #onData(chunk: Buffer): void {
    for (const frame of this.#decoder.push(chunk)) {
      if (frame.kind === 'fatal') {
        this.#options.onInvalid?.(frame.reason);
        this.sendError('SEEDCAST_ERR_PROTOCOL', frame.reason);
        this.socket.end();
        this.#onClose(frame.reason);
        return;
      }
      if (frame.kind === 'malformed') {
        this.#options.onInvalid?.(frame.reason);
        this.sendError('SEEDCAST_ERR_PROTOCOL', frame.reason);
        continue;
      }
      this.#onValue(frame.value as Record<string, unknown>);
    }
  }

  #onValue(value: Record<string, unknown>): void {
    const id = typeof value.id === 'number' && Number.isInteger(value.id) ? value.id : undefined;
    const parsed = this.#options.schema.safeParse(value);
    if (!parsed.success) {
      const reason = `invalid ${typeof value.type === 'string' ? `"${value.type.slice(0, 64)}" ` : ''}message: ${formatIssues(parsed.error).join('; ')}`;
      this.#options.onInvalid?.(reason);
      // An invalid error frame is not answered, so two peers never loop on each other's errors.
      if (value.type !== 'error') this.sendError('SEEDCAST_ERR_PROTOCOL', reason, id);
      // An invalid reply fails its request now, with the reason, rather than at its timeout.
      const pending = id === undefined ? undefined : this.#pending.get(id);
      if (pending !== undefined) {
        this.#pending.delete(id as number);
        clearTimeout(pending.timer);
        pending.reject(new BridgeRequestError(reason, 'SEEDCAST_ERR_PROTOCOL'));
      }
      return;
    }
    const message = parsed.data;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (pending !== undefined && REPLY_TYPES.has(message.type)) {
      this.#pending.delete(id as number);
      clearTimeout(pending.timer);
      if (message.type === 'error') {
        const err = message as unknown as { code: string; message: string };
        pending.reject(new BridgeRequestError(`${err.code}: ${err.message}`, err.code));
      } else pending.resolve(message);
      return;
    }
    if (message.type === 'ping') {
      this.send({ type: 'pong', id: message.id });
      return;
    }
    this.#options.onMessage(message);
  }

  #onClose(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(
        new BridgeRequestError(
          `connection lost before reply to request ${id}`,
          undefined,
          'SEEDCAST_ERR_PEER_LOST',
        ),
      );
    }
    this.#pending.clear();
    this.#options.onClose?.(reason);
  }
}
