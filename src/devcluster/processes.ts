// Child processes of the dev cluster: each component runs in its own process group (detached),
// so `down` can signal the group and nothing it forked survives; its output goes to a log file.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SeedcastError } from '../shared/errors.ts';

export const LOOPBACK = '127.0.0.1';

/** A port the kernel just handed out on loopback (closed again; a small race we accept). */
export function freePort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(host));
  return [...ports];
}

/** True when something accepts TCP connections on host:port. */
export function isListening(port: number, host = LOOPBACK, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Starts `binary` as the leader of a new process group, output appended to `logFile`, and
 * returns its pid (= its process group id). The child outlives this process until `killGroup`.
 */
export function spawnComponent(
  binary: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env });
    child.on('error', () => {
      // Reported through the health check: the process is simply not there.
    });
    child.unref();
    if (child.pid === undefined) {
      throw new SeedcastError('SEEDCAST_ERR_CLUSTER', `cannot start ${binary} (see ${logFile})`, {
        retryable: false,
      });
    }
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

interface ProcInfo {
  pid: number;
  pgid: number;
  state: string;
  cmdline: string;
}

async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim();
    return { pid, state: rest[0] ?? '?', pgid: Number(rest[2]), cmdline };
  } catch {
    return undefined;
  }
}

/** Every live (non-zombie) process on the machine, from /proc. */
export async function listProcesses(): Promise<ProcInfo[]> {
  const entries = await readdir('/proc');
  const infos = await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map((e) => readProc(Number(e))));
  return infos.filter((p): p is ProcInfo => p !== undefined && p.state !== 'Z');
}

/** Live members of process group `pgid`. */
export async function groupMembers(pgid: number): Promise<ProcInfo[]> {
  return (await listProcesses()).filter((p) => p.pgid === pgid);
}

/** Is `pid` alive, not a zombie, and still running a command line containing `marker`? */
export async function isOurProcess(pid: number, marker: string): Promise<boolean> {
  const info = await readProc(pid);
  return info !== undefined && info.state !== 'Z' && info.cmdline.includes(marker);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves once no member is left. */
export async function killGroup(pgid: number, graceMs = 5000): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while ((await groupMembers(pgid)).length > 0) {
    if (Date.now() > deadline) {
      signalGroup(pgid, 'SIGKILL');
      break;
    }
    await sleep(50);
  }
  const killDeadline = Date.now() + 5000;
  while ((await groupMembers(pgid)).length > 0) {
    if (Date.now() > killDeadline) {
      throw new SeedcastError('SEEDCAST_ERR_CLUSTER', `process group ${pgid} survived SIGKILL`);
    }
    await sleep(50);
  }
}

/**
 * Polls `check` until it returns true. Fails early when `alive` says the process died, and after
 * `timeoutMs` with SEEDCAST_ERR_TIMEOUT; `describe` adds context (a log tail) to the error.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: {
    timeoutMs: number;
    intervalMs?: number;
    alive?: () => Promise<boolean>;
    describe?: () => Promise<string>;
  },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (options.alive !== undefined && !(await options.alive())) {
      const detail = (await options.describe?.()) ?? '';
      throw new SeedcastError('SEEDCAST_ERR_CLUSTER', `${what}: the process exited${detail}`, {
        retryable: false,
      });
    }
    if (Date.now() > deadline) {
      const detail = (await options.describe?.()) ?? '';
      throw new SeedcastError(
        'SEEDCAST_ERR_TIMEOUT',
        `${what}: not ready after ${options.timeoutMs} ms${detail}`,
      );
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/** The last `lines` lines of a log file, indented, for error messages. */
export async function logTail(file: string, lines = 15): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    const tail = text.trimEnd().split('\n').slice(-lines);
    return `\n--- last lines of ${file} ---\n${tail.join('\n')}`;
  } catch {
    return '';
  }
}
