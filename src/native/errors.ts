// Native failures carry a stable `code` (native/src/errors.h); here they become SeedcastErrors.
import { type ErrorCode, SeedcastError } from '../shared/errors.ts';

const KNOWN = new Set<string>([
  'SEEDCAST_ERR_NO_CUDA',
  'SEEDCAST_ERR_NO_NCCL',
  'SEEDCAST_ERR_NCCL',
  'SEEDCAST_ERR_NCCL_TIMEOUT',
  'SEEDCAST_ERR_CUDA',
  'SEEDCAST_ERR_INVALID',
  'SEEDCAST_ERR_ABORTED',
  'SEEDCAST_ERR_NATIVE_LOAD',
]);

/** Bad arguments and missing libraries cannot be fixed by retrying the same call. */
const NOT_RETRYABLE = new Set<string>([
  'SEEDCAST_ERR_INVALID',
  'SEEDCAST_ERR_NO_CUDA',
  'SEEDCAST_ERR_NO_NCCL',
]);

export function toSeedcastError(err: unknown): SeedcastError {
  if (err instanceof SeedcastError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const known = typeof code === 'string' && KNOWN.has(code) ? (code as ErrorCode) : 'SEEDCAST_ERR_CUDA';
  return new SeedcastError(known, message, { cause: err, retryable: !NOT_RETRYABLE.has(known) });
}

/** Awaits a native promise (or call) and rethrows its failure as a SeedcastError. */
export async function native<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toSeedcastError(err);
  }
}
