// The entry point: open the GPU libraries (after a child-process probe) and hand out buffers and
// communicators. One Gpu per process (the native runtime is process-wide).
import { SeedcastError } from '../shared/errors.ts';
import { type NativeConfig, nativeConfigFromEnv } from './config.ts';
import { DeviceBuffer } from './device-buffer.ts';
import { native } from './errors.ts';
import { cudaSearch, ncclSearch } from './libraries.ts';
import { loadBinding } from './loader.ts';
import { NcclCommunicator, withWatchdog } from './nccl-communicator.ts';
import { PinnedHostBuffer } from './pinned-host-buffer.ts';
import { type ProbeResult, probeGpu } from './probe.ts';
import type {
  CommunicatorOptions,
  CudaStatus,
  DeviceInfo,
  DeviceRange,
  GpuTiming,
  MemInfo,
  NativeBinding,
  NcclStatus,
} from './types.ts';

export interface OpenGpuOptions {
  config?: NativeConfig;
  /** Skip the child-process probe (default: config.probe). */
  probe?: boolean;
}

let opening: Promise<Gpu> | undefined;

export class Gpu {
  readonly binding: NativeBinding;
  readonly cuda: CudaStatus;
  readonly nccl: NcclStatus;
  readonly probe: ProbeResult | undefined;

  private constructor(
    binding: NativeBinding,
    cuda: CudaStatus,
    nccl: NcclStatus,
    probe: ProbeResult | undefined,
  ) {
    this.binding = binding;
    this.cuda = cuda;
    this.nccl = nccl;
    this.probe = probe;
  }

  /**
   * Opens the GPU once per process. Fails with SEEDCAST_ERR_NATIVE_LOAD (addon not built or not
   * loadable) or SEEDCAST_ERR_NO_CUDA (no driver, no GPU, probe crashed). A missing or unsupported
   * NCCL does not fail here: `nccl.ok` is false and communicators fail with SEEDCAST_ERR_NO_NCCL.
   */
  static open(options: OpenGpuOptions = {}): Promise<Gpu> {
    opening ??= Gpu.#open(options).catch((err) => {
      opening = undefined;
      throw err;
    });
    return opening;
  }

  static async #open(options: OpenGpuOptions): Promise<Gpu> {
    const config = options.config ?? nativeConfigFromEnv();
    const binding = loadBinding(config);
    let probe: ProbeResult | undefined;
    if (options.probe ?? config.probe) {
      probe = await probeGpu(config);
      if (!probe.ok)
        throw new SeedcastError(probe.code as 'SEEDCAST_ERR_NO_CUDA', probe.message, { retryable: false });
      if (!probe.status.cuda?.ok) throw noCuda(probe.status.cuda);
    }
    const status = await native(() =>
      binding.openLibraries({ cuda: cudaSearch(config), nccl: ncclSearch(config) }),
    );
    if (!status.cuda?.ok || !status.nccl) throw noCuda(status.cuda);
    return new Gpu(binding, status.cuda, status.nccl, probe);
  }

  get deviceCount(): number {
    return this.cuda.deviceCount;
  }

  devices(): Promise<DeviceInfo[]> {
    return native(() => this.binding.devices());
  }

  /** Free and total memory of a device (creates its context on first use: ~0.5 GiB). */
  memInfo(device: number): Promise<MemInfo> {
    return native(() => this.binding.memInfo(device));
  }

  async allocDevice(device: number, bytes: number): Promise<DeviceBuffer> {
    return new DeviceBuffer(await native(() => this.binding.allocDevice(device, bytes)));
  }

  async allocPinned(bytes: number, device = 0): Promise<PinnedHostBuffer> {
    return new PinnedHostBuffer(await native(() => this.binding.allocPinned(bytes, device)));
  }

  /** Opens another process's allocation (64-byte handle, raw or base64). free() closes it. */
  async openIpcHandle(device: number, handle: Uint8Array | string): Promise<DeviceBuffer> {
    const raw = typeof handle === 'string' ? Buffer.from(handle, 'base64') : Buffer.from(handle);
    return new DeviceBuffer(await native(() => this.binding.openIpcHandle(device, raw)));
  }

  /** Gathers ranges of device buffers into `dst` back to back from `dstOffset` (one kernel launch). */
  packBucket(
    dst: DeviceBuffer,
    dstOffset: number,
    sources: readonly DeviceRange<DeviceBuffer>[],
  ): Promise<GpuTiming> {
    return this.#copySegments(dst, dstOffset, sources, 'pack');
  }

  /** Scatters `src` from `srcOffset` back into the ranges (the inverse of packBucket). */
  unpackBucket(
    src: DeviceBuffer,
    srcOffset: number,
    targets: readonly DeviceRange<DeviceBuffer>[],
  ): Promise<GpuTiming> {
    return this.#copySegments(src, srcOffset, targets, 'unpack');
  }

  async #copySegments(
    bucket: DeviceBuffer,
    bucketOffset: number,
    ranges: readonly DeviceRange<DeviceBuffer>[],
    direction: 'pack' | 'unpack',
  ): Promise<GpuTiming> {
    const buffers: DeviceBuffer[] = [bucket];
    const index = new Map<DeviceBuffer, number>([[bucket, 0]]);
    const table = new BigUint64Array(ranges.length * 5);
    let at = bucketOffset;
    ranges.forEach((range, i) => {
      let k = index.get(range.buffer);
      if (k === undefined) {
        k = buffers.length;
        buffers.push(range.buffer);
        index.set(range.buffer, k);
      }
      const offset = range.offset ?? 0;
      const bytes = range.bytes ?? range.buffer.bytes - offset;
      const row = direction === 'pack' ? [k, offset, 0, at, bytes] : [0, at, k, offset, bytes];
      for (let j = 0; j < 5; j++) table[i * 5 + j] = BigInt(row[j]!);
      at += bytes;
    });
    const gpuMs = await native(() =>
      this.binding.copySegments(
        bucket.device,
        buffers.map((b) => b.raw),
        table,
      ),
    );
    return { bytes: at - bucketOffset, gpuMs };
  }

  /** A fresh 128-byte ncclUniqueId, base64 (the root rank makes it and publishes it). */
  async ncclUniqueId(): Promise<string> {
    return (await native(() => this.binding.ncclUniqueId())).toString('base64');
  }

  /** Joins a communicator; aborted (SEEDCAST_ERR_NCCL_TIMEOUT) if not every rank arrives within timeoutMs. */
  async initCommunicator(options: CommunicatorOptions): Promise<NcclCommunicator> {
    const id =
      typeof options.uniqueId === 'string'
        ? Buffer.from(options.uniqueId, 'base64')
        : Buffer.from(options.uniqueId);
    if (id.length !== 128) {
      throw new SeedcastError('SEEDCAST_ERR_INVALID', `uniqueId must be 128 bytes, got ${id.length}`, {
        retryable: false,
      });
    }
    const ctas = {
      ...(options.minCTAs !== undefined ? { minCTAs: options.minCTAs } : {}),
      ...(options.maxCTAs !== undefined ? { maxCTAs: options.maxCTAs } : {}),
    };
    const started = performance.now();
    const raw = await withWatchdog(options.timeoutMs, 'ncclCommInitRankConfig', () =>
      native(() =>
        this.binding.ncclInit(id, options.rank, options.nranks, options.device, options.timeoutMs, ctas),
      ),
    );
    const comm = new NcclCommunicator(raw);
    comm.initMs = performance.now() - started;
    if (options.connect ?? true) await this.#connect(comm, options.timeoutMs - comm.initMs);
    return comm;
  }

  /** The first collective, small, so NCCL connects the ring now (see CommunicatorOptions.connect). */
  async #connect(comm: NcclCommunicator, timeoutMs: number): Promise<void> {
    const started = performance.now();
    try {
      const scratch = await this.allocDevice(comm.device, CONNECT_BYTES);
      try {
        await comm.broadcast([scratch], { root: 0, timeoutMs: Math.max(1, Math.floor(timeoutMs)) });
      } finally {
        await scratch.free();
      }
    } catch (err) {
      // No communicator is handed out half-connected (a timed-out broadcast already aborted it).
      await comm.close({ timeoutMs: 1000 }).catch(() => {});
      throw err;
    }
    comm.connectMs = performance.now() - started;
  }
}

/** The connect broadcast's size: big enough to be a real collective, small enough to be free. */
const CONNECT_BYTES = 4096;

function noCuda(cuda: CudaStatus | undefined): SeedcastError {
  const tried = cuda?.attempts.map((a) => `${a.path}${a.error ? ` (${a.error})` : ''}`).join('; ');
  return new SeedcastError(
    'SEEDCAST_ERR_NO_CUDA',
    `no usable CUDA GPU: ${cuda?.error ?? 'libraries not opened'}${tried ? `; tried: ${tried}` : ''}. ` +
      'Set SEEDCAST_CUDA_PATH to libcuda.so.1 if the driver is installed elsewhere.',
    { retryable: false },
  );
}
