// Byte sizes as people write them: 268435456, 256Mi, 256MiB, 2G, 10Gi (Kubernetes quantities too).
const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Parses a byte size; undefined when the text is not one. */
export function parseBytes(text: string): number | undefined {
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKMGT]i?)?(B)?\s*$/.exec(text);
  if (match === null) return undefined;
  const unit = UNITS[match[2] ?? ''];
  if (unit === undefined) return undefined;
  return Math.round(Number(match[1]) * unit);
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${bytes} B`;
}
