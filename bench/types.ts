// A benchmark is a name and a function returning figures. Each `bench/*.bench.ts` file exports
// `benchmark` (or `benchmarks`); `bench/run.ts` discovers them, so adding one touches no shared file.

export interface Figure {
  /** What was measured, e.g. `agent seed→receiver throughput`. */
  name: string;
  value: number;
  unit: string;
  /** What `value` is compared with, measured in the same run. */
  baseline?: { name: string; value: number; unit: string };
  /** value / baseline.value */
  ratio?: number;
  /** The ratio (or value) we aim for. */
  target?: number;
  /** Which side of `target` is good; `higher` unless said otherwise. */
  better?: 'higher' | 'lower';
  notes?: string;
}

/** `--key value` options after the benchmark names, passed to every benchmark. */
export type BenchOptions = Readonly<Record<string, string>>;

export interface Benchmark {
  name: string;
  description: string;
  run(options: BenchOptions): Promise<Figure[]>;
}
