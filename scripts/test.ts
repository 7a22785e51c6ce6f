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
/**
 * `minutes`: the suite's time limit. A test that leaves a watch, a server or a child process
 * behind keeps its file's process alive after the last test; the limit turns that into a failure
 * instead of a run that hangs until CI's limit. (Not `--test-force-exit`: it exits each file's
 * process before its last results are flushed, and tests vanished from the report — seen as 170
 * of 175 unit tests reported, with no failure.)
 */
const SUITES: Array<{ name: string; dirs: string[]; minutes: number }> = [
  { name: 'unit', dirs: ['src', 'test/unit'], minutes: 10 },
  { name: 'agent', dirs: ['test/agent'], minutes: 10 },
  { name: 'integration', dirs: ['test/integration'], minutes: 30 },
  { name: 'e2e', dirs: ['test/e2e'], minutes: 15 },
  { name: 'faults', dirs: ['test/faults'], minutes: 20 },
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
  limitMinutes = 30,
): Promise<Counts & { code: number }> {
  return new Promise((resolve) => {
    // Its own process group, so a time-out stops the test files' processes and theirs too.
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    let output = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.stdout.write(
        `\n✖ did not finish within ${limitMinutes} min: a test hung, or left a handle (a watch, a server, a child process) open\n`,
      );
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, limitMinutes * 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output += chunk.toString();
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const counts = parse(output);
      resolve(timedOut ? { ...counts, failed: counts.failed + 1, code: 1 } : { ...counts, code: code ?? 1 });
    });
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
    ['--test', '--test-reporter=spec', '--test-concurrency=1', ...files],
    parseNode,
    suite.minutes,
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
