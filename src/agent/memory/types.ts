// Staging memory: the buffers the agent owns and lends to the engine (bridge slots). `host` is a
// file in the staging directory (tmpfs); `cuda` is a device buffer exported through CUDA IPC and
// is implemented by the native addon against this interface.
import type { SlotDescriptor } from '../bridge/messages.ts';

export type MemoryKind = 'host' | 'cuda';

export interface StagingSlot {
  readonly slot: number;
  readonly kind: MemoryKind;
  readonly bytes: number;
  /** What the engine needs to open the slot (the `slots` entry of `welcome`). */
  describe(): SlotDescriptor;
  /** Copies `length` bytes at `slotOffset` into `target` (host memory); returns the bytes copied. */
  read(target: Uint8Array, slotOffset: number, length: number): number;
  /** Copies `source` into the slot at `slotOffset`. */
  write(source: Uint8Array, slotOffset: number): void;
  /** Frees the slot; the engine must have closed it. */
  close(): void;
}

export interface StagingMemory {
  readonly kind: MemoryKind;
  allocate(request: { rank: number; slot: number; bytes: number; device?: number }): StagingSlot;
}
