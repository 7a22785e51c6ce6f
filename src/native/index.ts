// The TypeScript face of the native addon (native/): GPU buffers, CUDA IPC, bucket packing,
// checksums, NCCL communicators with deadlines, and tcp-over-cuda staging. See docs/native.md.
export { formatSum32x2, Sum32x2, sum32x2 } from './checksum.ts';
export { type NativeConfig, nativeConfigFromEnv } from './config.ts';
export { type CopyOptions, DeviceBuffer } from './device-buffer.ts';
export { toSeedcastError } from './errors.ts';
export { Gpu, type OpenGpuOptions } from './gpu.ts';
export { cudaSearch, ncclSearch, sitePackagesDirs } from './libraries.ts';
export { DEFAULT_ADDON_PATH, loadBinding } from './loader.ts';
export { type BroadcastEntry, type BroadcastOptions, NcclCommunicator } from './nccl-communicator.ts';
export { PinnedHostBuffer } from './pinned-host-buffer.ts';
export { type ProbeResult, probeGpu } from './probe.ts';
export { DeviceWriter, readDeviceChunks, type StagingOptions, sendDeviceRange } from './staging.ts';
export type * from './types.ts';
