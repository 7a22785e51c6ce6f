import { Reasons } from '../api/v1alpha1/conditions.ts';
import { type ErrorCode, SeedcastError } from '../shared/errors.ts';

/** A transfer failed: `reason` goes to the status entry (Reasons.*), the message to humans. */
export class TransferError extends SeedcastError {
  readonly reason: string;
  constructor(
    code: ErrorCode,
    reason: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, message, options);
    this.name = 'TransferError';
    this.reason = reason;
  }
}

/** Maps anything thrown during a transfer to a TransferError. */
export function asTransferError(err: unknown, fallbackReason: string = Reasons.Failed): TransferError {
  if (err instanceof TransferError) return err;
  if (err instanceof SeedcastError) {
    const reason =
      err.code === 'SEEDCAST_ERR_FINGERPRINT_MISMATCH' ? Reasons.FingerprintMismatch : fallbackReason;
    return new TransferError(err.code, reason, err.message, { cause: err });
  }
  return new TransferError(
    'SEEDCAST_ERR_ABORTED',
    fallbackReason,
    err instanceof Error ? err.message : String(err),
    { cause: err },
  );
}

/** The transfer's deadline passed; `what` says during which step. */
export const deadlineError = (what: string): TransferError =>
  new TransferError('SEEDCAST_ERR_TIMEOUT', Reasons.DeadlineExceeded, `transfer deadline passed ${what}`);
