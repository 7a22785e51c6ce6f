// sum32x2, the bucket checksum of docs/bridge-protocol.md, for host memory. The GPU kernel
// (native/kernels/seedcast_kernels.cu) computes the same two sums bit for bit:
//   words w_i = little-endian uint32 (tail zero-padded), A = Σ w_i, C = Σ (i+1)·w_i, both mod 2^32,
//   formatted "<len>:<A as 8 hex><C as 8 hex>".
import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

export function formatSum32x2(length: number, a: number, c: number): string {
  return `${length}:${(a >>> 0).toString(16).padStart(8, '0')}${(c >>> 0).toString(16).padStart(8, '0')}`;
}

/** Incremental sum32x2: feed a byte stream in pieces of any size (a TCP transport's frames). */
export class Sum32x2 {
  #a = 0;
  #c = 0;
  /** Index (0-based) of the next whole word. */
  #word = 0;
  #length = 0;
  /** Bytes of a word split across update() calls. */
  #carry = new Uint8Array(4);
  #carried = 0;

  get length(): number {
    return this.#length;
  }

  update(bytes: Uint8Array): this {
    let data = bytes;
    this.#length += data.length;
    if (this.#carried > 0) {
      const take = Math.min(4 - this.#carried, data.length);
      this.#carry.set(data.subarray(0, take), this.#carried);
      this.#carried += take;
      data = data.subarray(take);
      if (this.#carried < 4) return this;
      this.#addWord(
        this.#carry[0]! | (this.#carry[1]! << 8) | (this.#carry[2]! << 16) | (this.#carry[3]! << 24),
      );
      this.#carried = 0;
    }
    const whole = data.length >>> 2;
    if (whole > 0) this.#addWords(data, whole);
    const rest = data.length & 3;
    if (rest > 0) {
      this.#carry.fill(0);
      this.#carry.set(data.subarray(data.length - rest));
      this.#carried = rest;
    }
    return this;
  }

  /** The checksum string; a partial tail word counts zero-padded. Does not change the state. */
  digest(): string {
    let a = this.#a;
    let c = this.#c;
    if (this.#carried > 0) {
      const k = this.#carry;
      let w = 0;
      for (let i = 0; i < this.#carried; i++) w |= k[i]! << (8 * i);
      a = (a + w) | 0;
      c = (c + Math.imul(this.#word + 1, w)) | 0;
    }
    return formatSum32x2(this.#length, a, c);
  }

  #addWord(w: number): void {
    this.#a = (this.#a + w) | 0;
    this.#c = (this.#c + Math.imul(this.#word + 1, w)) | 0;
    this.#word++;
  }

  #addWords(data: Uint8Array, count: number): void {
    let words: Uint32Array;
    if (LITTLE_ENDIAN && (data.byteOffset & 3) === 0) {
      words = new Uint32Array(data.buffer, data.byteOffset, count);
    } else if (LITTLE_ENDIAN) {
      // Copy to an aligned buffer (Buffer#slice would share memory, not copy).
      const aligned = new Uint8Array(count * 4);
      aligned.set(data.subarray(0, count * 4));
      words = new Uint32Array(aligned.buffer);
    } else {
      const view = new DataView(data.buffer, data.byteOffset, count * 4);
      words = new Uint32Array(count);
      for (let i = 0; i < count; i++) words[i] = view.getUint32(i * 4, true);
    }
    let a = this.#a;
    let c = this.#c;
    // Math.imul wraps like uint32 arithmetic; (base + i) may pass 2^31, ToInt32 keeps it mod 2^32.
    let index = this.#word + 1;
    const n = words.length;
    for (let i = 0; i < n; i++) {
      const w = words[i]!;
      a = (a + w) | 0;
      c = (c + Math.imul(index, w)) | 0;
      index++;
    }
    this.#a = a;
    this.#c = c;
    this.#word += n;
  }
}

/** sum32x2 of one host buffer. */
export function sum32x2(bytes: Uint8Array): string {
  return new Sum32x2().update(bytes).digest();
}
