// Page-locked host memory: the staging area between the GPU and sockets (tcp-over-cuda).
import { native } from './errors.ts';
import type { NativePinnedBuffer } from './types.ts';

export class PinnedHostBuffer {
  readonly raw: NativePinnedBuffer;
  #view: Buffer | undefined;

  constructor(raw: NativePinnedBuffer) {
    this.raw = raw;
  }

  get bytes(): number {
    return this.raw.bytes;
  }

  get freed(): boolean {
    return this.raw.freed;
  }

  /**
   * A Buffer over the pinned memory itself (no copy). The memory stays allocated while any view
   * is reachable, even after free(); don't hand views to code that keeps them.
   */
  view(offset = 0, bytes?: number): Buffer {
    if (offset === 0 && bytes === undefined) {
      this.#view ??= this.raw.view();
      return this.#view;
    }
    return this.raw.view(offset, bytes);
  }

  async free(): Promise<void> {
    this.#view = undefined;
    await native(() => this.raw.free());
  }
}
