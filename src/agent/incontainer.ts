// In-container mode (agent.mode: InContainer): an init container copies the agent — the Node
// runtime, the application and its production dependencies — into the pod's shared volume, and
// the engine container's command is wrapped as `<dir>/bin/seedcast agent --exec -- <engine…>`,
// so the agent runs inside the engine container and sees exactly its GPUs.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeedcastError } from '../shared/errors.ts';

const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What an installed agent needs: the code (built or source), the CLI shim, deps, the addon. */
const APP_ENTRIES = ['package.json', 'bin', 'dist', 'src', 'node_modules', 'native/build/Release'];

/**
 * Copies the running agent into `dest`: `dest/node` (this very runtime), `dest/app/…`, and
 * `dest/bin/seedcast`, a shell launcher the wrapped engine command runs.
 */
export async function installAgent(
  dest: string,
  options: { appRoot?: string; node?: string } = {},
): Promise<string> {
  const appRoot = options.appRoot ?? APP_ROOT;
  const node = options.node ?? process.execPath;
  if (!existsSync(join(appRoot, 'bin', 'seedcast.js'))) {
    throw new SeedcastError(
      'SEEDCAST_ERR_CONFIG',
      `no seedcast installation at ${appRoot} (bin/seedcast.js missing)`,
      {
        retryable: false,
      },
    );
  }
  await mkdir(join(dest, 'bin'), { recursive: true });
  await cp(node, join(dest, 'node'));
  await chmod(join(dest, 'node'), 0o755);
  for (const entry of APP_ENTRIES) {
    const from = join(appRoot, entry);
    // A checkout runs src/ (type stripping); the image ships dist/ only. Copy what exists.
    if (!existsSync(from)) continue;
    const to = join(dest, 'app', entry);
    await mkdir(dirname(to), { recursive: true });
    await cp(from, to, { recursive: true, dereference: true });
  }
  const launcher = join(dest, 'bin', 'seedcast');
  await writeFile(
    launcher,
    '#!/bin/sh\n# Installed by `seedcast agent install`: runs the copied agent with the copied runtime.\n' +
      'here=$(dirname "$0")\nexec "$here/../node" "$here/../app/bin/seedcast.js" "$@"\n',
  );
  await chmod(launcher, 0o755);
  return launcher;
}

/** Splits `[…agent options, '--', engine…]`; the engine command must not be empty. */
export function splitExec(argv: readonly string[]): { agentArgs: string[]; engine: string[] } {
  const at = argv.indexOf('--');
  const engine = at < 0 ? [] : argv.slice(at + 1);
  if (engine.length === 0) {
    throw new SeedcastError('SEEDCAST_ERR_CONFIG', '--exec needs the engine command after `--`', {
      retryable: false,
    });
  }
  return { agentArgs: argv.slice(0, at).filter((a) => a !== '--exec'), engine };
}

/**
 * Runs the engine as the agent's child with the container's stdio and environment. Resolves
 * with the engine's exit code; SIGTERM/SIGINT given to the agent are passed on to the engine.
 */
export function runEngine(command: readonly string[]): { child: ChildProcess; exited: Promise<number> } {
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: process.env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`seedcast agent: cannot start the engine ${command[0]}: ${err.message}\n`);
      resolve(127);
    });
    child.once('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      process.off('SIGINT', forward);
      resolve(code ?? (signal === null ? 1 : 128 + 15));
    });
  });
  return { child, exited };
}
