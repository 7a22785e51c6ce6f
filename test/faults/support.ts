// Shared pieces of the fault-injection suite: the seeded randomness, the tally every test adds to
// (printed as a table and written as JSON at the end), the process monitor that tells our kills
// from crashes, the invariant checks on every observer round, and the API server restart.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WeightTransfer } from '../../src/api/v1alpha1/weighttransfer.ts';
import type { ScaleOutObserver } from '../../src/demo/observer.ts';
import type { PodRunner } from '../../src/devcluster/pod-runner.ts';
import { isListening, killGroup, spawnComponent } from '../../src/devcluster/processes.ts';
import { type KubeClient, Resources } from '../../src/shared/kube.ts';
import type { TestCluster } from '../support/cluster.ts';

export const LONG = process.env.SEEDCAST_FAULTS === 'long';
/** Deterministic by default (so `npm test` repeats itself); SEEDCAST_FAULT_SEED picks another. */
export const SEED = Number(process.env.SEEDCAST_FAULT_SEED ?? 20261129) >>> 0;
/** A transfer still active this long past its deadline counts as hung. */
export const HUNG_GRACE_MS = 60_000;

/** mulberry32: small, fast, good enough to pick fault points repeatably. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}

export type InputTarget = 'api-server' | 'zod' | 'bridge' | 'http' | 'peer';

export interface Tally {
  mode: 'short' | 'long';
  seed: number;
  startedAt: string;
  finishedAt?: string;
  faultsInjected: Record<string, number>;
  scaleOutsAttempted: number;
  scaleOutsCompleted: number;
  podsReadyChecked: number;
  readyUnverified: number;
  readyPartialWeights: number;
  transfersSeen: number;
  transfersFailed: Record<string, number>;
  transfersHungPastDeadline: number;
  portConflicts: number;
  portsExhaustedSeen: number;
  portsChecked: number;
  leakedPorts: number;
  processesTracked: number;
  leakedProcesses: number;
  crashes: number;
  cleanExits: number;
  badInputsTried: Record<InputTarget, number>;
  badInputsRejectedCleanly: Record<InputTarget, number>;
  validatorDisagreements: string[];
  recovery: Array<{ fault: string; seconds: number; what: string }>;
  notes: string[];
}

export const tally: Tally = {
  mode: LONG ? 'long' : 'short',
  seed: SEED,
  startedAt: new Date().toISOString(),
  faultsInjected: {},
  scaleOutsAttempted: 0,
  scaleOutsCompleted: 0,
  podsReadyChecked: 0,
  readyUnverified: 0,
  readyPartialWeights: 0,
  transfersSeen: 0,
  transfersFailed: {},
  transfersHungPastDeadline: 0,
  portConflicts: 0,
  portsExhaustedSeen: 0,
  portsChecked: 0,
  leakedPorts: 0,
  processesTracked: 0,
  leakedProcesses: 0,
  crashes: 0,
  cleanExits: 0,
  badInputsTried: { 'api-server': 0, zod: 0, bridge: 0, http: 0, peer: 0 },
  badInputsRejectedCleanly: { 'api-server': 0, zod: 0, bridge: 0, http: 0, peer: 0 },
  validatorDisagreements: [],
  recovery: [],
  notes: [],
};

export function countFault(kind: string): void {
  tally.faultsInjected[kind] = (tally.faultsInjected[kind] ?? 0) + 1;
  say(`fault injected: ${kind}`);
}

export function say(line: string): void {
  process.stderr.write(`[faults] ${line}\n`);
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

export function tableRows(t: Tally): Array<[string, string, string]> {
  const f = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const rec = (fault: string) => {
    const xs = t.recovery.filter((r) => r.fault === fault);
    if (xs.length === 0) return 'not run';
    return xs.map((r) => `${r.seconds.toFixed(1)} s (${r.what})`).join('; ');
  };
  return [
    ['faults injected', String(sum(t.faultsInjected)), f(t.faultsInjected)],
    [
      'scale-outs completed',
      `${t.scaleOutsCompleted} / ${t.scaleOutsAttempted}`,
      'every pod Ready after the fault',
    ],
    [
      'pods Ready with unverified or partial weights',
      String(t.readyUnverified + t.readyPartialWeights),
      `must be 0 (of ${t.podsReadyChecked} Ready pods checked; unverified ${t.readyUnverified}, digest mismatch ${t.readyPartialWeights})`,
    ],
    [
      'transfers hung past their deadline',
      String(t.transfersHungPastDeadline),
      `must be 0 (of ${t.transfersSeen}; still active ${HUNG_GRACE_MS / 1000} s after the deadline; failed: ${f(t.transfersFailed) || 'none'})`,
    ],
    [
      'port conflicts between active transfers',
      String(t.portConflicts),
      'must be 0 (invariant 2, every round)',
    ],
    [
      'leaked ports / processes',
      `${t.leakedPorts} / ${t.leakedProcesses}`,
      `must be 0 (${t.portsChecked} ports, ${t.processesTracked} processes checked)`,
    ],
    [
      'bad inputs tried / rejected cleanly',
      `${sum(t.badInputsTried)} / ${sum(t.badInputsRejectedCleanly)}`,
      Object.keys(t.badInputsTried)
        .map(
          (k) => `${k} ${t.badInputsRejectedCleanly[k as InputTarget]}/${t.badInputsTried[k as InputTarget]}`,
        )
        .join(', '),
    ],
    [
      'agent/controller crashes',
      String(t.crashes),
      `must be 0 (exits not caused by our kills; clean exits ${t.cleanExits})`,
    ],
    ['recovery after controller restart', rec('controller'), 'kill → new leader; → all replicas Ready'],
    ['recovery after API server restart', rec('api-server'), 'restart → /readyz; → controller renewing'],
  ];
}

export function renderTable(t: Tally): string {
  const rows = tableRows(t);
  const lines = ['| what | count | notes |', '| --- | --- | --- |'];
  for (const [a, b, c] of rows) lines.push(`| ${a} | ${b} | ${c} |`);
  return lines.join('\n');
}

/** Prints the table and writes the JSON (SEEDCAST_FAULTS_JSON, else bench/results for the long form). */
export function writeReport(): string {
  tally.finishedAt = new Date().toISOString();
  const file =
    process.env.SEEDCAST_FAULTS_JSON ??
    (LONG
      ? join(import.meta.dirname, '..', '..', 'bench', 'results', 'faults.json')
      : join(tmpdir(), 'seedcast-faults-short.json'));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ ...tally, table: tableRows(tally) }, null, 2)}\n`);
  process.stdout.write(
    `\nseedcast fault injection (${tally.mode}, seed ${tally.seed}, repeat with SEEDCAST_FAULT_SEED=${tally.seed})\n${renderTable(tally)}\n(JSON: ${file})\n`,
  );
  return file;
}

type Exit = 'injected' | 'stopped' | 'consequence' | 'clean' | 'crash';

/**
 * Watches every process the pod runner starts. An exit is `injected` (we killed it), `stopped`
 * (the pod runner stopped its pod), `consequence` (a sibling of a process we killed), `clean`
 * (code 0 on its own, e.g. a controller that lost its lease) or a `crash` (anything else). A pod
 * whose process went away is deleted, so its workload replaces it: the dev cluster's pod runner
 * does not restart containers, and this stands in for the kubelet doing so.
 */
export class ProcessMonitor {
  readonly #runner: PodRunner;
  readonly #kube: KubeClient;
  readonly #tracked = new Map<ChildProcess, { pod: string; container: string; pid: number }>();
  readonly killed = new Set<number>();
  readonly podsWithKill = new Set<string>();
  readonly exits: Array<{
    pod: string;
    container: string;
    kind: Exit;
    code: number | null;
    signal: string | null;
  }> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(runner: PodRunner, kube: KubeClient) {
    this.#runner = runner;
    this.#kube = kube;
  }

  start(): void {
    this.#timer = setInterval(() => this.scan(), 200);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  scan(): void {
    for (const key of this.#runner.running) {
      const [ns, name] = key.split('/') as [string, string];
      for (const { container, child } of this.#runner.processes(ns, name)) {
        if (this.#tracked.has(child) || child.pid === undefined) continue;
        this.#tracked.set(child, { pod: key, container, pid: child.pid });
        tally.processesTracked++;
        const onExit = (code: number | null, signal: string | null) => this.#onExit(child, code, signal);
        if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
        else child.once('exit', onExit);
      }
    }
  }

  processesOf(pod: string, container?: string): ChildProcess[] {
    const [ns, name] = pod.split('/') as [string, string];
    return this.#runner
      .processes(ns, name)
      .filter((p) => container === undefined || p.container === container)
      .map((p) => p.child);
  }

  /** SIGKILLs the process group of `child` (the process and anything it forked). */
  kill(pod: string, child: ChildProcess): void {
    if (child.pid === undefined) return;
    this.killed.add(child.pid);
    this.podsWithKill.add(pod);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: string | null): void {
    const info = this.#tracked.get(child)!;
    const [ns, name] = info.pod.split('/') as [string, string];
    const stillRunning = this.#runner.processes(ns, name).some((p) => p.child === child);
    let kind: Exit;
    if (this.killed.has(info.pid)) kind = 'injected';
    else if (!stillRunning) kind = 'stopped';
    else if (this.podsWithKill.has(info.pod)) kind = 'consequence';
    else if (code === 0) kind = 'clean';
    else kind = 'crash';
    this.exits.push({ pod: info.pod, container: info.container, kind, code, signal });
    if (kind === 'crash') {
      tally.crashes++;
      const dir = this.#runner.podDir(ns, name);
      let tail = '';
      try {
        tail = readFileSync(join(dir ?? '/nonexistent', `${info.container}.log`), 'utf8')
          .split('\n')
          .slice(-15)
          .join('\n');
      } catch {
        // gone with the pod
      }
      say(`CRASH: ${info.pod} ${info.container} exited code=${code} signal=${signal}\n${tail}`);
    }
    if (kind === 'clean') {
      tally.cleanExits++;
      say(`clean exit: ${info.pod} ${info.container} (code 0); replacing the pod`);
    }
    if (kind === 'clean' || kind === 'crash') {
      // The kubelet would restart the container; here the workload replaces the pod.
      setTimeout(() => void this.deletePod(ns, name).catch(() => undefined), 500);
    }
  }

  /** Deletes a pod now (grace 0), retrying through an API server outage (up to 3 min). */
  async deletePod(namespace: string, name: string): Promise<void> {
    const until = Date.now() + 180_000;
    for (;;) {
      try {
        await this.#kube.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, {
          body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 },
        });
        return;
      } catch (err) {
        if ((err as { status?: number }).status === 404 || Date.now() > until) return;
        await sleep(500);
      }
    }
  }

  /** Every process ever tracked is gone (after teardown); returns the leaked ones. */
  async leaked(timeoutMs = 20_000): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const alive = [...this.#tracked.values()].filter((p) => isAlive(p.pid)).map((p) => p.pid);
      if (alive.length === 0 || Date.now() > deadline) return alive;
      await sleep(250);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return state !== 'Z' && cmdline.includes('seedcast');
  } catch {
    return false;
  }
}

const TERMINAL = new Set(['Succeeded', 'Failed']);
export const isTerminal = (t: WeightTransfer) => TERMINAL.has(t.status?.phase ?? '');

/**
 * Invariant checks on every observer round: transfers hung past their deadline, two active
 * transfers sharing a port on one pod; collects rendezvous addresses for the leak check.
 */
export class InvariantWatch {
  readonly hung = new Set<string>();
  readonly conflicts = new Set<string>();
  readonly seen = new Map<string, WeightTransfer>();
  readonly addresses = new Set<string>();

  attach(observer: ScaleOutObserver): void {
    observer.onChange(() => this.check(observer.transfers));
  }

  check(transfers: WeightTransfer[]): void {
    const now = Date.now();
    const used = new Map<string, string>();
    for (const t of transfers) {
      const id = `${t.metadata.namespace}/${t.metadata.name}`;
      this.seen.set(id, t);
      for (const r of t.status?.rendezvous ?? []) if (r.address) this.addresses.add(r.address);
      if (isTerminal(t)) continue;
      if (now > Date.parse(t.spec.deadline) + HUNG_GRACE_MS && !this.hung.has(id)) {
        this.hung.add(id);
        say(
          `HUNG: ${id} still ${t.status?.phase ?? 'Pending'} ${HUNG_GRACE_MS / 1000} s past ${t.spec.deadline}`,
        );
      }
      if (t.spec.source.type !== 'Seed') continue;
      const pods = [t.spec.source.seed?.pod, ...t.spec.receivers.map((r) => r.pod)];
      for (const { port } of t.spec.ports ?? []) {
        for (const pod of pods) {
          const key = `${pod}:${port}`;
          const other = used.get(key);
          if (other !== undefined && other !== id) {
            const c = [other, id].sort().join(' & ');
            if (!this.conflicts.has(c)) say(`PORT CONFLICT on ${key}: ${c}`);
            this.conflicts.add(c);
          }
          used.set(key, id);
        }
      }
    }
  }

  /** Adds this scene's findings to the tally. */
  record(): void {
    tally.transfersSeen += this.seen.size;
    tally.transfersHungPastDeadline += this.hung.size;
    tally.portConflicts += this.conflicts.size;
    for (const t of this.seen.values()) {
      if (t.status?.phase === 'Failed') {
        const reason = t.status.reason ?? 'Unknown';
        tally.transfersFailed[reason] = (tally.transfersFailed[reason] ?? 0) + 1;
      }
    }
  }
}

/** Ports still listening `timeoutMs` after they should have closed. */
export async function leakedAddresses(addresses: Iterable<string>, timeoutMs = 30_000): Promise<string[]> {
  const list = [...addresses];
  tally.portsChecked += list.length;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open: string[] = [];
    for (const a of list) {
      const i = a.lastIndexOf(':');
      if (await isListening(Number(a.slice(i + 1)), a.slice(0, i))) open.push(a);
    }
    if (open.length === 0 || Date.now() > deadline) return open;
    await sleep(500);
  }
}

/**
 * Stops kube-apiserver (its whole process group), waits `downMs`, starts it again with the same
 * command line (same port, certificates, etcd: nothing is lost) and records the new pid in the
 * cluster's state, so `down` stops it. Resolves with the restart time (ms since epoch).
 */
export async function restartApiServer(cluster: TestCluster, downMs: number): Promise<number> {
  const state = cluster.state;
  const component = state?.components.find((c) => c.name === 'kube-apiserver');
  if (state === undefined || component === undefined) throw new Error('no dev-cluster state: cannot restart');
  const argv = (await readFile(`/proc/${component.pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
  await killGroup(component.pid);
  await sleep(downMs);
  component.pid = spawnComponent(component.binary, argv.slice(1), component.log);
  const file = join(state.dir, 'state.json');
  const onDisk = JSON.parse(await readFile(file, 'utf8')) as typeof state;
  for (const c of onDisk.components) if (c.name === 'kube-apiserver') c.pid = component.pid;
  await writeFile(`${file}.tmp`, `${JSON.stringify(onDisk, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  return Date.now();
}

/** Polls until the API server answers a list again. */
export async function waitForApi(kube: KubeClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await kube.list(Resources.namespaces, { limit: 1 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}
