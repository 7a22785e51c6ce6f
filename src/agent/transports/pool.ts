// Fixed-size chunk buffers carved out of the checksum arena (so checksums run in SIMD on them),
// handed out and returned; `acquire` waits when all are in use, which is the transport's
// back-pressure and bounds the agent's memory whatever the model size.
import { ChecksumArena } from '../checksum.ts';

export class ChunkPool {
  readonly arena: ChecksumArena;
  readonly chunkBytes: number;
  readonly capacity: number;
  readonly #free: Buffer[] = [];
  readonly #waiters: Array<(buffer: Buffer) => void> = [];
  #allocated = 0;

  constructor(chunkBytes: number, capacity: number) {
    this.chunkBytes = chunkBytes;
    this.capacity = capacity;
    this.arena = ChecksumArena.create(chunkBytes * capacity);
  }

  /** Buffers are created on first use, so untouched capacity costs no resident memory. */
  acquire(): Promise<Buffer> {
    const buffer = this.#free.pop();
    if (buffer !== undefined) return Promise.resolve(buffer);
    if (this.#allocated < this.capacity) {
      this.#allocated++;
      return Promise.resolve(this.arena.alloc(this.chunkBytes));
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** A buffer now, or undefined when all are in use (for callers that cannot wait, e.g. `onread`). */
  tryAcquire(): Buffer | undefined {
    const buffer = this.#free.pop();
    if (buffer !== undefined) return buffer;
    if (this.#allocated < this.capacity) {
      this.#allocated++;
      return this.arena.alloc(this.chunkBytes);
    }
    return undefined;
  }

  release(buffer: Buffer): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(buffer);
    else this.#free.push(buffer);
  }

  get inUse(): number {
    return this.#allocated - this.#free.length;
  }
}

/** Paces sends to `bytesPerSecond` (a seed's bandwidth limit). */
export class Pacer {
  readonly #rate: number;
  #next = 0;

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    this.#next = Math.max(this.#next, now) + (bytes / this.#rate) * 1000;
    const wait = this.#next - now - (bytes / this.#rate) * 1000;
    if (wait > 1) {
      const { setTimeout: sleep } = await import('node:timers/promises');
      await sleep(wait, undefined, signal === undefined ? {} : { signal });
    }
  }
}
