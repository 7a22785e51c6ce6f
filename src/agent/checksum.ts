// The per-bucket checksum `sum32x2` (docs/bridge-protocol.md). A JS reference that follows the
// spec word for word, and a fast path: a tiny hand-assembled WebAssembly SIMD loop over buffers
// that live in the module's memory (the transport allocates its chunk buffers there), because a
// plain JS loop runs at ~0.7 GB/s and would cap the transfer. This file stands in until the
// native addon ships `src/native/checksum.ts`.

/** Reference: little-endian uint32 words, tail zero-padded; A = Σw, C = Σ(i+1)·w, both mod 2^32. */
export function sum32x2(bytes: Uint8Array): string {
  const { a, c } = partialSlow(bytes, 0, bytes.length);
  return formatChecksum(bytes.length, a, c);
}

export function formatChecksum(length: number, a: number, c: number): string {
  return `${length}:${(a >>> 0).toString(16).padStart(8, '0')}${(c >>> 0).toString(16).padStart(8, '0')}`;
}

/** A and C of a byte range as if it started at word 0 (C = Σ(j+1)·w_j). */
export interface Partial32x2 {
  a: number;
  c: number;
}

function partialSlow(bytes: Uint8Array, start: number, end: number): Partial32x2 {
  let a = 0;
  let c = 0;
  let i = 0;
  const words = Math.floor((end - start) / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, end - start);
  for (; i < words; i++) {
    const w = view.getUint32(i * 4, true);
    a = (a + w) | 0;
    c = (c + Math.imul(i + 1, w)) | 0;
  }
  const rest = end - start - words * 4;
  if (rest > 0) {
    let w = 0;
    for (let b = 0; b < rest; b++) w |= (bytes[start + words * 4 + b] as number) << (8 * b);
    a = (a + w) | 0;
    c = (c + Math.imul(i + 1, w)) | 0;
  }
  return { a: a >>> 0, c: c >>> 0 };
}

/** Combines the partials of byte ranges of one bucket, in any order, into the bucket checksum. */
export class BucketChecksum {
  readonly length: number;
  #a = 0;
  #c = 0;
  #bytes = 0;

  constructor(length: number) {
    this.length = length;
  }

  /** `offset` is the range's byte offset in the bucket, a multiple of 4. */
  add(offset: number, length: number, partial: Partial32x2): void {
    const word = offset / 4;
    this.#a = (this.#a + partial.a) | 0;
    this.#c = (this.#c + partial.c + Math.imul(word, partial.a)) | 0;
    this.#bytes += length;
  }

  get complete(): boolean {
    return this.#bytes === this.length;
  }

  toString(): string {
    return formatChecksum(this.length, this.#a, this.#c);
  }
}

// (func $sum (param $ptr i32) (param $vectors i32)) — per 16-byte vector v: a += v; c += a
// (i32x4), then stores a at address 0 and c at 16. JS folds the four lanes into A and C.
const leb = (value: number): number[] => {
  const out: number[] = [];
  let n = value;
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
};
const section = (id: number, bytes: number[]): number[] => [id, ...leb(bytes.length), ...bytes];
const name = (s: string): number[] => [...leb(s.length), ...Buffer.from(s)];
const SIMD = 0xfd;
// biome-ignore format: hand-assembled bytes, one instruction group per line
const BODY = [
  0x02, 0x02, 0x7b, 0x01, 0x7f, // locals: 2 × v128 (a, c), 1 × i32 (end)
  0x20, 0, 0x20, 1, 0x41, 4, 0x74, 0x6a, 0x21, 4, // end = ptr + (vectors << 4)
  0x02, 0x40, 0x03, 0x40, // block, loop
  0x20, 0, 0x20, 4, 0x4f, 0x0d, 1, // if ptr >= end: break
  0x20, 2, 0x20, 0, SIMD, 0x00, 4, 0, SIMD, 0xae, 0x01, 0x22, 2, // a = a + load(ptr)
  0x20, 3, SIMD, 0xae, 0x01, 0x21, 3, // c = c + a
  0x20, 0, 0x41, 16, 0x6a, 0x21, 0, // ptr += 16
  0x0c, 0, 0x0b, 0x0b, // continue; end loop; end block
  0x41, 0, 0x20, 2, SIMD, 0x0b, 4, 0, // store a at 0
  0x41, 16, 0x20, 3, SIMD, 0x0b, 4, 0, // store c at 16
  0x0b,
];
// biome-ignore format: module sections
const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 0]),
  ...section(3, [1, 0]),
  ...section(5, [1, 0, 1]),
  ...section(7, [2, ...name('sum'), 0, 0, ...name('mem'), 2, 0]),
  ...section(10, [1, ...leb(BODY.length), ...BODY]),
]);

const PAGE = 65536;

// The project's lib settings carry no WebAssembly typings; this is the slice used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
};

/**
 * A fixed region of WebAssembly memory that hands out buffers whose checksum runs in SIMD.
 * Never grows after creation (growing would detach every buffer handed out).
 */
export class ChecksumArena {
  readonly #memory: WasmMemory;
  readonly #sum: (ptr: number, vectors: number) => void;
  readonly #lanes: Uint32Array;
  readonly #limit: number;
  #next = PAGE; // page 0 holds the lane results

  private constructor(memory: WasmMemory, sum: (ptr: number, vectors: number) => void) {
    this.#memory = memory;
    this.#sum = sum;
    this.#lanes = new Uint32Array(memory.buffer, 0, 8);
    this.#limit = memory.buffer.byteLength;
  }

  /** An arena able to hand out `bytes` (rounded up to 64 KiB per buffer). */
  static create(bytes: number): ChecksumArena {
    const module = new WebAssembly.Module(MODULE);
    const instance = new WebAssembly.Instance(module, {});
    const memory = instance.exports.mem as WasmMemory;
    memory.grow(Math.ceil(bytes / PAGE) + 1);
    return new ChecksumArena(memory, instance.exports.sum as (ptr: number, vectors: number) => void);
  }

  /** A zeroed buffer of `bytes` inside the arena, 64 KiB aligned. */
  alloc(bytes: number): Buffer {
    const size = Math.ceil(bytes / PAGE) * PAGE;
    if (this.#next + size > this.#limit)
      throw new RangeError(`checksum arena exhausted (${bytes} bytes asked)`);
    const buffer = Buffer.from(this.#memory.buffer, this.#next, bytes);
    this.#next += size;
    return buffer;
  }

  /** A and C of `bytes[0, length)`; SIMD when the buffer lies in this arena, the reference loop otherwise. */
  partial(bytes: Uint8Array, length = bytes.length): Partial32x2 {
    const inArena = bytes.buffer === this.#memory.buffer && bytes.byteOffset % 16 === 0;
    if (!inArena || length < 64) return partialSlow(bytes, 0, length);
    const vectors = Math.floor(length / 16);
    this.#sum(bytes.byteOffset, vectors);
    let a = 0;
    let c = 0;
    for (let lane = 0; lane < 4; lane++) {
      const la = this.#lanes[lane] as number;
      const lc = this.#lanes[4 + lane] as number;
      // lane l holds words 4m+l, m < vectors: Σ(4m+l+1)·w = 4·(vectors·A_l − c_l) + (l+1)·A_l
      a = (a + la) | 0;
      c = (c + Math.imul(4, (Math.imul(vectors, la) - lc) | 0) + Math.imul(lane + 1, la)) | 0;
    }
    const done = vectors * 16;
    if (done < length) {
      const tail = partialSlow(bytes, done, length);
      a = (a + tail.a) | 0;
      c = (c + tail.c + Math.imul(done / 4, tail.a)) | 0;
    }
    return { a: a >>> 0, c: c >>> 0 };
  }
}
