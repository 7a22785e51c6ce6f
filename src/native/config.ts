// Native settings, read once from the environment into a frozen object.
import { z } from 'zod';

const schema = z.object({
  /** Path of seedcast_native.node (default: native/build/Release in this checkout). */
  SEEDCAST_NATIVE_ADDON: z.string().min(1).optional(),
  /** Exact libcuda to load (the driver API library, e.g. /usr/lib/x86_64-linux-gnu/libcuda.so.1). */
  SEEDCAST_CUDA_PATH: z.string().min(1).optional(),
  /** Exact libnccl to load (e.g. .../site-packages/nvidia/nccl/lib/libnccl.so.2). */
  SEEDCAST_NCCL_PATH: z.string().min(1).optional(),
  /** Extra site-packages folders (':'-separated) to search for nvidia/nccl/lib. */
  SEEDCAST_PYTHON_SITE_PACKAGES: z.string().optional(),
  /** '0' skips the child-process probe (tests, or when the caller already probed). */
  SEEDCAST_GPU_PROBE: z.enum(['0', '1']).optional(),
  SEEDCAST_GPU_PROBE_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  VIRTUAL_ENV: z.string().optional(),
  CONDA_PREFIX: z.string().optional(),
  PYTHONPATH: z.string().optional(),
  PATH: z.string().optional(),
  HOME: z.string().optional(),
});

export interface NativeConfig {
  readonly addonPath: string | undefined;
  readonly cudaPath: string | undefined;
  readonly ncclPath: string | undefined;
  readonly extraSitePackages: readonly string[];
  readonly probe: boolean;
  readonly probeTimeoutMs: number;
  readonly virtualEnv: string | undefined;
  readonly condaPrefix: string | undefined;
  readonly pythonPath: readonly string[];
  readonly path: readonly string[];
  readonly home: string | undefined;
}

export function nativeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NativeConfig {
  const e = schema.parse(env);
  const split = (v: string | undefined) => (v ?? '').split(':').filter((s) => s.length > 0);
  return Object.freeze({
    addonPath: e.SEEDCAST_NATIVE_ADDON,
    cudaPath: e.SEEDCAST_CUDA_PATH,
    ncclPath: e.SEEDCAST_NCCL_PATH,
    extraSitePackages: Object.freeze(split(e.SEEDCAST_PYTHON_SITE_PACKAGES)),
    probe: e.SEEDCAST_GPU_PROBE !== '0',
    probeTimeoutMs: e.SEEDCAST_GPU_PROBE_TIMEOUT_MS ?? 30_000,
    virtualEnv: e.VIRTUAL_ENV,
    condaPrefix: e.CONDA_PREFIX,
    pythonPath: Object.freeze(split(e.PYTHONPATH)),
    path: Object.freeze(split(e.PATH)),
    home: e.HOME,
  });
}
