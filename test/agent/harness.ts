// Process-level harness: real agent and fixture-engine processes on loopback, with the
// file-backed cluster (src/agent/cluster/local.ts) standing in for the API server.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { readLocalTransfer, writeLocalTransfer } from '../../src/agent/cluster/local.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
export const NAMESPACE = 'default';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export interface Pod {
  name: string;
  uid: string;
  socket: string;
  statusFile: string;
  httpPort: number;
  agent: ChildProcess;
  engine: ChildProcess | undefined;
  /** The agent's command line (see `restartAgent`). */
  agentArgs: string[];
  /** How many times the agent was started (its log is `<name>-agent[-N].log`). */
  agentStarts: number;
}

export interface PodOptions {
  name: string;
  tp: number;
  size: string;
  state: 'empty' | 'loaded';
  revision?: string;
  /** Extra agent flags, e.g. { 'bandwidth-limit': '8Mi' }. */
  agentFlags?: Record<string, string>;
  /** Token file contents; default: the shared token. */
  token?: string;
  engine?: boolean;
}

export class Harness {
  readonly dir: string;
  readonly clusterDir: string;
  readonly token = randomBytes(32).toString('hex');
  readonly #processes: ChildProcess[] = [];

  constructor(prefix: string) {
    // Staging slots are meant for tmpfs; /dev/shm where there is one.
    this.dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `seedcast-${prefix}-`));
    this.clusterDir = join(this.dir, 'cluster');
    mkdirSync(this.clusterDir, { recursive: true });
  }

  spawn(name: string, args: string[]): ChildProcess {
    const log = createWriteStream(join(this.dir, `${name}.log`));
    const child = spawn(process.execPath, [MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SEEDCAST_LOG_LEVEL: 'debug' },
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.#processes.push(child);
    return child;
  }

  async pod(options: PodOptions): Promise<Pod> {
    const uid = randomUUID();
    const podDir = join(this.dir, options.name);
    mkdirSync(podDir, { recursive: true });
    const tokenFile = join(podDir, 'token');
    writeFileSync(tokenFile, options.token ?? this.token);
    const socket = join(podDir, 'agent.sock');
    const httpPort = await freePort();
    const flags: Record<string, string> = {
      'pod-name': options.name,
      'pod-uid': uid,
      namespace: NAMESPACE,
      'pod-ip': '127.0.0.1',
      socket,
      port: String(httpPort),
      'http-host': '127.0.0.1',
      'token-file': tokenFile,
      'local-dir': this.clusterDir,
      'staging-dir': join(podDir, 'staging'),
      'bucket-bytes': '1Mi',
      'chunk-bytes': '256Ki',
      streams: '2',
      'chunk-pool': '32',
      'step-timeout-ms': '5000',
      ...options.agentFlags,
    };
    const agentArgs = ['agent', ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])];
    const agent = this.spawn(`${options.name}-agent`, agentArgs);
    const statusFile = join(podDir, 'engine.json');
    const pod: Pod = {
      name: options.name,
      uid,
      socket,
      statusFile,
      httpPort,
      agent,
      engine: undefined,
      agentArgs,
      agentStarts: 1,
    };
    if (options.engine !== false) pod.engine = this.engine(pod, options);
    return pod;
  }

  engine(pod: Pod, options: PodOptions): ChildProcess {
    return this.spawn(`${pod.name}-engine`, [
      'fixture-engine',
      '--socket',
      pod.socket,
      '--tp',
      String(options.tp),
      '--size',
      options.size,
      '--state',
      options.state,
      '--revision',
      options.revision ?? 'main',
      '--status-file',
      pod.statusFile,
    ]);
  }

  /** Kills the pod's agent (SIGKILL, a crash) and starts it again with the same flags; the engine stays. */
  async restartAgent(pod: Pod): Promise<void> {
    const old = pod.agent;
    if (old.exitCode === null && old.signalCode === null) {
      const exited = new Promise((resolve) => old.once('exit', resolve));
      old.kill('SIGKILL');
      await exited;
    }
    pod.agentStarts++;
    pod.agent = this.spawn(`${pod.name}-agent-${pod.agentStarts}`, pod.agentArgs);
  }

  /** The current agent's log so far. */
  agentLog(pod: Pod): string {
    const suffix = pod.agentStarts === 1 ? '' : `-${pod.agentStarts}`;
    try {
      return readFileSync(join(this.dir, `${pod.name}-agent${suffix}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** The annotations the agent wrote on its own pod (the local sink's file). */
  annotations(pod: { name: string }): Record<string, string> {
    try {
      const file = JSON.parse(readFileSync(join(this.clusterDir, 'pods', `${pod.name}.json`), 'utf8'));
      return file.annotations ?? {};
    } catch {
      return {};
    }
  }

  /** The pod fingerprint the agent announced (waits for it). */
  async fingerprint(pod: Pod, timeoutMs = 20_000): Promise<string> {
    return waitFor(
      () => this.annotations(pod)['seedcast.dev/fingerprint'],
      timeoutMs,
      `${pod.name} to announce its fingerprint`,
    );
  }

  engineStatus(
    pod: Pod,
  ): { ranks: Array<{ rank: number; state: string; digest?: string; registered: boolean }> } | undefined {
    try {
      return JSON.parse(readFileSync(pod.statusFile, 'utf8'));
    } catch {
      return undefined;
    }
  }

  async transfer(options: {
    name: string;
    fingerprint: string;
    seed?: Pod;
    receivers: Pod[];
    ranks: number;
    deadlineSeconds?: number;
    receiverUids?: Record<string, string>;
  }): Promise<void> {
    const ports =
      options.seed === undefined
        ? []
        : await Promise.all(
            Array.from({ length: options.ranks }, async (_, rank) => ({ rank, port: await freePort() })),
          );
    writeLocalTransfer(this.clusterDir, {
      apiVersion: 'seedcast.dev/v1alpha1',
      kind: 'WeightTransfer',
      metadata: { name: options.name, namespace: NAMESPACE, uid: randomUUID() },
      spec: {
        weightSource: 'fixture',
        fingerprint: options.fingerprint,
        source:
          options.seed === undefined
            ? { type: 'Storage' }
            : { type: 'Seed', seed: { pod: options.seed.name, uid: options.seed.uid } },
        receivers: options.receivers.map((p) => ({
          pod: p.name,
          uid: options.receiverUids?.[p.name] ?? p.uid,
        })),
        ...(options.seed === undefined ? {} : { transport: 'tcp' }),
        ranks: options.ranks,
        ports,
        deadline: new Date(Date.now() + (options.deadlineSeconds ?? 60) * 1000)
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z'),
        attempt: 0,
      },
    });
  }

  /** Deletes a transfer, as the API server does: the object and its status go together. */
  deleteTransfer(name: string): void {
    rmSync(join(this.clusterDir, 'transfers', `${name}.json`), { force: true });
    rmSync(join(this.clusterDir, 'status', name), { recursive: true, force: true });
  }

  /** The status fragment one pod's agent wrote into `transfer` (undefined: none). */
  fragment(transfer: string, pod: { name: string }): unknown {
    try {
      return JSON.parse(
        readFileSync(join(this.clusterDir, 'status', transfer, `seedcast-agent-${pod.name}.json`), 'utf8'),
      );
    } catch {
      return undefined;
    }
  }

  /** Plays the controller: sets the transfer's `status.phase` (Failed: its agents must let go). */
  setPhase(name: string, phase: 'Failed' | 'Succeeded'): void {
    const file = join(this.clusterDir, 'transfers', `${name}.json`);
    const object = JSON.parse(readFileSync(file, 'utf8'));
    writeLocalTransfer(this.clusterDir, { ...object, status: { ...object.status, phase } });
  }

  /** The agent's /healthz answer. */
  async health(pod: Pod): Promise<{ activeTransfers: number; engineRanks: number }> {
    return (await fetch(`http://127.0.0.1:${pod.httpPort}/healthz`)).json() as Promise<{
      activeTransfers: number;
      engineRanks: number;
    }>;
  }

  /** Waits until `pod`'s entry in `transfer` is final (Succeeded or Failed) and returns it. */
  finished(transfer: string, pod: { name: string }, timeoutMs = 30_000) {
    return waitFor(
      () => {
        const e = this.receiverEntry(transfer, pod);
        return e !== undefined && (e.phase === 'Succeeded' || e.phase === 'Failed') ? e : undefined;
      },
      timeoutMs,
      `${pod.name} to finish ${transfer}`,
    );
  }

  /** Waits until every rank of `pod`'s engine is loaded (it publishes the digest with that) and returns the digests. */
  loadedDigests(pod: Pod, timeoutMs = 10_000): Promise<Array<string | undefined>> {
    return waitFor(
      () => {
        const s = this.engineStatus(pod);
        return s?.ranks.every((rank) => rank.state === 'loaded')
          ? s.ranks.map((rank) => rank.digest)
          : undefined;
      },
      timeoutMs,
      `${pod.name} engine loaded`,
    );
  }

  // biome-ignore lint/suspicious/noExplicitAny: test helper over raw JSON
  status(name: string): any {
    return (readLocalTransfer(this.clusterDir, name) as { status?: unknown } | undefined)?.status;
  }

  receiverEntry(
    transfer: string,
    pod: { name: string },
  ):
    | {
        phase: string;
        verified: boolean;
        reason?: string;
        message?: string;
        bytesDone: number;
        bytesTotal: number;
      }
    | undefined {
    // biome-ignore lint/suspicious/noExplicitAny: raw JSON
    return this.status(transfer)?.receivers?.find((r: any) => r.pod === pod.name);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#processes.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
    if (process.env.SEEDCAST_KEEP_TEST_DIRS === undefined) rmSync(this.dir, { recursive: true, force: true });
  }
}
