// Types of the native addon and of its TypeScript face, in one place.

/** Where a GPU library was found: an explicit override, a copy already loaded, a candidate path, the system. */
export type LibrarySource = 'override' | 'already-loaded' | 'candidate' | 'system';

export interface LibraryAttempt {
  path: string;
  /** dlopen's message; absent for the attempt that succeeded. */
  error?: string;
}

export interface LibraryStatus {
  ok: boolean;
  path: string | null;
  how: LibrarySource | null;
  errorCode?: string;
  error?: string;
  attempts: LibraryAttempt[];
}

export interface CudaStatus extends LibraryStatus {
  /** CUDA driver API version, e.g. 13000 for CUDA 13.0. */
  driverVersion: number;
  deviceCount: number;
}

export interface NcclStatus extends LibraryStatus {
  /** NCCL_VERSION_CODE, e.g. 22809 for 2.28.9 (0 when not loaded). */
  version: number;
}

export interface GpuStatus {
  opened: boolean;
  cuda?: CudaStatus;
  nccl?: NcclStatus;
}

/** How to look for one library (computed in TS, searched in native code). */
export interface LibrarySearch {
  override?: string;
  loadedPrefix: string;
  candidates: string[];
  systemNames: string[];
}

export interface DeviceInfo {
  ordinal: number;
  name: string;
  pciBusId: string;
  totalBytes: number;
  computeCapability: string;
  multiprocessors: number;
}

export interface MemInfo {
  freeBytes: number;
  totalBytes: number;
}

/** A GPU operation's time measured with CUDA events around it (excludes JS and thread hand-off). */
export interface GpuTiming {
  bytes: number;
  gpuMs: number;
}

/** A byte range of a device buffer: the unit of packing and of broadcast. */
export interface DeviceRange<B> {
  buffer: B;
  offset?: number;
  bytes?: number;
}

export interface CommunicatorOptions {
  /** 128-byte ncclUniqueId, base64 (as stored in WeightTransfer status) or raw. */
  uniqueId: string | Uint8Array;
  rank: number;
  nranks: number;
  device: number;
  /** Init must finish within this budget or the communicator is aborted (SEEDCAST_ERR_NCCL_TIMEOUT). */
  timeoutMs: number;
  /** ncclConfig_t.minCTAs / maxCTAs: fewer CTAs, fewer channels, less memory. */
  minCTAs?: number;
  maxCTAs?: number;
  /**
   * Connect the ring before returning (default true): NCCL connects its channels lazily, in the
   * first collective (NCCL_RUNTIME_CONNECT), which then costs ~100–150 ms on H200s — 40× a 1 GiB
   * broadcast. With `connect`, init ends with a 4 KiB broadcast from rank 0 that pays it, inside
   * the same deadline, so every later broadcast runs at the link's speed.
   */
  connect?: boolean;
}

export type CommunicatorPhase = 'initializing' | 'ready' | 'aborted' | 'closed' | 'failed';

// ---- the raw binding (native/src/addon.cc) ----

export interface NativeDeviceBuffer {
  readonly device: number;
  readonly bytes: number;
  readonly address: bigint;
  readonly freed: boolean;
  copyFromHost(
    src: Uint8Array | NativePinnedBuffer,
    srcOffset: number,
    dstOffset: number,
    bytes: number,
  ): Promise<number>;
  copyToHost(
    dst: Uint8Array | NativePinnedBuffer,
    srcOffset: number,
    dstOffset: number,
    bytes: number,
  ): Promise<number>;
  copyFromDevice(
    src: NativeDeviceBuffer,
    srcOffset: number,
    dstOffset: number,
    bytes: number,
  ): Promise<number>;
  fill(value: number, offset: number, bytes: number): Promise<void>;
  checksum(offset: number, bytes: number): Promise<{ a: number; c: number; gpuMs: number }>;
  ipcHandle(): Promise<Buffer>;
  free(): Promise<void>;
}

export interface NativePinnedBuffer {
  readonly bytes: number;
  readonly freed: boolean;
  view(offset?: number, bytes?: number): Buffer;
  free(): Promise<void>;
}

export interface NativeCommunicator {
  readonly rank: number;
  readonly nranks: number;
  readonly device: number;
  readonly phase: CommunicatorPhase;
  broadcast(
    entries: [NativeDeviceBuffer, number, number][],
    root: number,
    timeoutMs: number,
  ): Promise<number>;
  abort(): Promise<void>;
  close(timeoutMs: number): Promise<{ aborted: boolean }>;
}

export interface NativeBinding {
  readonly napiVersion: number;
  openLibraries(options: { cuda: LibrarySearch; nccl: LibrarySearch }): Promise<GpuStatus>;
  status(): GpuStatus;
  devices(): Promise<DeviceInfo[]>;
  memInfo(device: number): Promise<MemInfo>;
  allocDevice(device: number, bytes: number): Promise<NativeDeviceBuffer>;
  openIpcHandle(device: number, handle: Buffer): Promise<NativeDeviceBuffer>;
  /** table rows: [srcIndex, srcOffset, dstIndex, dstOffset, bytes] into `buffers`. */
  copySegments(device: number, buffers: NativeDeviceBuffer[], table: BigUint64Array): Promise<number>;
  allocPinned(bytes: number, device?: number): Promise<NativePinnedBuffer>;
  ncclUniqueId(): Promise<Buffer>;
  /** A Buffer over the first `bytes` of a file, MAP_SHARED read-write (unmapped when collected). */
  mapFile?(path: string, bytes: number): Buffer;
  /** sum32x2's two sums of a host range as if it started at word 0. */
  sum32x2?(bytes: Uint8Array): { a: number; c: number };
  /** The same on a libuv pool thread; `bytes` must not change until it settles. */
  sum32x2Async?(bytes: Uint8Array): Promise<{ a: number; c: number }>;
  ncclInit(
    uniqueId: Buffer,
    rank: number,
    nranks: number,
    device: number,
    timeoutMs: number,
    options?: { minCTAs?: number; maxCTAs?: number },
  ): Promise<NativeCommunicator>;
}
