// Abort forwarding that also works for a signal that is already aborted: a listener added to an
// aborted signal never fires (found by the fault suite: a seed whose transfer was failed while it
// waited for the engine lock listened for 60 s for receivers that would never come, holding its
// ports — and the next transfer from that seed waited behind it).

/** Calls `handler` once `signal` aborts — at once if it already has. Returns the unsubscribe. */
export function onAbort(signal: AbortSignal, handler: () => void): () => void {
  if (signal.aborted) {
    handler();
    return () => {};
  }
  signal.addEventListener('abort', handler, { once: true });
  return () => signal.removeEventListener('abort', handler);
}
