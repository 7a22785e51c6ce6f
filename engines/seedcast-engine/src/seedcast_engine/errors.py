"""Typed errors with the stable codes of `src/shared/errors.ts` (callers branch on `code`)."""

from __future__ import annotations

PROTOCOL = "SEEDCAST_ERR_PROTOCOL"
INVALID = "SEEDCAST_ERR_INVALID"
FINGERPRINT_MISMATCH = "SEEDCAST_ERR_FINGERPRINT_MISMATCH"
CUDA = "SEEDCAST_ERR_CUDA"
NO_CUDA = "SEEDCAST_ERR_NO_CUDA"
TIMEOUT = "SEEDCAST_ERR_TIMEOUT"
ABORTED = "SEEDCAST_ERR_ABORTED"
PEER_LOST = "SEEDCAST_ERR_PEER_LOST"
CHECKSUM = "SEEDCAST_ERR_CHECKSUM"


class SeedcastError(Exception):
    """An error with a stable code; `retryable` is False when retrying cannot help."""

    def __init__(self, code: str, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"SeedcastError({self.code!r}, {self.message!r})"


class ProtocolError(SeedcastError):
    """Framing broken: the connection cannot continue."""

    def __init__(self, message: str):
        super().__init__(PROTOCOL, message, retryable=False)


class ValidationError(SeedcastError):
    """A well-framed message that fails validation; `issues` name the field paths."""

    def __init__(self, what: str, issues: list[str], msg_id: int | None = None):
        super().__init__(INVALID, f"invalid {what}: {'; '.join(issues)}", retryable=False)
        self.issues = issues
        self.msg_id = msg_id


class RemoteError(SeedcastError):
    """The agent answered a request with an `error` frame."""

    def __init__(self, code: str, message: str, msg_id: int | None = None):
        super().__init__(code, message, retryable=code not in (FINGERPRINT_MISMATCH, INVALID))
        self.msg_id = msg_id
