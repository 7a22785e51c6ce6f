// `cuda` staging slots: agent-owned device buffers (cuMemAlloc through the native addon, the base
// of an allocation) exported to the engine by CUDA IPC handle (base64 in `welcome`). The bridge
// allocates slots synchronously when a rank says `hello`, while every addon call is asynchronous,
// so the buffers (and their IPC handles) are allocated ahead: `CudaStagingMemory.create()` makes
// `slotsPerDevice` buffers of `bucketBytes` on each device, `allocate()` lends a free one and
// `close()` returns it. When a device runs out, allocate() fails (the engine gets an `error`) and
// one more buffer is allocated in the background for the engine's next attempt.
//
// Checksums run on the GPU (`checksum()`). The synchronous read()/write() of StagingSlot work on a
// pinned host mirror that the tcp-over-cuda wrapper (cuda-tcp.ts) moves with toHost()/fromHost();
// the nccl transport uses the device buffer directly and never allocates a mirror.
import type { SlotDescriptor } from '../bridge/messages.ts';
import type { StagingMemory, StagingSlot } from './types.ts';

/** The addon surface used here (a real `Gpu`, or a test double). */
export interface CudaBuffer {
  readonly device: number;
  readonly bytes: number;
  ipcHandle(): Promise<Uint8Array>;
  checksum(offset?: number, bytes?: number): Promise<string>;
  copyToHost(
    dst: CudaPinned,
    options: { srcOffset?: number; dstOffset?: number; bytes?: number },
  ): Promise<unknown>;
  copyFromHost(
    src: CudaPinned,
    options: { srcOffset?: number; dstOffset?: number; bytes?: number },
  ): Promise<unknown>;
  free(): Promise<void>;
}

export interface CudaPinned {
  readonly bytes: number;
  view(offset?: number, bytes?: number): Buffer;
  free(): Promise<void>;
}

export interface CudaAllocator {
  allocDevice(device: number, bytes: number): Promise<CudaBuffer>;
  allocPinned(bytes: number, device?: number): Promise<CudaPinned>;
}

interface PooledBuffer {
  buffer: CudaBuffer;
  handle: string;
  inUse: boolean;
}

export class CudaSlot implements StagingSlot {
  readonly slot: number;
  readonly kind = 'cuda' as const;
  readonly bytes: number;
  readonly #pooled: PooledBuffer;
  readonly #memory: CudaStagingMemory;
  #mirror: CudaPinned | undefined;
  #mirroring: Promise<CudaPinned> | undefined;
  #closed = false;

  constructor(memory: CudaStagingMemory, pooled: PooledBuffer, slot: number, bytes: number) {
    this.#memory = memory;
    this.#pooled = pooled;
    this.slot = slot;
    this.bytes = bytes;
  }

  get device(): number {
    return this.#pooled.buffer.device;
  }

  /** The device buffer itself (nccl broadcasts from/into it). */
  get buffer(): CudaBuffer {
    return this.#pooled.buffer;
  }

  get closed(): boolean {
    return this.#closed;
  }

  describe(): SlotDescriptor {
    return {
      slot: this.slot,
      kind: 'cuda',
      device: this.device,
      ipcHandle: this.#pooled.handle,
      bytes: this.bytes,
    };
  }

  /** sum32x2 of the first `bytes` bytes, computed on the GPU. */
  checksum(bytes: number, offset = 0): Promise<string> {
    this.#check(offset, bytes);
    return this.#pooled.buffer.checksum(offset, bytes);
  }

  /** Device → pinned mirror (tcp over cuda, seed side after a fill). */
  async toHost(bytes: number): Promise<void> {
    this.#check(0, bytes);
    const mirror = await this.#mirrorBuffer();
    await this.#pooled.buffer.copyToHost(mirror, { srcOffset: 0, dstOffset: 0, bytes });
  }

  /** Pinned mirror → device (tcp over cuda, receiver side before a drain). */
  async fromHost(bytes: number): Promise<void> {
    this.#check(0, bytes);
    const mirror = await this.#mirrorBuffer();
    await this.#pooled.buffer.copyFromHost(mirror, { srcOffset: 0, dstOffset: 0, bytes });
  }

  /** Allocates the pinned mirror (once); read()/write() need it. */
  async ensureMirror(): Promise<void> {
    await this.#mirrorBuffer();
  }

  /** The pinned mirror's first `bytes` bytes (no copy). */
  hostView(bytes: number): Buffer {
    return this.#mirrorView().subarray(0, bytes);
  }

  read(target: Uint8Array, slotOffset: number, length: number): number {
    const view = this.#mirrorView();
    const n = Math.max(0, Math.min(length, this.bytes - slotOffset));
    target.set(view.subarray(slotOffset, slotOffset + n));
    return n;
  }

  write(source: Uint8Array, slotOffset: number): void {
    if (slotOffset + source.length > this.bytes)
      throw new RangeError(
        `write of ${source.length} bytes at ${slotOffset} past cuda slot of ${this.bytes}`,
      );
    this.#mirrorView().set(source, slotOffset);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const mirror = this.#mirror;
    this.#mirror = undefined;
    const mirroring = this.#mirroring;
    this.#mirroring = undefined;
    if (mirror !== undefined) void mirror.free().catch(() => {});
    else if (mirroring !== undefined) void mirroring.then((m) => m.free()).catch(() => {});
    this.#memory.release(this.#pooled);
  }

  #mirrorView(): Buffer {
    if (this.#mirror === undefined)
      throw new Error(`cuda slot ${this.slot} has no host mirror (tcp over cuda allocates it before use)`);
    return this.#mirror.view();
  }

  #mirrorBuffer(): Promise<CudaPinned> {
    if (this.#closed) return Promise.reject(new Error(`cuda slot ${this.slot} is closed`));
    if (this.#mirror !== undefined) return Promise.resolve(this.#mirror);
    this.#mirroring ??= this.#memory.allocator.allocPinned(this.bytes, this.device).then((m) => {
      if (this.#closed) {
        void m.free().catch(() => {});
        throw new Error(`cuda slot ${this.slot} is closed`);
      }
      this.#mirror = m;
      return m;
    });
    return this.#mirroring;
  }

  #check(offset: number, bytes: number): void {
    if (this.#closed) throw new Error(`cuda slot ${this.slot} is closed`);
    if (offset < 0 || bytes < 0 || offset + bytes > this.bytes)
      throw new RangeError(`range ${offset}+${bytes} outside cuda slot of ${this.bytes} bytes`);
  }
}

export interface CudaStagingOptions {
  allocator: CudaAllocator;
  devices: readonly number[];
  /** Bytes of each buffer: the agent's bucket size (slots are never larger). */
  bucketBytes: number;
  /** Buffers allocated ahead per device (2 = one engine rank per device). */
  slotsPerDevice: number;
  onError?: (message: string) => void;
}

export class CudaStagingMemory implements StagingMemory {
  readonly kind = 'cuda' as const;
  readonly allocator: CudaAllocator;
  readonly #options: CudaStagingOptions;
  readonly #pools = new Map<number, PooledBuffer[]>();
  readonly #growing = new Map<number, Promise<void>>();
  #closed = false;

  private constructor(options: CudaStagingOptions) {
    this.#options = options;
    this.allocator = options.allocator;
  }

  static async create(options: CudaStagingOptions): Promise<CudaStagingMemory> {
    const memory = new CudaStagingMemory(options);
    try {
      for (const device of options.devices)
        for (let i = 0; i < options.slotsPerDevice; i++) await memory.#grow(device);
    } catch (err) {
      await memory.close();
      throw err;
    }
    return memory;
  }

  /** Buffers per device: [total, free]. */
  stats(): Record<number, { total: number; free: number; bytes: number }> {
    const out: Record<number, { total: number; free: number; bytes: number }> = {};
    for (const [device, pool] of this.#pools)
      out[device] = {
        total: pool.length,
        free: pool.filter((p) => !p.inUse).length,
        bytes: pool.reduce((s, p) => s + p.buffer.bytes, 0),
      };
    return out;
  }

  allocate(request: { rank: number; slot: number; bytes: number; device?: number }): StagingSlot {
    const device = request.device ?? this.#options.devices[0] ?? 0;
    const pool = this.#pools.get(device);
    if (pool === undefined)
      throw new Error(
        `no cuda staging on device ${device} (this agent stages on devices ${this.#options.devices.join(',') || 'none'}; see SEEDCAST_CUDA_DEVICES)`,
      );
    if (request.bytes > this.#options.bucketBytes)
      throw new RangeError(
        `slot of ${request.bytes} bytes exceeds the bucket size ${this.#options.bucketBytes}`,
      );
    const free = pool.find((p) => !p.inUse);
    if (free === undefined) {
      this.#growInBackground(device);
      throw new Error(
        `all ${pool.length} cuda staging buffers of device ${device} are in use; one more is being allocated, register again`,
      );
    }
    free.inUse = true;
    return new CudaSlot(this, free, request.slot, request.bytes);
  }

  /** Returns a buffer to its pool (CudaSlot.close). */
  release(pooled: PooledBuffer): void {
    pooled.inUse = false;
    if (this.#closed) void pooled.buffer.free().catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#growing.values()]);
    const frees: Promise<void>[] = [];
    for (const pool of this.#pools.values())
      for (const p of pool) if (!p.inUse) frees.push(p.buffer.free().catch(() => {}));
    this.#pools.clear();
    await Promise.all(frees);
  }

  async #grow(device: number): Promise<void> {
    const buffer = await this.allocator.allocDevice(device, this.#options.bucketBytes);
    try {
      const handle = Buffer.from(await buffer.ipcHandle()).toString('base64');
      if (this.#closed) throw new Error('cuda staging closed');
      let pool = this.#pools.get(device);
      if (pool === undefined) {
        pool = [];
        this.#pools.set(device, pool);
      }
      pool.push({ buffer, handle, inUse: false });
    } catch (err) {
      await buffer.free().catch(() => {});
      throw err;
    }
  }

  #growInBackground(device: number): void {
    if (this.#growing.has(device) || this.#closed) return;
    const growing = this.#grow(device)
      .catch((err: unknown) =>
        this.#options.onError?.(
          `allocating a cuda staging buffer on device ${device}: ${err instanceof Error ? err.message : String(err)}`,
        ),
      )
      .finally(() => this.#growing.delete(device));
    this.#growing.set(device, growing);
  }
}

/** True for slots of the cuda kind (with the device-side operations). */
export function isCudaSlot(slot: StagingSlot): slot is CudaSlot {
  return slot instanceof CudaSlot;
}
