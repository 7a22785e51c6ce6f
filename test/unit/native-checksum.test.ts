// sum32x2 (docs/bridge-protocol.md): the host reference that the GPU kernel must equal bit for bit.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatSum32x2, Sum32x2, sum32x2 } from '../../src/native/checksum.ts';

/** Slow, obviously-correct reference straight from the spec. */
function reference(bytes: Uint8Array): string {
  let a = 0n;
  let c = 0n;
  for (let i = 0; i * 4 < bytes.length; i++) {
    let w = 0n;
    for (let b = 0; b < 4; b++) w |= BigInt(bytes[i * 4 + b] ?? 0) << BigInt(8 * b);
    a = (a + w) % 2n ** 32n;
    c = (c + BigInt(i + 1) * w) % 2n ** 32n;
  }
  return formatSum32x2(bytes.length, Number(a), Number(c));
}

describe('sum32x2', () => {
  it('matches known vectors', () => {
    assert.equal(sum32x2(new Uint8Array()), '0:0000000000000000');
    assert.equal(sum32x2(Uint8Array.of(1, 0, 0, 0)), '4:0000000100000001');
    // w0 = 0x04030201, w1 = 0x00000005 (zero-padded tail)
    assert.equal(sum32x2(Uint8Array.of(1, 2, 3, 4, 5)), '5:040302060403020b');
    // A = 2·(2^32-1) mod 2^32, C = 3·(2^32-1) mod 2^32
    assert.equal(sum32x2(new Uint8Array(8).fill(0xff)), '8:fffffffefffffffd');
    assert.equal(sum32x2(Buffer.from('seedcast')), reference(Buffer.from('seedcast')));
  });

  it('equals the spec reference on random data, aligned or not', () => {
    const data = randomBytes(65_543);
    for (const start of [0, 1, 2, 3, 4, 7]) {
      const view = data.subarray(start, data.length - (start % 3));
      assert.equal(sum32x2(view), reference(view), `start ${start}`);
    }
  });

  it('streams: any split of the input gives the one-shot result', () => {
    const data = randomBytes(10_007);
    const whole = sum32x2(data);
    for (let trial = 0; trial < 20; trial++) {
      const s = new Sum32x2();
      let at = 0;
      while (at < data.length) {
        const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * 37));
        s.update(data.subarray(at, at + n));
        at += n;
      }
      assert.equal(s.digest(), whole);
      assert.equal(s.length, data.length);
    }
  });

  it('catches a flipped byte and swapped words', () => {
    const data = randomBytes(4096);
    const before = sum32x2(data);
    for (const i of [0, 1, 2047, 4095]) {
      const flipped = Buffer.from(data);
      flipped[i] = flipped[i]! ^ 0x10;
      assert.notEqual(sum32x2(flipped), before);
    }
    const swapped = Buffer.from(data);
    data.copy(swapped, 0, 4, 8);
    data.copy(swapped, 4, 0, 4);
    const s = sum32x2(swapped);
    if (!data.subarray(0, 4).equals(data.subarray(4, 8))) {
      assert.equal(s.slice(0, 13), before.slice(0, 13), 'A is order-free');
      assert.notEqual(s, before, 'C sees the order');
    }
  });

  it('keeps word indices exact past 2^31 words (mod 2^32 weights)', () => {
    // Feed the state a huge word index through many empty-weight words is too slow; check the
    // arithmetic identity instead: Math.imul wraps the index like uint32.
    const big = 2 ** 32 + 5;
    assert.equal(Math.imul(big, 3) >>> 0, 15);
  });
});
