// Length-prefixed JSON frames: a 4-byte big-endian length N (1 ≤ N ≤ 64 MiB), then N bytes of
// UTF-8 JSON. The decoder never throws on input: it reports framing errors as values.
import { MAX_FRAME_BYTES } from './messages.ts';

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_FRAME_BYTES)
    throw new RangeError(`frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

export type Decoded =
  | { kind: 'json'; value: unknown }
  /** Not JSON, or not an object: answerable, the stream stays in sync. */
  | { kind: 'malformed'; reason: string }
  /** Bad length: the stream cannot be resynchronised; close it. */
  | { kind: 'fatal'; reason: string };

export class FrameDecoder {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #failed = false;

  /** Feeds bytes, returns every complete frame. After a fatal result nothing more is decoded. */
  push(chunk: Buffer): Decoded[] {
    if (this.#failed) return [];
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    const out: Decoded[] = [];
    let buffer = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
    let offset = 0;
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32BE(offset);
      if (length === 0 || length > MAX_FRAME_BYTES) {
        this.#failed = true;
        out.push({ kind: 'fatal', reason: `frame length ${length} outside 1..${MAX_FRAME_BYTES}` });
        this.#pending = [];
        this.#pendingBytes = 0;
        return out;
      }
      if (buffer.length - offset < 4 + length) break;
      const text = buffer.toString('utf8', offset + 4, offset + 4 + length);
      offset += 4 + length;
      try {
        const value: unknown = JSON.parse(text);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          out.push({ kind: 'malformed', reason: 'frame is not a JSON object' });
        } else out.push({ kind: 'json', value });
      } catch (err) {
        out.push({ kind: 'malformed', reason: `frame is not valid JSON: ${(err as Error).message}` });
      }
    }
    buffer = buffer.subarray(offset);
    this.#pending = buffer.length > 0 ? [buffer] : [];
    this.#pendingBytes = buffer.length;
    return out;
  }

  get buffered(): number {
    return this.#pendingBytes;
  }
}
