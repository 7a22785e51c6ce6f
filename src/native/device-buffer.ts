// GPU memory owned by the agent (a staging bucket) or opened from another process's IPC handle.
import { formatSum32x2 } from './checksum.ts';
import { native } from './errors.ts';
import { PinnedHostBuffer } from './pinned-host-buffer.ts';
import type { GpuTiming, NativeDeviceBuffer } from './types.ts';

export interface CopyOptions {
  srcOffset?: number;
  dstOffset?: number;
  /** Default: everything that fits from the offsets. */
  bytes?: number;
}

type HostMemory = Uint8Array | PinnedHostBuffer;

const hostRaw = (m: HostMemory) => (m instanceof PinnedHostBuffer ? m.raw : m);
const hostBytes = (m: HostMemory) => (m instanceof PinnedHostBuffer ? m.bytes : m.byteLength);

export class DeviceBuffer {
  readonly raw: NativeDeviceBuffer;

  constructor(raw: NativeDeviceBuffer) {
    this.raw = raw;
  }

  get device(): number {
    return this.raw.device;
  }
  get bytes(): number {
    return this.raw.bytes;
  }
  /** The device address (diagnostics only). */
  get address(): bigint {
    return this.raw.address;
  }
  get freed(): boolean {
    return this.raw.freed;
  }

  /** Host → device. Pinned memory goes at full PCIe speed; a plain Buffer is staged by the driver. */
  async copyFromHost(src: HostMemory, options: CopyOptions = {}): Promise<GpuTiming> {
    const { srcOffset = 0, dstOffset = 0 } = options;
    const bytes = options.bytes ?? Math.min(hostBytes(src) - srcOffset, this.bytes - dstOffset);
    const gpuMs = await native(() => this.raw.copyFromHost(hostRaw(src), srcOffset, dstOffset, bytes));
    return { bytes, gpuMs };
  }

  /** Device → host. */
  async copyToHost(dst: HostMemory, options: CopyOptions = {}): Promise<GpuTiming> {
    const { srcOffset = 0, dstOffset = 0 } = options;
    const bytes = options.bytes ?? Math.min(this.bytes - srcOffset, hostBytes(dst) - dstOffset);
    const gpuMs = await native(() => this.raw.copyToHost(hostRaw(dst), srcOffset, dstOffset, bytes));
    return { bytes, gpuMs };
  }

  /** Device → device (this buffer is the destination). */
  async copyFromDevice(src: DeviceBuffer, options: CopyOptions = {}): Promise<GpuTiming> {
    const { srcOffset = 0, dstOffset = 0 } = options;
    const bytes = options.bytes ?? Math.min(src.bytes - srcOffset, this.bytes - dstOffset);
    const gpuMs = await native(() => this.raw.copyFromDevice(src.raw, srcOffset, dstOffset, bytes));
    return { bytes, gpuMs };
  }

  async fill(value: number, offset = 0, bytes = this.bytes - offset): Promise<void> {
    await native(() => this.raw.fill(value, offset, bytes));
  }

  /** sum32x2 of a byte range, computed on the GPU: equal to `sum32x2()` of the same bytes on the host. */
  async checksum(offset = 0, bytes = this.bytes - offset): Promise<string> {
    return (await this.checksumTimed(offset, bytes)).checksum;
  }

  async checksumTimed(offset = 0, bytes = this.bytes - offset): Promise<{ checksum: string; gpuMs: number }> {
    const r = await native(() => this.raw.checksum(offset, bytes));
    return { checksum: formatSum32x2(bytes, r.a, r.c), gpuMs: r.gpuMs };
  }

  /** The 64-byte cudaIpcMemHandle_t of this allocation (bridge protocol: base64 in `slots[].ipcHandle`). */
  async ipcHandle(): Promise<Buffer> {
    return native(() => this.raw.ipcHandle());
  }

  /** Frees the memory (or closes an opened IPC handle). Later calls on this buffer fail with SEEDCAST_ERR_INVALID. */
  async free(): Promise<void> {
    await native(() => this.raw.free());
  }
}
