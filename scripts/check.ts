// `npm run check`: the fast gate (typecheck, lint, generated-files drift), run in parallel.
import { spawn } from 'node:child_process';

interface Step {
  name: string;
  command: string;
  args: string[];
}

const bin = (name: string) => `node_modules/.bin/${name}`;
const steps: Step[] = [
  { name: 'typecheck', command: bin('tsc'), args: ['-p', 'tsconfig.json', '--noEmit'] },
  { name: 'lint', command: bin('biome'), args: ['check', '--error-on-warnings', '.'] },
  { name: 'generated files', command: process.execPath, args: ['src/cli/main.ts', 'gen', '--check'] },
];

function runStep(step: Step): Promise<{ step: Step; code: number; output: string; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(step.command, step.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) =>
      resolve({ step, code: code ?? 1, output, seconds: (performance.now() - started) / 1000 }),
    );
    child.on('error', (err) => resolve({ step, code: 1, output: String(err), seconds: 0 }));
  });
}

const results = await Promise.all(steps.map(runStep));
let failed = 0;
for (const { step, code, output, seconds } of results) {
  const mark = code === 0 ? 'ok  ' : 'FAIL';
  process.stdout.write(`${mark} ${step.name} (${seconds.toFixed(1)} s)\n`);
  if (code !== 0) {
    failed++;
    process.stdout.write(`${output.trimEnd()}\n\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
