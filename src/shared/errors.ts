// Typed errors with stable codes: callers branch on `code`, never on message text.

export type ErrorCode =
  | 'SEEDCAST_ERR_INVALID'
  | 'SEEDCAST_ERR_CONFIG'
  | 'SEEDCAST_ERR_NOT_FOUND'
  | 'SEEDCAST_ERR_CONFLICT'
  | 'SEEDCAST_ERR_KUBE'
  | 'SEEDCAST_ERR_TIMEOUT'
  | 'SEEDCAST_ERR_ABORTED'
  | 'SEEDCAST_ERR_PROTOCOL'
  | 'SEEDCAST_ERR_UNAUTHORIZED'
  | 'SEEDCAST_ERR_FINGERPRINT_MISMATCH'
  | 'SEEDCAST_ERR_CHECKSUM'
  | 'SEEDCAST_ERR_PEER_LOST'
  | 'SEEDCAST_ERR_PORTS_EXHAUSTED'
  | 'SEEDCAST_ERR_CLUSTER'
  | 'SEEDCAST_ERR_NO_CUDA'
  | 'SEEDCAST_ERR_NO_NCCL'
  | 'SEEDCAST_ERR_NCCL'
  | 'SEEDCAST_ERR_NCCL_TIMEOUT'
  | 'SEEDCAST_ERR_CUDA'
  | 'SEEDCAST_ERR_NATIVE_LOAD'
  | 'SEEDCAST_ERR_STAGING_SPACE';

export class SeedcastError extends Error {
  readonly code: ErrorCode;
  /** False when retrying the same operation cannot help (bad input, wrong fingerprint). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SeedcastError';
    this.code = code;
    this.retryable = options.retryable ?? true;
  }
}

/** Bad input: retrying cannot help; the message names the field path. */
export class ValidationError extends SeedcastError {
  readonly issues: readonly string[];
  constructor(what: string, issues: readonly string[]) {
    super('SEEDCAST_ERR_INVALID', `invalid ${what}: ${issues.join('; ')}`, { retryable: false });
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

export const isRetryable = (err: unknown): boolean => !(err instanceof SeedcastError) || err.retryable;

/** Conditions and events must stay bounded whatever an error says. */
export function truncate(text: string, max = 1024): string {
  return text.length <= max ? text : `${text.slice(0, max - 15)}… (truncated)`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
