// `npm run bench -- [names…] [--json FILE] [--key value …]`: runs the benchmarks found in
// bench/*.bench.ts (all when no name is given) and prints every figure; `--json` also writes
// them with their units, baselines and ratios, plus the machine and the date.
import { readdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, hostname, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Benchmark, BenchOptions, Figure } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Benchmarks from `bench/<name>.bench.ts` files. With `names`, only those files are imported, so
 * one benchmark's dependencies (a cluster client, a native addon) never break another's run.
 */
export async function discover(
  names: readonly string[] = [],
): Promise<{ found: Benchmark[]; broken: string[] }> {
  const found: Benchmark[] = [];
  const broken: string[] = [];
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => names.length === 0 || names.includes(f.slice(0, -'.bench.ts'.length)))
    .sort();
  for (const file of files) {
    try {
      const mod = (await import(pathToFileURL(join(here, file)).href)) as {
        benchmark?: Benchmark;
        benchmarks?: Benchmark[];
      };
      if (mod.benchmark !== undefined) found.push(mod.benchmark);
      found.push(...(mod.benchmarks ?? []));
    } catch (err) {
      broken.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { found, broken };
}

function parse(argv: string[]): {
  names: string[];
  json?: string;
  options: Record<string, string>;
  list: boolean;
} {
  const names: string[] = [];
  const options: Record<string, string> = {};
  let json: string | undefined;
  let list = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--list') list = true;
    else if (arg === '--json') json = argv[++i];
    else if (arg.startsWith('--')) {
      const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
      options[key] = inline ?? (argv[++i] as string);
    } else names.push(arg);
  }
  return { names, options, list, ...(json === undefined ? {} : { json }) };
}

const format = (f: Figure): string => {
  const value = `${f.value.toFixed(3)} ${f.unit}`;
  const base =
    f.baseline === undefined
      ? ''
      : `  (baseline ${f.baseline.name}: ${f.baseline.value.toFixed(3)} ${f.baseline.unit}; ratio ${f.ratio?.toFixed(3)}${f.target === undefined ? '' : `, target ${f.better === 'lower' ? '≤' : '≥'} ${f.target}`})`;
  return `  ${f.name}: ${value}${base}${f.notes === undefined ? '' : `  — ${f.notes}`}`;
};

export async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  const { found: all, broken } = await discover(args.names);
  for (const line of broken) process.stderr.write(`cannot load ${line}\n`);
  if (args.list) {
    for (const b of all) process.stdout.write(`${b.name.padEnd(16)} ${b.description}\n`);
    return 0;
  }
  const unknown = args.names.filter((n) => !all.some((b) => b.name === n));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark(s): ${unknown.join(', ')}; known: ${all.map((b) => b.name).join(', ')}\n`,
    );
    return 2;
  }
  const selected = args.names.length === 0 ? all : all.filter((b) => args.names.includes(b.name));
  const results: Array<{ name: string; seconds: number; figures: Figure[]; error?: string }> = [];
  let failed = false;
  for (const benchmark of selected) {
    process.stdout.write(`${benchmark.name}: ${benchmark.description}\n`);
    const start = performance.now();
    try {
      const figures = await benchmark.run(args.options as BenchOptions);
      for (const f of figures) process.stdout.write(`${format(f)}\n`);
      results.push({ name: benchmark.name, seconds: (performance.now() - start) / 1000, figures });
    } catch (err) {
      failed = true;
      process.stdout.write(`  FAILED: ${(err as Error).stack ?? err}\n`);
      results.push({
        name: benchmark.name,
        seconds: (performance.now() - start) / 1000,
        figures: [],
        error: String(err),
      });
    }
  }
  if (args.json !== undefined) {
    const cpuList = cpus();
    const report = {
      date: new Date().toISOString(),
      machine: {
        hostname: hostname(),
        platform: platform(),
        release: release(),
        arch: arch(),
        cpus: cpuList.length,
        cpuModel: cpuList[0]?.model ?? 'unknown',
        memoryBytes: totalmem(),
        node: process.version,
      },
      options: args.options,
      benchmarks: results,
    };
    writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`wrote ${args.json}\n`);
  }
  return failed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
