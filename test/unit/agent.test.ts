import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { bucketCount, bucketSegments } from '../../src/agent/bridge/buckets.ts';
import { canonicalJson, podFingerprint, rankFingerprint } from '../../src/agent/bridge/fingerprint.ts';
import { encodeFrame, FrameDecoder } from '../../src/agent/bridge/frames.ts';
import { MAX_FRAME_BYTES } from '../../src/agent/bridge/messages.ts';
import { BucketChecksum, ChecksumArena, sum32x2 } from '../../src/agent/checksum.ts';
import { loadConfig } from '../../src/agent/config.ts';
import { parseBytes } from '../../src/agent/units.ts';

describe('sum32x2', () => {
  it('follows the spec on small inputs', () => {
    assert.equal(sum32x2(new Uint8Array([])), '0:0000000000000000');
    // one word 0x04030201: A = w, C = 1·w
    assert.equal(sum32x2(new Uint8Array([1, 2, 3, 4])), '4:0403020104030201');
    // tail zero-padded: [1,2,3,4] [5] → w1 = 5; A = 0x04030206, C = w0 + 2·5
    assert.equal(sum32x2(new Uint8Array([1, 2, 3, 4, 5])), '5:040302060403020b');
  });

  it('catches a flipped byte and swapped words', () => {
    const bytes = randomBytes(4096);
    const base = sum32x2(bytes);
    const flipped = Buffer.from(bytes);
    flipped[1000] = (flipped[1000] as number) ^ 1;
    assert.notEqual(sum32x2(flipped), base);
    const swapped = Buffer.from(bytes);
    swapped.copy(swapped, 0, 4, 8);
    bytes.copy(swapped, 4, 0, 4);
    if (!bytes.subarray(0, 4).equals(bytes.subarray(4, 8))) assert.notEqual(sum32x2(swapped), base);
  });

  it('SIMD partials combined out of order equal the reference', () => {
    const arena = ChecksumArena.create(1 << 20);
    const length = 300_001;
    const data = randomBytes(length);
    const chunk = 65_536;
    const checksum = new BucketChecksum(length);
    const offsets = [];
    for (let o = 0; o < length; o += chunk) offsets.push(o);
    const buffer = arena.alloc(chunk);
    for (const offset of offsets.reverse()) {
      const n = Math.min(chunk, length - offset);
      data.copy(buffer, 0, offset, offset + n);
      checksum.add(offset, n, arena.partial(buffer.subarray(0, n)));
    }
    assert.ok(checksum.complete);
    assert.equal(checksum.toString(), sum32x2(data));
  });
});

describe('bridge framing', () => {
  it('decodes frames split anywhere and reports bad ones', () => {
    const frames = Buffer.concat([
      encodeFrame({ a: 1 }),
      encodeFrame({ b: 'x' }),
      Buffer.from([0, 0, 0, 2]),
      Buffer.from('[]'),
    ]);
    const decoder = new FrameDecoder();
    const out = [];
    for (let i = 0; i < frames.length; i += 3) out.push(...decoder.push(frames.subarray(i, i + 3)));
    assert.deepEqual(out, [
      { kind: 'json', value: { a: 1 } },
      { kind: 'json', value: { b: 'x' } },
      { kind: 'malformed', reason: 'frame is not a JSON object' },
    ]);
    const tooLong = Buffer.alloc(4);
    tooLong.writeUInt32BE(MAX_FRAME_BYTES + 1);
    assert.equal(new FrameDecoder().push(tooLong)[0]?.kind, 'fatal');
    const atLimit = Buffer.alloc(4);
    atLimit.writeUInt32BE(MAX_FRAME_BYTES);
    assert.deepEqual(new FrameDecoder().push(atLimit), []); // waits for the body
  });
});

describe('fingerprints and buckets', () => {
  it('canonical JSON sorts keys and drops whitespace', () => {
    assert.equal(
      canonicalJson({ b: [1, { d: 'é', c: null }], a: 'x"' }),
      '{"a":"x\\"","b":[1,{"c":null,"d":"é"}]}',
    );
  });

  it('fingerprints depend on the table order', () => {
    const inputs = {
      engine: 'e',
      engineVersion: '1',
      model: 'm',
      revision: 'r',
      tensorParallel: 1,
      pipelineParallel: 1,
      rank: 0,
      dtype: 'bfloat16',
      quantization: 'none',
    };
    const a = { name: 'a', dtype: 'bfloat16', shape: [2], bytes: 4 };
    const b = { name: 'b', dtype: 'bfloat16', shape: [2], bytes: 4 };
    const ab = rankFingerprint(inputs, [a, b]);
    assert.match(ab, /^[0-9a-f]{64}$/);
    assert.notEqual(ab, rankFingerprint(inputs, [b, a]));
    assert.notEqual(podFingerprint([ab, ab]), podFingerprint([ab]));
  });

  it('cuts tensors into buckets, spanning boundaries', () => {
    assert.equal(bucketCount(10, 4), 3);
    assert.deepEqual(bucketSegments([3, 5, 2], 4, 1), [
      { tensor: 1, tensorOffset: 1, slotOffset: 0, bytes: 4 },
    ]);
    assert.deepEqual(bucketSegments([3, 5, 2], 4, 2), [
      { tensor: 2, tensorOffset: 0, slotOffset: 0, bytes: 2 },
    ]);
  });
});

describe('agent config', () => {
  const env = {
    SEEDCAST_POD_NAME: 'p',
    SEEDCAST_POD_NAMESPACE: 'ns',
    SEEDCAST_POD_UID: 'u',
    SEEDCAST_POD_IP: '10.0.0.1',
  };

  it('applies defaults and freezes', () => {
    const config = loadConfig({}, env);
    assert.equal(config.bucketBytes, 64 * 2 ** 20);
    assert.equal(config.streams, 4);
    assert.ok(Object.isFrozen(config));
    assert.equal(loadConfig({ 'bucket-bytes': '1Mi' }, env).bucketBytes, 2 ** 20);
  });

  it('names the variable that is wrong', () => {
    assert.throws(
      () => loadConfig({}, { ...env, SEEDCAST_POD_IP: '', SEEDCAST_TCP_STREAMS: 'many' }),
      (err: Error) => {
        assert.match(err.message, /SEEDCAST_POD_IP \(--pod-ip\)/);
        assert.match(err.message, /SEEDCAST_TCP_STREAMS \(--streams\)/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ 'chunk-bytes': '5Mi' }, env), /SEEDCAST_CHUNK_BYTES/);
  });

  it('parses byte sizes', () => {
    assert.equal(parseBytes('2GiB'), 2 ** 31);
    assert.equal(parseBytes('10Gi'), 10 * 2 ** 30);
    assert.equal(parseBytes('500M'), 5e8);
    assert.equal(parseBytes('lots'), undefined);
  });
});
