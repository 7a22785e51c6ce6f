// How many CPUs the agent may use: the lesser of the CPUs it may run on (affinity) and its
// container's CPU limit (cgroup v2 `cpu.max`, "QUOTA PERIOD" or "max PERIOD"). A pod limited to
// 2 CPUs on a 64-core node gets 2. Used to decide where a tcp receiver checksums (config `tcpReceiveChecksum`).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** CPUs allowed by a cgroup v2 `cpu.max` text (undefined: no limit, or not readable). */
export function cpuMaxLimit(text: string | undefined): number | undefined {
  const match = /^\s*(max|\d+)\s+(\d+)\s*$/.exec(text ?? '');
  if (match === null || match[1] === 'max') return undefined;
  const quota = Number(match[1]);
  const period = Number(match[2]);
  if (!(quota > 0 && period > 0)) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

export function usableCpus(
  parallelism: number = availableParallelism(),
  cpuMax: string | undefined = readCpuMax(),
): number {
  const limit = cpuMaxLimit(cpuMax);
  return limit === undefined ? parallelism : Math.min(parallelism, limit);
}

function readCpuMax(): string | undefined {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    return undefined;
  }
}

/** Where a tcp receiver checksums chunks that land in place: `pool` only where a core is left over for it. */
export function checksumPlacement(setting: 'auto' | 'inline' | 'pool', cpus: number): 'inline' | 'pool' {
  if (setting !== 'auto') return setting;
  return cpus >= POOL_CHECKSUM_MIN_CPUS ? 'pool' : 'inline';
}

/**
 * With fewer CPUs than this, summing on a pool thread costs more than it frees: the pool thread
 * competes with the two socket threads for the same cores and reads the chunk from memory again
 * instead of from the cache the socket copy just filled (bench `transport`, docs/agent.md).
 */
export const POOL_CHECKSUM_MIN_CPUS = 4;
