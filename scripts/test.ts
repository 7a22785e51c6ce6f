// `npm test`: every test that runs without a GPU — unit, agent (real processes on loopback),
// integration and end-to-end (a real control plane built from source), and the Python engine
// shim's tests — then one closing line with the totals.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    only: { type: 'string', multiple: true },
    'skip-python': { type: 'boolean', default: false },
  },
});

/** Suites in the order they run: fast first, so a broken unit test fails the run quickly. */
const SUITES: Array<{ name: string; dirs: string[] }> = [
  { name: 'unit', dirs: ['src', 'test/unit'] },
  { name: 'agent', dirs: ['test/agent'] },
  { name: 'integration', dirs: ['test/integration'] },
  { name: 'e2e', dirs: ['test/e2e'] },
  { name: 'faults', dirs: ['test/faults'] },
];

function testFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

function run(
  command: string,
  args: string[],
  parse: (output: string) => Counts,
): Promise<Counts & { code: number }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output += chunk.toString();
    });
    child.on('close', (code) => resolve({ ...parse(output), code: code ?? 1 }));
  });
}

const count = (output: string, pattern: RegExp) => {
  let total = 0;
  for (const match of output.matchAll(pattern)) total += Number(match[1]);
  return total;
};

const parseNode = (output: string): Counts => ({
  passed: count(output, /^ℹ pass (\d+)$/gm),
  failed: count(output, /^ℹ fail (\d+)$/gm) + count(output, /^ℹ cancelled (\d+)$/gm),
  skipped: count(output, /^ℹ skipped (\d+)$/gm),
});

const parsePytest = (output: string): Counts => {
  const summary =
    output
      .split('\n')
      .reverse()
      .find((l) => /\d+ (passed|failed|error)/.test(l)) ?? '';
  const grab = (word: string) => Number(summary.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
  return { passed: grab('passed'), failed: grab('failed') + grab('errors?'), skipped: grab('skipped') };
};

const totals: Counts = { passed: 0, failed: 0, skipped: 0 };
let exitCode = 0;
const selected = (name: string) => values.only === undefined || values.only.includes(name);

for (const suite of SUITES) {
  if (!selected(suite.name)) continue;
  const files = suite.dirs.flatMap(testFiles);
  if (files.length === 0) continue;
  process.stdout.write(`\n=== ${suite.name}: ${files.length} files ===\n`);
  const result = await run(
    process.execPath,
    // --test-force-exit: a failed test that leaves a watch or a server open must fail the run, not
    // hang it until CI's time limit.
    ['--test', '--test-reporter=spec', '--test-concurrency=1', '--test-force-exit', ...files],
    parseNode,
  );
  totals.passed += result.passed;
  totals.failed += result.failed;
  totals.skipped += result.skipped;
  if (result.code !== 0) exitCode = 1;
}

const python = join('engines', 'seedcast-engine');
if (selected('python') && !values['skip-python'] && existsSync(join(python, 'tests'))) {
  process.stdout.write('\n=== python: engines/seedcast-engine ===\n');
  const result = await run(
    'python3',
    ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join(python, 'tests')],
    parsePytest,
  );
  totals.passed += result.passed;
  totals.failed += result.failed;
  totals.skipped += result.skipped;
  // pytest exits 5 when it collected nothing; any other non-zero is a failure.
  if (result.code !== 0 && result.code !== 5) exitCode = 1;
}

if (totals.passed + totals.failed === 0) exitCode = 1;
process.stdout.write(
  `\ntotal: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`,
);
process.exitCode = exitCode;
