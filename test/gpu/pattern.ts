// Deterministic test data shared by the GPU test processes: a 32-bit xorshift stream.
export function patternBytes(bytes: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(bytes / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, bytes);
}

/** Chunk k of the tcp test: the shared pattern with k written into its first 8 bytes. */
export function stampChunk(pattern: Buffer, k: number): Buffer {
  pattern.writeBigUInt64LE(BigInt(k), 0);
  return pattern;
}
