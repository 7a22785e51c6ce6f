// The agent-to-agent protocol over TCP (docs/agent.md). Every frame has a 16-byte header:
//   u8 type (1 control, 2 chunk) · 3 zero bytes · u32 length · u32 bucket · u32 offset  (big-endian)
// then `length` payload bytes: UTF-8 JSON for control frames, raw bucket bytes for chunks.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { z } from 'zod';
import { canonicalJson } from '../bridge/fingerprint.ts';

export const PEER_PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 16;
export const FRAME_CONTROL = 1;
export const FRAME_CHUNK = 2;
/** Largest chunk a seed may send; receivers size their read buffers to it. */
export const MAX_CHUNK_BYTES = 4 << 20;
export const MAX_CONTROL_BYTES = 65536;

export function encodeHeader(type: number, length: number, bucket = 0, offset = 0): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(length, 4);
  header.writeUInt32BE(bucket, 8);
  header.writeUInt32BE(offset, 12);
  return header;
}

export interface FrameHeader {
  type: number;
  length: number;
  bucket: number;
  offset: number;
}

export function decodeHeader(header: Buffer): FrameHeader | string {
  const type = header.readUInt8(0);
  const length = header.readUInt32BE(4);
  if (type !== FRAME_CONTROL && type !== FRAME_CHUNK) return `unknown frame type ${type}`;
  if (header.readUInt8(1) !== 0 || header.readUInt16BE(2) !== 0) return 'reserved header bytes are not zero';
  if (type === FRAME_CONTROL && (length === 0 || length > MAX_CONTROL_BYTES))
    return `control frame of ${length} bytes`;
  if (type === FRAME_CHUNK && (length === 0 || length > MAX_CHUNK_BYTES)) return `chunk of ${length} bytes`;
  return { type, length, bucket: header.readUInt32BE(8), offset: header.readUInt32BE(12) };
}

export function encodeControl(message: PeerMessage): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  return Buffer.concat([encodeHeader(FRAME_CONTROL, body.length), body]);
}

const v = z.literal(PEER_PROTOCOL_VERSION);
const nonce = z.string().regex(/^[0-9a-f]{32}$/);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** Seed → receiver, first frame on every connection. */
export const challenge = z.object({ v, type: z.literal('challenge'), nonce });

/** Receiver → seed: who I am, proven with the pod-to-pod token over the seed's nonce. */
export const peerHello = z.object({
  v,
  type: z.literal('hello'),
  namespace: z.string().min(1).max(253),
  transfer: z.string().min(1).max(253),
  attempt: z.number().int().nonnegative(),
  pod: z.string().min(1).max(253),
  uid: z.string().min(1).max(64),
  rank: z.number().int().nonnegative(),
  fingerprint: hex64,
  stream: z.number().int().nonnegative(),
  streams: z.number().int().min(1).max(64),
  /** nccl: this receiver's engine can join the communicator itself (direct casts). Signed. */
  direct: z.literal(true).optional(),
  nonce,
  mac: hex64,
});
export type PeerHello = z.infer<typeof peerHello>;

/** Seed → receiver: accepted; the seed proves the token too (over the receiver's nonce). */
export const accept = z.object({
  v,
  type: z.literal('accept'),
  pod: z.string().min(1).max(253),
  uid: z.string().min(1).max(64),
  rank: z.number().int().nonnegative(),
  fingerprint: hex64,
  totalBytes: z.number().int().nonnegative(),
  bucketBytes: z.number().int().positive(),
  buckets: z.number().int().nonnegative(),
  chunkBytes: z.number().int().positive().max(MAX_CHUNK_BYTES),
  mac: hex64,
});
export type Accept = z.infer<typeof accept>;

/** Seed → receiver: refused before any byte moved; the connection closes after it. */
export const refuse = z.object({
  v,
  type: z.literal('refuse'),
  code: z.string().min(1).max(64),
  reason: z.string().min(1).max(128),
  message: z.string().max(1024),
});

/** Receiver → seed: slot free, send bucket `bucket`. */
export const credit = z.object({ v, type: z.literal('credit'), bucket: z.number().int().nonnegative() });

/** Seed → receiver: every chunk of `bucket` was sent; its checksum. */
export const bucketDone = z.object({
  v,
  type: z.literal('bucket'),
  bucket: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  checksum: z.string().regex(/^[0-9]+:[0-9a-f]{16}$/),
});

/** Receiver → seed: this rank is drained and verified (or failed). */
export const result = z.object({
  v,
  type: z.literal('result'),
  outcome: z.enum(['verified', 'failed']),
  message: z.string().max(1024).optional(),
});

/** Either side: giving up. */
export const abort = z.object({
  v,
  type: z.literal('abort'),
  reason: z.string().max(128),
  message: z.string().max(1024),
});

export const ping = z.object({ v, type: z.literal('ping') });

export const peerMessage = z.discriminatedUnion('type', [
  challenge,
  peerHello,
  accept,
  refuse,
  credit,
  bucketDone,
  result,
  abort,
  ping,
]);
export type PeerMessage = z.infer<typeof peerMessage>;

export const newNonce = (): string => randomBytes(16).toString('hex');

function mac(token: Buffer, purpose: string, fields: Record<string, unknown>): string {
  return createHmac('sha256', token)
    .update(canonicalJson({ purpose, ...fields }))
    .digest('hex');
}

export function macEquals(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

type HelloFields = Omit<PeerHello, 'v' | 'type' | 'mac'>;

export function helloMac(token: Buffer, hello: HelloFields, seedNonce: string): string {
  const {
    namespace,
    transfer,
    attempt,
    pod,
    uid,
    rank,
    fingerprint,
    stream,
    streams,
    direct,
    nonce: receiverNonce,
  } = hello;
  return mac(token, 'seedcast-peer-hello-v1', {
    namespace,
    transfer,
    attempt,
    pod,
    uid,
    rank,
    fingerprint,
    stream,
    streams,
    // Only when offered, so hellos without it keep the MAC they always had.
    ...(direct === true ? { direct } : {}),
    nonce: receiverNonce,
    seedNonce,
  });
}

export function acceptMac(
  token: Buffer,
  fields: {
    namespace: string;
    transfer: string;
    attempt: number;
    pod: string;
    uid: string;
    rank: number;
    fingerprint: string;
  },
  receiverNonce: string,
  seedNonce: string,
): string {
  return mac(token, 'seedcast-peer-accept-v1', { ...fields, nonce: receiverNonce, seedNonce });
}

/** Parses one control frame body with `schema`; a string says why it is not a valid message. */
export function parseControl<T>(body: Buffer, schema: z.ZodType<T>): T | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return 'control frame is not JSON';
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    return `invalid control message: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
  return parsed.data;
}

/**
 * Reads control frames from a socket that carries no chunk frames toward us (the seed's side of a
 * tcp stream, both sides of an nccl control connection); a chunk frame is `noChunks`, an error.
 */
export class ControlReader<T> {
  #buffered: Buffer = Buffer.alloc(0);
  readonly #schema: z.ZodType<T>;
  readonly #noChunks: string;
  readonly #onMessage: (message: T) => void;
  readonly #onError: (reason: string) => void;

  constructor(
    socket: Socket,
    options: { schema: z.ZodType<T>; noChunks: string },
    onMessage: (message: T) => void,
    onError: (reason: string) => void,
  ) {
    this.#schema = options.schema;
    this.#noChunks = options.noChunks;
    this.#onMessage = onMessage;
    this.#onError = onError;
    socket.on('data', (chunk: Buffer) => this.#push(chunk));
  }

  #push(chunk: Buffer): void {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    while (this.#buffered.length >= HEADER_BYTES) {
      const header = decodeHeader(this.#buffered.subarray(0, HEADER_BYTES));
      if (typeof header === 'string' || header.type !== FRAME_CONTROL) {
        this.#onError(typeof header === 'string' ? header : this.#noChunks);
        return;
      }
      if (this.#buffered.length < HEADER_BYTES + header.length) return;
      const body = this.#buffered.subarray(HEADER_BYTES, HEADER_BYTES + header.length);
      this.#buffered = this.#buffered.subarray(HEADER_BYTES + header.length);
      const parsed = parseControl(body, this.#schema);
      if (typeof parsed === 'string') {
        this.#onError(parsed);
        return;
      }
      this.#onMessage(parsed);
    }
  }
}
