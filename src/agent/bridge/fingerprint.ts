// Fingerprints (docs/bridge-protocol.md): a rank fingerprint over the fingerprint inputs and the
// ordered tensor table, and the pod fingerprint over all rank fingerprints in rank order.
import { createHash } from 'node:crypto';
import type { FingerprintInputs, TensorEntry } from './messages.ts';

/** JSON with object keys sorted (UTF-16 code unit order), no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export function rankFingerprint(inputs: FingerprintInputs, tensors: readonly TensorEntry[]): string {
  return sha256(
    canonicalJson({
      engine: inputs.engine,
      engineVersion: inputs.engineVersion,
      model: inputs.model,
      revision: inputs.revision,
      tensorParallel: inputs.tensorParallel,
      pipelineParallel: inputs.pipelineParallel,
      rank: inputs.rank,
      dtype: inputs.dtype,
      quantization: inputs.quantization,
      tensors: tensors.map((t) => [t.name, t.dtype, t.shape, t.bytes]),
    }),
  );
}

export function podFingerprint(rankFingerprints: readonly string[]): string {
  return sha256(rankFingerprints.join(','));
}
