// Opens the GPU for the agent (native addon) and builds the `cuda` memory kind and the `nccl`
// transport from it. `SEEDCAST_GPU`: `auto` (default) tries when a GPU driver is visible
// (/dev/nvidiactl, or SEEDCAST_CUDA_PATH set) and carries on host-only if that fails; `on`
// fails start-up without a usable GPU; `off` never loads the addon.
import { existsSync } from 'node:fs';
import { errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { AgentConfig } from '../config.ts';
import {
  type Communicator,
  DEFAULT_WIRE_BUFFERS,
  type NcclRankStats,
  NcclTransport,
  type WireBuffer,
} from '../transports/nccl.ts';
import type { Transport } from '../transports/types.ts';
import { type CudaAllocator, CudaStagingMemory } from './cuda.ts';
import type { StagingMemory } from './types.ts';

export interface GpuExtras {
  memory: StagingMemory[];
  transports: Transport[];
  close(): Promise<void>;
  describe: Record<string, unknown>;
}

export async function openGpuExtras(
  config: AgentConfig,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  onStats?: (stats: NcclRankStats) => void,
): Promise<GpuExtras | undefined> {
  if (config.gpu === 'off') return undefined;
  if (config.gpu === 'auto' && !existsSync('/dev/nvidiactl') && env.SEEDCAST_CUDA_PATH === undefined) {
    log.debug('no GPU driver visible: host staging only');
    return undefined;
  }
  try {
    const { Gpu } = await import('../../native/index.ts');
    const gpu = await Gpu.open();
    const devices =
      config.cudaDevices === 'all'
        ? Array.from({ length: gpu.deviceCount }, (_, i) => i)
        : config.cudaDevices.split(',').map((d) => Number(d));
    const memory = await CudaStagingMemory.create({
      // DeviceBuffer/PinnedHostBuffer are what CudaBuffer/CudaPinned describe (the addon checks
      // `instanceof PinnedHostBuffer` at run time; only real ones ever reach it).
      allocator: gpu as unknown as CudaAllocator,
      devices,
      bucketBytes: config.bucketBytes,
      slotsPerDevice: config.cudaSlotsPerDevice,
      onError: (message) => log.error({ err: message }, 'cuda staging'),
    });
    const transports: Transport[] = [];
    if (gpu.nccl.ok) {
      transports.push(
        new NcclTransport({
          // The wire ring (see NcclTransportOptions.allocate): SEEDCAST_NCCL_WIRE_BUFFERS per rank
          // and transfer, each of bucket-bytes, allocated for the transfer and freed after it.
          allocate: async (device, bytes) => (await gpu.allocDevice(device, bytes)) as unknown as WireBuffer,
          wireBuffers: wireBuffersFrom(env),
          // SEEDCAST_NCCL_DIRECT=0: the agents broadcast even where the engines offer direct casts.
          direct: env.SEEDCAST_NCCL_DIRECT !== '0',
          api: {
            ncclUniqueId: () => gpu.ncclUniqueId(),
            initCommunicator: async (options) =>
              (await gpu.initCommunicator(options)) as unknown as Communicator,
          },
          ...(onStats === undefined ? {} : { onStats }),
        }),
      );
    } else log.warn({ nccl: gpu.nccl.error }, 'NCCL not usable: the nccl transport is off');
    const describe = {
      cuda: { path: gpu.cuda.path, driverVersion: gpu.cuda.driverVersion, devices },
      nccl: gpu.nccl.ok ? { path: gpu.nccl.path, version: gpu.nccl.version } : { error: gpu.nccl.error },
      staging: memory.stats(),
    };
    log.info(describe, 'gpu staging ready');
    return { memory: [memory], transports, close: () => memory.close(), describe };
  } catch (err) {
    if (config.gpu === 'on') throw err;
    log.warn({ err: errorMessage(err) }, 'GPU not usable: host staging only');
    return undefined;
  }
}

/** SEEDCAST_NCCL_WIRE_BUFFERS: wire buffers per rank for the nccl transport (0 = off). */
export function wireBuffersFrom(env: NodeJS.ProcessEnv): number {
  const raw = env.SEEDCAST_NCCL_WIRE_BUFFERS;
  if (raw === undefined || raw === '') return DEFAULT_WIRE_BUFFERS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 64)
    throw new Error(`SEEDCAST_NCCL_WIRE_BUFFERS must be an integer 0…64, got ${raw}`);
  return n;
}
