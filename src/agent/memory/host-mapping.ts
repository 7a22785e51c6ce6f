// Host staging slots mapped into the agent (native addon: mmap of the slot file, and sum32x2 over
// any host range). With a mapped slot the `tcp` transport writes sockets straight out of the slot
// (seed) and reads them straight into it (receiver): no positional read/write copies and no chunk
// buffers. `SEEDCAST_HOST_MAPPING`: `auto` (default) uses the addon when it loads and carries on
// with positional I/O otherwise; `on` fails start-up without it; `off` never loads it.
import { SeedcastError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { Partial32x2 } from '../checksum.ts';
import type { AgentConfig } from '../config.ts';

export interface HostMapper {
  /** A Buffer over the first `bytes` of the file at `path` (shared, read-write). */
  mapFile(path: string, bytes: number): Buffer;
  /** sum32x2 partial of a host range as if it started at word 0 (any buffer, any alignment). */
  sum(bytes: Uint8Array): Partial32x2;
  /** The same on a libuv pool thread (an older addon without it: undefined). */
  sumAsync?: (bytes: Uint8Array) => Promise<Partial32x2>;
}

export async function openHostMapper(
  config: Pick<AgentConfig, 'hostMapping'>,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HostMapper | undefined> {
  if (config.hostMapping === 'off') return undefined;
  let reason: string;
  try {
    const { loadBinding } = await import('../../native/loader.ts');
    const { nativeConfigFromEnv } = await import('../../native/config.ts');
    const binding = loadBinding(nativeConfigFromEnv(env));
    const { mapFile, sum32x2, sum32x2Async } = binding;
    if (typeof mapFile === 'function' && typeof sum32x2 === 'function') {
      log.debug('host staging slots are mapped (native addon)');
      return {
        mapFile: (path, bytes) => mapFile(path, bytes),
        sum: (bytes) => sum32x2(bytes),
        ...(typeof sum32x2Async === 'function'
          ? { sumAsync: (bytes: Uint8Array) => sum32x2Async(bytes) }
          : {}),
      };
    }
    reason = 'the native addon predates mapFile/sum32x2: rebuild it with `npm run build:native`';
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  if (config.hostMapping === 'on')
    throw new SeedcastError('SEEDCAST_ERR_NATIVE_LOAD', `SEEDCAST_HOST_MAPPING=on: ${reason}`, {
      retryable: false,
    });
  log.info({ reason }, 'host staging slots use positional I/O (native addon not available)');
  return undefined;
}
