// Independent JavaScript check of vectors.json: canonical JSON (JS default key sort +
// JSON.stringify), sha256 (node:crypto), pod fingerprints, bucket plans and sum32x2.
// Usage: node check_vectors.mjs [vectors.json]   (exit 1 and a list of failures on mismatch)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? new URL('./vectors.json', import.meta.url);
const v = JSON.parse(readFileSync(file, 'utf8'));
const canon = (x) =>
  Array.isArray(x)
    ? `[${x.map(canon).join(',')}]`
    : x !== null && typeof x === 'object'
      ? `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canon(x[k])}`).join(',')}}`
      : JSON.stringify(x);
const sha = (s) => createHash('sha256').update(s, 'utf8').digest('hex');
const fails = [];
const eq = (what, got, want) => {
  if (JSON.stringify(got) !== JSON.stringify(want)) fails.push(`${what}: got ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
};
const KEYS = ['engine', 'engineVersion', 'model', 'revision', 'tensorParallel', 'pipelineParallel', 'rank', 'dtype', 'quantization'];
for (const c of v.fingerprint) {
  const F = Object.fromEntries(KEYS.map((k) => [k, c.inputs[k]]));
  F.tensors = c.tensors.map((t) => [t.name, t.dtype, t.shape, t.bytes]);
  eq(`fingerprint ${c.name} canonical`, canon(F), c.canonical);
  eq(`fingerprint ${c.name} sha256`, sha(canon(F)), c.sha256);
}
for (const c of v.canonicalJson) {
  eq(`canonical ${c.name}`, canon(c.value), c.canonical);
  eq(`canonical ${c.name} sha256`, sha(canon(c.value)), c.sha256);
}
for (const c of v.podFingerprint) eq(`pod ${c.name}`, sha(c.ranks.join(',')), c.sha256);
for (const c of v.bucketPlan) {
  const total = c.sizes.reduce((a, b) => a + b, 0);
  const buckets = Math.ceil(total / c.bucketBytes);
  eq(`plan ${c.name} total`, total, c.totalBytes);
  eq(`plan ${c.name} buckets`, buckets, c.buckets);
  const segs = [];
  for (let k = 0; k < buckets; k++) {
    const lo = k * c.bucketBytes;
    const hi = Math.min(lo + c.bucketBytes, total);
    const out = [];
    let start = 0;
    c.sizes.forEach((s, i) => {
      const a = Math.max(lo, start);
      const b = Math.min(hi, start + s);
      if (b > a) out.push([i, a - start, a - lo, b - a]);
      start += s;
    });
    segs.push(out);
  }
  eq(`plan ${c.name} segments`, segs, c.segments);
}
for (const c of v.sum32x2) {
  const data = Buffer.from(c.hex, 'hex');
  const padded = Buffer.concat([data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
  let A = 0n;
  let C = 0n;
  for (let i = 0; i < padded.length / 4; i++) {
    const w = BigInt(padded.readUInt32LE(i * 4));
    A = (A + w) % 2n ** 32n;
    C = (C + BigInt(i + 1) * w) % 2n ** 32n;
  }
  eq(`sum32x2 ${c.name}`, `${data.length}:${A.toString(16).padStart(8, '0')}${C.toString(16).padStart(8, '0')}`, c.checksum);
}
if (fails.length) {
  console.error(fails.join('\n'));
  process.exit(1);
}
console.log(`vectors ok: ${v.fingerprint.length} fingerprints, ${v.canonicalJson.length} canonical, ${v.podFingerprint.length} pod, ${v.bucketPlan.length} plans, ${v.sum32x2.length} checksums`);
