// Every message of the engine bridge (docs/bridge-protocol.md), as zod schemas. Both directions
// are validated: the agent validates what engines send, the fixture engine what the agent sends.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
/**
 * 64 MiB: the `hello` frame carries the rank's whole tensor table, ~100–150 bytes per tensor; a
 * DeepSeek-V3-sized MoE rank with per-expert weights and FP8 scales has ~100k tensors (1 MiB held
 * ~8–10k). Every other frame is small.
 */
export const MAX_FRAME_BYTES = 64 * 1_048_576;

const base = { v: z.literal(PROTOCOL_VERSION) };
const id = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const bucket = z.number().int().nonnegative();
const slot = z.number().int().nonnegative();

export const MEMORY_KINDS = ['host', 'cuda'] as const;
export const memoryKind = z.enum(MEMORY_KINDS);

/** Bytes per element of dtypes whose size we know; others (packed quantised formats) are not checked. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  float64: 8,
  float32: 4,
  bfloat16: 2,
  float16: 2,
  float8_e4m3fn: 1,
  float8_e5m2: 1,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const tensorEntry = z
  .object({
    name: z.string().min(1).max(1024),
    dtype: z.string().min(1).max(64),
    shape: z.array(z.number().int().nonnegative()).max(16),
    bytes: z.number().int().nonnegative(),
  })
  .superRefine((t, ctx) => {
    const size = DTYPE_BYTES[t.dtype];
    if (size === undefined) return;
    const expected = t.shape.reduce((n, d) => n * d, 1) * size;
    if (expected !== t.bytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['bytes'],
        message: `shape ${JSON.stringify(t.shape)} of ${t.dtype} is ${expected} bytes, not ${t.bytes}`,
      });
    }
  });
export type TensorEntry = z.infer<typeof tensorEntry>;

export const fingerprintInputs = z.object({
  engine: z.string().min(1).max(128),
  engineVersion: z.string().min(1).max(128),
  model: z.string().min(1).max(512),
  revision: z.string().min(1).max(256),
  tensorParallel: z.number().int().min(1).max(1024),
  pipelineParallel: z.number().int().min(1).max(256),
  rank: z.number().int().nonnegative(),
  dtype: z.string().min(1).max(64),
  quantization: z.string().min(1).max(64),
});
export type FingerprintInputs = z.infer<typeof fingerprintInputs>;

export const hello = z
  .object({
    ...base,
    type: z.literal('hello'),
    id,
    rank: z.number().int().nonnegative(),
    ranks: z.number().int().min(1).max(1024),
    memory: memoryKind,
    device: z.number().int().nonnegative().optional(),
    fingerprintInputs,
    tensors: z.array(tensorEntry).min(1).max(1_000_000),
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/, { message: 'must be a hex sha256' }),
    state: z.enum(['empty', 'loaded']),
    /** The engine can join the rank's NCCL communicator itself (direct casts, `cast`). */
    direct: z.object({ transport: z.literal('nccl') }).optional(),
  })
  .superRefine((h, ctx) => {
    if (h.rank >= h.ranks)
      ctx.addIssue({
        code: 'custom',
        path: ['rank'],
        message: `rank ${h.rank} is not below ranks ${h.ranks}`,
      });
    if (h.fingerprintInputs.rank !== h.rank) {
      ctx.addIssue({ code: 'custom', path: ['fingerprintInputs', 'rank'], message: 'must equal rank' });
    }
    const layout = h.fingerprintInputs.tensorParallel * h.fingerprintInputs.pipelineParallel;
    if (layout !== h.ranks) {
      ctx.addIssue({
        code: 'custom',
        path: ['ranks'],
        message: `tensorParallel × pipelineParallel is ${layout}, not ${h.ranks}`,
      });
    }
    if (h.memory === 'cuda' && h.device === undefined) {
      ctx.addIssue({ code: 'custom', path: ['device'], message: 'required when memory is cuda' });
    }
  });
export type Hello = z.infer<typeof hello>;

export const hostSlot = z.object({
  slot,
  kind: z.literal('host'),
  path: z.string().min(1),
  bytes: z.number().int().positive(),
});
export const cudaSlot = z.object({
  slot,
  kind: z.literal('cuda'),
  device: z.number().int().nonnegative(),
  ipcHandle: z.string().min(1),
  bytes: z.number().int().positive(),
});
export const slotDescriptor = z.discriminatedUnion('kind', [hostSlot, cudaSlot]);
export type SlotDescriptor = z.infer<typeof slotDescriptor>;

export const welcome = z.object({
  ...base,
  type: z.literal('welcome'),
  id,
  fingerprint: z.string(),
  bucketBytes: z.number().int().positive(),
  buckets: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  slots: z.array(slotDescriptor).min(1),
});
export const fill = z.object({ ...base, type: z.literal('fill'), id, bucket, slot });
export const filled = z.object({
  ...base,
  type: z.literal('filled'),
  id,
  bucket,
  slot,
  bytes: z.number().int().nonnegative(),
});
export const drain = z.object({ ...base, type: z.literal('drain'), id, bucket, slot });
export const drained = z.object({ ...base, type: z.literal('drained'), id, bucket });
export const load = z.object({ ...base, type: z.literal('load'), id, source: z.literal('storage') });
export const loaded = z.object({ ...base, type: z.literal('loaded'), id });
export const complete = z.object({
  ...base,
  type: z.literal('complete'),
  id,
  outcome: z.enum(['verified', 'failed']),
  message: z.string().max(4096).optional(),
});
/**
 * Direct casts (docs/bridge-protocol.md): the engine joins the rank's communicator (`commRank` of
 * `nranks`, root 0 sends) from the agent's `uniqueId` and moves every bucket through its own
 * tensors and the rank's staging slots; it answers `cast-done` with each bucket's sum32x2.
 */
export const cast = z.object({
  ...base,
  type: z.literal('cast'),
  id,
  role: z.enum(['send', 'receive']),
  uniqueId: z.string().min(1).max(1024),
  commRank: z.number().int().nonnegative().max(4095),
  nranks: z.number().int().min(1).max(4096),
  initTimeoutMs: z.number().int().positive(),
  timeoutMs: z.number().int().positive(),
});
export const bucketChecksum = z
  .string()
  .regex(/^[0-9]+:[0-9a-f]{16}$/, { message: 'must be a sum32x2 checksum' });
export const castDone = z.object({
  ...base,
  type: z.literal('cast-done'),
  id,
  bytes: z.number().int().nonnegative(),
  checksums: z.array(bucketChecksum).max(1_000_000),
  stats: z.record(z.string().max(64), z.number().nonnegative()).optional(),
});
/** Stop a running cast: the engine aborts its communicator; the cast answers with an error. */
export const abortCast = z.object({ ...base, type: z.literal('abort-cast'), id });
export const ack = z.object({ ...base, type: z.literal('ack'), id });
export const errorMessage = z.object({
  ...base,
  type: z.literal('error'),
  id: id.optional(),
  code: z.string().min(1).max(128),
  message: z.string().max(65536),
});
export const ping = z.object({ ...base, type: z.literal('ping'), id });
export const pong = z.object({ ...base, type: z.literal('pong'), id });

/** What an engine may send to the agent. */
export const engineMessage = z.discriminatedUnion('type', [
  hello,
  filled,
  drained,
  loaded,
  castDone,
  ack,
  errorMessage,
  ping,
  pong,
]);
export type EngineMessage = z.infer<typeof engineMessage>;

/** What the agent may send to an engine. */
export const agentMessage = z.discriminatedUnion('type', [
  welcome,
  fill,
  drain,
  load,
  complete,
  cast,
  abortCast,
  errorMessage,
  ping,
  pong,
]);
export type AgentMessage = z.infer<typeof agentMessage>;

export type Welcome = z.infer<typeof welcome>;
export type CastDone = z.infer<typeof castDone>;
export type BridgeError = z.infer<typeof errorMessage>;
