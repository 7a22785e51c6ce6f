// tcp-over-cuda: GPU memory moved through pinned host buffers to and from a byte stream, for
// one-GPU machines and clusters without NCCL connectivity. Two pinned buffers alternate, so the
// PCIe copy of one chunk overlaps the socket I/O of the other. Framing is the caller's business.
import type { Socket } from 'node:net';
import { SeedcastError } from '../shared/errors.ts';
import type { DeviceBuffer } from './device-buffer.ts';
import type { PinnedHostBuffer } from './pinned-host-buffer.ts';

export interface StagingOptions {
  offset?: number;
  bytes?: number;
  /** Two pinned buffers of equal size; their size is the chunk size. */
  pinned: readonly [PinnedHostBuffer, PinnedHostBuffer];
}

/**
 * Yields the range as Buffers that are views of the pinned memory. A yielded chunk stays valid
 * until the consumer asks for the next one (finish writing it first).
 */
export async function* readDeviceChunks(src: DeviceBuffer, options: StagingOptions): AsyncGenerator<Buffer> {
  const offset = options.offset ?? 0;
  const total = options.bytes ?? src.bytes - offset;
  const chunk = Math.min(options.pinned[0].bytes, options.pinned[1].bytes);
  const fetch = (k: number) => {
    const at = k * chunk;
    const bytes = Math.min(chunk, total - at);
    const pinned = options.pinned[k % 2]!;
    return src.copyToHost(pinned, { srcOffset: offset + at, bytes }).then(() => pinned.view(0, bytes));
  };
  const count = Math.ceil(total / chunk);
  let next = count > 0 ? fetch(0) : undefined;
  for (let k = 0; k < count; k++) {
    const current = await next!;
    // Prefetch k+1 into the other buffer while the consumer sends chunk k.
    next = k + 1 < count ? fetch(k + 1) : undefined;
    yield current;
  }
}

/** Writes a device range to a socket; resolves once the socket has taken every byte. */
export async function sendDeviceRange(
  socket: Socket,
  src: DeviceBuffer,
  options: StagingOptions,
): Promise<number> {
  let sent = 0;
  for await (const chunk of readDeviceChunks(src, options)) {
    // Wait for the write callback, not just 'drain': the socket reads the pinned memory until then.
    await new Promise<void>((resolve, reject) =>
      socket.write(chunk, (err) => (err ? reject(err) : resolve())),
    );
    sent += chunk.length;
  }
  return sent;
}

/** Fills a device range from a stream of pieces of any size (the payload of a transport's frames). */
export class DeviceWriter {
  readonly #dst: DeviceBuffer;
  readonly #offset: number;
  readonly #total: number;
  readonly #pinned: readonly [PinnedHostBuffer, PinnedHostBuffer];
  readonly #chunk: number;
  #current = 0;
  #filled = 0;
  #written = 0;
  #pending: [Promise<unknown> | undefined, Promise<unknown> | undefined] = [undefined, undefined];

  constructor(dst: DeviceBuffer, options: StagingOptions) {
    this.#dst = dst;
    this.#offset = options.offset ?? 0;
    this.#total = options.bytes ?? dst.bytes - this.#offset;
    this.#pinned = options.pinned;
    this.#chunk = Math.min(options.pinned[0].bytes, options.pinned[1].bytes);
  }

  get received(): number {
    return this.#written + this.#filled;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.received + data.length > this.#total) {
      throw new SeedcastError(
        'SEEDCAST_ERR_PROTOCOL',
        `received ${this.received + data.length} bytes for a range of ${this.#total}`,
      );
    }
    let rest = data;
    while (rest.length > 0) {
      const view = this.#pinned[this.#current]!.view();
      const n = Math.min(rest.length, this.#chunk - this.#filled);
      view.set(rest.subarray(0, n), this.#filled);
      this.#filled += n;
      rest = rest.subarray(n);
      if (this.#filled === this.#chunk) await this.#flush();
    }
  }

  /** Flushes the last partial chunk and waits for every copy; fails if bytes are missing. */
  async finish(): Promise<void> {
    if (this.#filled > 0) await this.#flush();
    await Promise.all(this.#pending);
    if (this.#written !== this.#total) {
      throw new SeedcastError(
        'SEEDCAST_ERR_PROTOCOL',
        `range incomplete: ${this.#written} of ${this.#total} bytes`,
      );
    }
  }

  async #flush(): Promise<void> {
    const slot = this.#current;
    const bytes = this.#filled;
    const dstOffset = this.#offset + this.#written;
    this.#pending[slot] = this.#dst.copyFromHost(this.#pinned[slot]!, { dstOffset, bytes });
    this.#written += bytes;
    this.#filled = 0;
    this.#current = slot ^ 1;
    // The other buffer is refilled next: its previous upload must be done.
    await this.#pending[this.#current];
  }
}
