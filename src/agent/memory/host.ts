// Host staging slots: one file per slot in the staging directory (a tmpfs such as /dev/shm or an
// emptyDir with medium Memory). With a `HostMapper` (the native addon) the agent maps the file and
// exposes it as `mapped` (the tcp transport then moves bytes between sockets and the slot with no
// copy of its own); without one, Node has no mmap and the agent uses positional reads and writes.
// The engine maps the file either way. Besides the synchronous `StagingSlot` methods, a host slot offers
// `readAsync`/`writeAsync` (`AsyncStagingSlot`, an addition: `StagingSlot` is unchanged): the
// copy runs on a libuv pool thread, so the transport's JS thread keeps the sockets busy meanwhile.
import {
  closeSync,
  ftruncateSync,
  openSync,
  read,
  readSync,
  statfsSync,
  unlinkSync,
  write,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { SeedcastError } from '../../shared/errors.ts';
import type { SlotDescriptor } from '../bridge/messages.ts';
import type { HostMapper } from './host-mapping.ts';
import type { StagingMemory, StagingSlot } from './types.ts';

/** A slot whose copies can run off the JS thread (host slots); other kinds may add it later. */
export interface AsyncStagingSlot extends StagingSlot {
  /** Like `read`, on a pool thread; `target` must not be touched until it settles. */
  readAsync(target: Uint8Array, slotOffset: number, length: number): Promise<number>;
  /** Like `write`, on a pool thread; `source` must not be touched until it settles. */
  writeAsync(source: Uint8Array, slotOffset: number): Promise<void>;
}

/** The slot's memory as a Buffer (mapped host slots), or undefined. */
export function mappedView(slot: StagingSlot): Buffer | undefined {
  return (slot as { mapped?: Buffer }).mapped;
}

export function isAsyncSlot(slot: StagingSlot): slot is AsyncStagingSlot {
  const s = slot as Partial<AsyncStagingSlot>;
  return typeof s.readAsync === 'function' && typeof s.writeAsync === 'function';
}

class HostSlot implements AsyncStagingSlot {
  readonly slot: number;
  readonly kind = 'host' as const;
  readonly bytes: number;
  readonly path: string;
  #fd: number | undefined;
  /** Async copies in flight: `close` closes the descriptor once they settled. */
  #pending = 0;
  #closing = false;
  /** The slot file mapped into this process (with a HostMapper); undefined once closed. */
  #mapped: Buffer | undefined;

  constructor(path: string, slot: number, bytes: number, mapper?: HostMapper) {
    this.path = path;
    this.slot = slot;
    this.bytes = bytes;
    this.#fd = openSync(path, 'w+', 0o600);
    ftruncateSync(this.#fd, bytes);
    if (mapper !== undefined) {
      // A mapped page that the filesystem has no room for is a SIGBUS when written (a full tmpfs:
      // a container's 64 MiB /dev/shm, a small emptyDir): refuse the slot with a reason instead.
      const stats = statfsSync(path);
      const free = stats.bavail * stats.bsize;
      if (free < bytes) {
        this.#closeFd();
        unlinkSync(path);
        throw new SeedcastError(
          'SEEDCAST_ERR_STAGING_SPACE',
          `staging directory ${dirname(path)} has ${free} bytes free, a slot needs ${bytes}: give it room for 2 slots of the bucket size per engine rank (injected pods: the seedcast-staging emptyDir, medium: Memory, counts toward the pod's memory)`,
          { retryable: false },
        );
      }
    }
    this.#mapped = mapper?.mapFile(path, bytes);
    // Every page of the slot now, at registration, not at the first bucket of the first transfer:
    // a tmpfs page is allocated and zeroed on its first write, which on the dev VM costs more than
    // the copy that lands in it (perf: 37 % of a receiver agent's CPU in a 16-replica scale-out).
    this.#mapped?.fill(0);
  }

  get mapped(): Buffer | undefined {
    return this.#mapped;
  }

  describe(): SlotDescriptor {
    return { slot: this.slot, kind: 'host', path: this.path, bytes: this.bytes };
  }

  read(target: Uint8Array, slotOffset: number, length: number): number {
    const mapped = this.#mapped;
    if (mapped !== undefined) {
      this.#fdOrThrow();
      return mapped.copy(target, 0, slotOffset, Math.min(slotOffset + length, this.bytes));
    }
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fdOrThrow(), target, done, length - done, slotOffset + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  write(source: Uint8Array, slotOffset: number): void {
    const mapped = this.#mapped;
    if (mapped !== undefined) {
      this.#fdOrThrow();
      if (slotOffset + source.length > this.bytes)
        throw new RangeError(
          `write of ${source.length} bytes at ${slotOffset} past the slot's ${this.bytes}`,
        );
      mapped.set(source, slotOffset);
      return;
    }
    let done = 0;
    while (done < source.length)
      done += writeSync(this.#fdOrThrow(), source, done, source.length - done, slotOffset + done);
  }

  readAsync(target: Uint8Array, slotOffset: number, length: number): Promise<number> {
    return this.#track(async () => {
      let done = 0;
      while (done < length) {
        const n = await this.#io('read', target, done, length - done, slotOffset + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    });
  }

  writeAsync(source: Uint8Array, slotOffset: number): Promise<void> {
    return this.#track(async () => {
      let done = 0;
      while (done < source.length)
        done += await this.#io('write', source, done, source.length - done, slotOffset + done);
    });
  }

  close(): void {
    if (this.#fd === undefined || this.#closing) return;
    this.#closing = true;
    // The mapping itself goes when the last view of it is collected (a socket may still hold one).
    this.#mapped = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
    if (this.#pending === 0) this.#closeFd();
  }

  /** One positional read or write on a libuv pool thread. */
  #io(
    op: 'read' | 'write',
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number> {
    const fd = this.#fdOrThrow();
    return new Promise((resolve, reject) => {
      const done = (err: NodeJS.ErrnoException | null, n: number): void => {
        if (err === null) resolve(n);
        else reject(err);
      };
      if (op === 'read') read(fd, buffer, offset, length, position, done);
      else write(fd, buffer, offset, length, position, done);
    });
  }

  #track<T>(run: () => Promise<T>): Promise<T> {
    this.#pending++;
    const promise = run();
    const settled = (): void => {
      this.#pending--;
      if (this.#closing && this.#pending === 0) this.#closeFd();
    };
    promise.then(settled, settled);
    return promise;
  }

  #closeFd(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    closeSync(fd);
  }

  #fdOrThrow(): number {
    if (this.#fd === undefined || this.#closing) throw new Error(`staging slot ${this.path} is closed`);
    return this.#fd;
  }
}

export class HostStagingMemory implements StagingMemory {
  readonly kind = 'host' as const;
  readonly #directory: string;
  readonly #mapper: HostMapper | undefined;

  constructor(directory: string, mapper?: HostMapper) {
    this.#directory = directory;
    this.#mapper = mapper;
  }

  allocate(request: { rank: number; slot: number; bytes: number }): StagingSlot {
    return new HostSlot(
      join(this.#directory, `staging-r${request.rank}-s${request.slot}`),
      request.slot,
      request.bytes,
      this.#mapper,
    );
  }
}
