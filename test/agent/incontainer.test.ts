// In-container mode: `seedcast agent install --dest DIR` copies a runnable agent, and
// `seedcast agent … --exec -- <engine…>` runs the engine under the agent (real processes).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { installAgent, splitExec } from '../../src/agent/incontainer.ts';

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, '../../bin/seedcast.js');
const dir = mkdtempSync(join(tmpdir(), 'seedcast-incontainer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('in-container mode', () => {
  it('splits agent options from the engine command', () => {
    assert.deepEqual(splitExec(['--pod-name', 'p', '--exec', '--', 'vllm', 'serve', '--tp=2']), {
      agentArgs: ['--pod-name', 'p'],
      engine: ['vllm', 'serve', '--tp=2'],
    });
    assert.throws(() => splitExec(['--exec']), /engine command after `--`/);
  });

  it('install copies the runtime and the app, and the launcher runs them', async () => {
    const app = join(dir, 'app-src');
    mkdirSync(join(app, 'bin'), { recursive: true });
    writeFileSync(join(app, 'package.json'), '{"type":"module"}');
    writeFileSync(
      join(app, 'bin', 'seedcast.js'),
      'console.log(["agent", process.version, ...process.argv.slice(2)].join(" "));',
    );
    const launcher = await installAgent(join(dir, 'installed'), { appRoot: app });
    const { stdout } = await run(launcher, ['agent', '--help']);
    assert.equal(stdout.trim(), `agent ${process.version} agent --help`);
  });

  it('install refuses a directory without seedcast', async () => {
    await assert.rejects(
      installAgent(join(dir, 'x'), { appRoot: join(dir, 'nothing') }),
      /bin\/seedcast.js missing/,
    );
  });

  it('--exec runs the engine under the agent and exits with its code', async () => {
    const pod = join(dir, 'pod');
    mkdirSync(join(pod, 'cluster'), { recursive: true });
    writeFileSync(join(pod, 'token'), 'token');
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'agent',
        '--pod-name=engine-pod',
        '--pod-uid=u1',
        '--namespace=default',
        '--pod-ip=127.0.0.1',
        `--socket=${join(pod, 'agent.sock')}`,
        '--port=0',
        '--http-host=127.0.0.1',
        `--token-file=${join(pod, 'token')}`,
        `--local-dir=${join(pod, 'cluster')}`,
        `--staging-dir=${join(pod, 'staging')}`,
        '--exec',
        '--',
        process.execPath,
        '-e',
        'setTimeout(() => process.exit(3), 300)',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 3, `agent exits with the engine's code; stderr: ${stderr.slice(-500)}`);
  });
});
