// Host staging slots: one file per slot in the staging directory (a tmpfs such as /dev/shm or an
// emptyDir with medium Memory). Node has no mmap, so the agent uses positional reads and writes;
// an engine may map the file.
import { closeSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { SlotDescriptor } from '../bridge/messages.ts';
import type { StagingMemory, StagingSlot } from './types.ts';

class HostSlot implements StagingSlot {
  readonly slot: number;
  readonly kind = 'host' as const;
  readonly bytes: number;
  readonly path: string;
  #fd: number | undefined;

  constructor(path: string, slot: number, bytes: number) {
    this.path = path;
    this.slot = slot;
    this.bytes = bytes;
    this.#fd = openSync(path, 'w+', 0o600);
    ftruncateSync(this.#fd, bytes);
  }

  describe(): SlotDescriptor {
    return { slot: this.slot, kind: 'host', path: this.path, bytes: this.bytes };
  }

  read(target: Uint8Array, slotOffset: number, length: number): number {
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fdOrThrow(), target, done, length - done, slotOffset + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  write(source: Uint8Array, slotOffset: number): void {
    let done = 0;
    while (done < source.length)
      done += writeSync(this.#fdOrThrow(), source, done, source.length - done, slotOffset + done);
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  #fdOrThrow(): number {
    if (this.#fd === undefined) throw new Error(`staging slot ${this.path} is closed`);
    return this.#fd;
  }
}

export class HostStagingMemory implements StagingMemory {
  readonly kind = 'host' as const;
  readonly #directory: string;

  constructor(directory: string) {
    this.#directory = directory;
  }

  allocate(request: { rank: number; slot: number; bytes: number }): StagingSlot {
    return new HostSlot(
      join(this.#directory, `staging-r${request.rank}-s${request.slot}`),
      request.slot,
      request.bytes,
    );
  }
}
