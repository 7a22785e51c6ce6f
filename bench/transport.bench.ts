// Benchmark `transport`: seed → receiver over loopback through two real agents, as a ratio to a
// plain socket copy of the same bytes (out of one buffer of the rank's size into another) measured
// in the same run, and to a cache-resident copy for reference; plus the agents' peak resident
// memory (it must stay far below the model size: no second copy) and the CPU time every process
// spent per GB moved.
//
// What is timed: the receiver agent's data phase (its `dataSeconds`: from "receiving", after the
// rendezvous, until every bucket of the rank was received, checksum-verified and drained). With
// `--engine fixture` (default) the CPU fixture engines run as separate processes and their copies
// are inside that window: the seed engine fills each 64 MiB slot from its tensors and the
// receiver engine drains it — the full path a real host-memory engine would see. With
// `--engine null` a stub engine in this process answers fill/drain at once (the seed's slots hold
// fixed pseudo-random bytes), so the figure is the agents' own path: slot → checksum → tcp →
// checksum → slot, every bucket still verified against the seed's sum32x2.
//
// Rounds: `--rounds N` (default 3) runs the plain copy and the agent transfer back to back N times
// on the same pods; the headline ratio is the median of the per-round ratios, so a load spike
// from other work on a shared machine hits one round, not the figure.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FrameConnection } from '../src/agent/bridge/connection.ts';
import { rankFingerprint } from '../src/agent/bridge/fingerprint.ts';
import { type AgentMessage, agentMessage, type Welcome } from '../src/agent/bridge/messages.ts';
import { parseBytes } from '../src/agent/units.ts';
import { type FixtureModel, fixtureInputs, fixtureTensors } from '../src/fixture/model.ts';
import { freePort, Harness, type Pod, ROOT, waitFor } from '../test/agent/harness.ts';
import type { Benchmark, BenchOptions, Figure } from './types.ts';

const GB = 1e9;
const MiB = 2 ** 20;
const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
/** The cache-resident baseline's buffer on each side (one socket-copy chunk). */
const CACHED_REGION = 4 * MiB;

function lines(stream: NodeJS.ReadableStream, match: (line: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    createInterface({ input: stream }).on('line', (line) => {
      if (match(line)) resolve(line);
    });
  });
}

/** CPU seconds (user + system, all threads) a live process used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return 0;
  }
}

/** CPU seconds per thread (`tid` → `{ name, seconds }`) of a live process. */
function threadSeconds(pid: number | undefined): Map<string, { name: string; seconds: number }> {
  const out = new Map<string, { name: string; seconds: number }>();
  if (pid === undefined) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(tid, { name, seconds: (Number(fields[11]) + Number(fields[12])) / TICK });
      } catch {
        // the thread ended
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

/** The thread that used the most CPU between two `threadSeconds` samples of one process. */
function busiestThread(
  before: Map<string, { name: string; seconds: number }>,
  after: Map<string, { name: string; seconds: number }>,
): { name: string; seconds: number } {
  let best = { name: '-', seconds: 0 };
  for (const [tid, t] of after) {
    const seconds = t.seconds - (before.get(tid)?.seconds ?? 0);
    if (seconds > best.seconds) best = { name: t.name, seconds };
  }
  return best;
}

// Each baseline process reports its own CPU time, and its main thread's, when it exits; the copy's
// share is that less what it had used once its memory was ready.
const CPU_AT_EXIT = `data:text/javascript,process.on("exit",()=>{const u=process.cpuUsage(),t=process.threadCpuUsage();process.stderr.write("cpu "+(u.user+u.system)/1e6+" "+(t.user+t.system)/1e6+"\\n")})`;

/**
 * The baseline: `bench/socket-copy.ts`, one socket, 4 MiB writes. `region` is the memory each side
 * copies from and into: `bytes` (the same bytes out of one buffer into another, every page read
 * and written, as a transfer of weights must) or 4 MiB reused (one cache-resident buffer each
 * side: what a socket does when memory is never touched).
 */
async function socketCopy(
  bytes: number,
  region: number,
): Promise<{ gbps: number; cpu: number; busiest: number }> {
  const script = join(ROOT, 'bench', 'socket-copy.ts');
  const port = await freePort();
  const start = (args: string[]) => {
    const child = spawn(process.execPath, ['--import', CPU_AT_EXIT, script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // CPU at exit (`cpu`) minus CPU once the process's memory was ready (`cpu0`, printed first):
    // the copy, not the set-up.
    const cpu = new Promise<{ all: number; main: number }>((resolve) => {
      let ready = { all: 0, main: 0 };
      createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
        const [tag, all, main] = line.split(' ');
        if (tag === 'cpu0') ready = { all: Number(all), main: Number(main) };
        if (tag === 'cpu') resolve({ all: Number(all) - ready.all, main: Number(main) - ready.main });
      });
    });
    return { child, exited, cpu };
  };
  const sender = start(['send', String(port), String(bytes), String(region)]);
  await Promise.race([
    lines(sender.child.stdout as NodeJS.ReadableStream, (l) => l === 'listening'),
    sender.exited.then((code) => Promise.reject(new Error(`socket-copy sender exited with ${code}`))),
  ]);
  const receiver = start(['recv', String(port), String(region)]);
  const line = await Promise.race([
    lines(receiver.child.stdout as NodeJS.ReadableStream, (l) => l.startsWith('{')),
    receiver.exited.then((code) => Promise.reject(new Error(`socket-copy receiver exited with ${code}`))),
  ]);
  const result = JSON.parse(line) as { bytes: number; seconds: number };
  if (result.bytes !== bytes) throw new Error(`socket copy moved ${result.bytes} of ${bytes} bytes`);
  const [s, r] = [await sender.cpu, await receiver.cpu];
  return { gbps: result.bytes / result.seconds / GB, cpu: s.all + r.all, busiest: Math.max(s.main, r.main) };
}

/**
 * Resident memory of a live process: all of it, and the part that is its own (anonymous + file
 * pages). The rest is shared memory — for an agent with mapped host slots, the staging slots it
 * shares with its engine (tmpfs pages that exist whether or not the agent maps them).
 */
function rssBytes(pid: number | undefined): { all: number; own: number } {
  if (pid === undefined) return { all: 0, own: 0 };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number =>
      Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { all: kb('VmRSS'), own: kb('RssAnon') + kb('RssFile') };
  } catch {
    return { all: 0, own: 0 };
  }
}

/** The agent's own measure of the data phase of `transfer` (all ranks received, verified and drained). */
function dataSeconds(logFile: string, transfer: string): number | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('received and verified every rank') || !line.includes(`"${transfer}"`)) continue;
    return (JSON.parse(line) as { dataSeconds: number }).dataSeconds;
  }
  return undefined;
}

/**
 * A stub engine rank (bridge protocol v1) that copies nothing: fill and drain are answered at
 * once. A seed's slots are written once with pseudo-random bytes at registration, so every bucket
 * has a non-trivial checksum for the receiver to verify.
 */
class NullEngine {
  readonly totalBytes: number;
  readonly #connection: FrameConnection<AgentMessage>;
  #welcome: Welcome | undefined;

  constructor(socketPath: string, model: FixtureModel, seed: boolean) {
    const tensors = fixtureTensors(model, 0);
    this.totalBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
    const socket = connect(socketPath);
    this.#connection = new FrameConnection<AgentMessage>(socket, {
      schema: agentMessage,
      onMessage: (message) => this.#onMessage(message),
    });
    socket.once('connect', () => {
      this.#connection
        .request(
          {
            type: 'hello',
            rank: 0,
            ranks: 1,
            memory: 'host',
            fingerprintInputs: fixtureInputs(model, 0),
            tensors,
            fingerprint: rankFingerprint(fixtureInputs(model, 0), tensors),
            state: seed ? 'loaded' : 'empty',
          },
          30_000,
        )
        .then((reply) => {
          if (reply.type !== 'welcome') throw new Error(`agent answered ${reply.type} to hello`);
          if (seed) {
            let x = 0x9e3779b9;
            const block = Buffer.alloc(MiB);
            for (let i = 0; i < block.length; i += 4) {
              x ^= x << 13;
              x ^= x >>> 17;
              x ^= x << 5;
              block.writeInt32LE(x | 0, i);
            }
            for (const slot of reply.slots) {
              if (slot.kind !== 'host') throw new Error('the null engine needs host slots');
              const fd = openSync(slot.path, 'r+');
              for (let offset = 0; offset < slot.bytes; offset += block.length) {
                block.writeUInt32LE(offset / MiB + 1000 * slot.slot, 0);
                writeSync(fd, block, 0, Math.min(block.length, slot.bytes - offset), offset);
              }
              closeSync(fd);
            }
          }
          this.#welcome = reply;
        })
        .catch((err: Error) => process.stderr.write(`null engine: ${err.message}\n`));
    });
  }

  close(): void {
    this.#connection.close();
  }

  #onMessage(message: AgentMessage): void {
    const welcome = this.#welcome;
    switch (message.type) {
      case 'fill': {
        const start = message.bucket * (welcome?.bucketBytes ?? 0);
        const bytes = Math.min(welcome?.bucketBytes ?? 0, this.totalBytes - start);
        this.#connection.send({
          type: 'filled',
          id: message.id,
          bucket: message.bucket,
          slot: message.slot,
          bytes,
        });
        return;
      }
      case 'drain':
        this.#connection.send({ type: 'drained', id: message.id, bucket: message.bucket });
        return;
      case 'complete':
        this.#connection.send({ type: 'ack', id: message.id });
        return;
      case 'load':
        this.#connection.send({ type: 'loaded', id: message.id });
        return;
      default:
    }
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function run(options: BenchOptions): Promise<Figure[]> {
  const size = parseBytes(options.size ?? '512Mi');
  if (size === undefined) throw new Error(`--size ${options.size} is not a byte size`);
  const receiversCount = Number(options.receivers ?? '1');
  const streams = options.streams ?? '4';
  const rounds = Number(options.rounds ?? '3');
  const engineKind = options.engine ?? 'fixture';
  if (engineKind !== 'fixture' && engineKind !== 'null') throw new Error('--engine is fixture or null');
  const h = new Harness('bench');
  const nullEngines: NullEngine[] = [];
  try {
    const flags = {
      'bucket-bytes': options['bucket-bytes'] ?? '64Mi',
      'chunk-bytes': options['chunk-bytes'] ?? '4Mi',
      streams,
      'chunk-pool': '64',
      window: options.window ?? '8',
      'step-timeout-ms': '120000',
      'log-level': 'info',
    };
    const model: FixtureModel = {
      engine: 'fixture',
      engineVersion: '0.0.0',
      model: 'fixture/llama-like',
      revision: 'main',
      tensorParallel: 1,
      bytesPerRank: size,
    };
    const nullEngineOf = new Map<string, NullEngine>();
    const attachNullEngine = (p: Pod, loaded: boolean): void => {
      const engine = new NullEngine(p.socket, model, loaded);
      nullEngines.push(engine);
      nullEngineOf.set(p.name, engine);
    };
    const pod = async (name: string, state: 'loaded' | 'empty'): Promise<Pod> => {
      const p = await h.pod({
        name,
        tp: 1,
        size: String(size),
        state,
        agentFlags: flags,
        engine: engineKind === 'fixture',
      });
      if (engineKind === 'null') {
        await waitFor(() => existsSync(p.socket), 30_000, `${name}'s bridge socket`);
        attachNullEngine(p, state === 'loaded');
      }
      return p;
    };
    /**
     * A receiver's engine starts over with empty weights: an agent never receives into an engine
     * that holds verified weights (runner.ts), so every round after the first needs fresh ones.
     */
    const emptyEngine = async (p: Pod): Promise<void> => {
      if (engineKind === 'null') nullEngineOf.get(p.name)?.close();
      else if (p.engine !== undefined && p.engine.exitCode === null && p.engine.signalCode === null) {
        const exited = new Promise((resolve) => p.engine?.once('exit', resolve));
        p.engine.kill('SIGTERM');
        await exited;
      }
      await waitFor(
        async () => (await h.health(p)).engineRanks === 0 || undefined,
        30_000,
        `${p.name}'s engine to go`,
      );
      if (engineKind === 'null') attachNullEngine(p, false);
      else p.engine = h.engine(p, { name: p.name, tp: 1, size: String(size), state: 'empty' });
      await waitFor(
        async () => (await h.health(p)).engineRanks === 1 || undefined,
        300_000,
        `${p.name}'s new engine`,
      );
    };
    const seed = await pod('seed', 'loaded');
    const receivers = await Promise.all(
      Array.from({ length: receiversCount }, (_, i) => pod(`receiver-${i}`, 'empty')),
    );
    const fingerprint = await h.fingerprint(seed, 300_000);
    for (const r of receivers) await h.fingerprint(r, 300_000);
    const total =
      engineKind === 'null'
        ? (nullEngines[0] as NullEngine).totalBytes
        : (h.engineStatus(seed)?.ranks ?? []).reduce(
            (sum, r) => sum + ((r as { totalBytes?: number }).totalBytes ?? 0),
            0,
          );

    const peak = new Map<string, number>();
    const peakOwn = new Map<string, number>();
    const processesNow = () =>
      [seed, ...receivers].flatMap((p) => [
        { name: `${p.name}-agent`, pid: p.agent.pid },
        ...(p.engine === undefined ? [] : [{ name: `${p.name}-engine`, pid: p.engine.pid }]),
      ]);
    let processes = processesNow();
    const perRound: Array<{
      baseline: number;
      cached: number;
      baselineCpu: number;
      baselineBusiest: number;
      agent: number;
      cpu: Map<string, number>;
      busiest: Map<string, { name: string; seconds: number }>;
    }> = [];
    const loadBefore = loadavg()[0] as number;
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        await Promise.all(receivers.map(emptyEngine));
        processes = processesNow();
      }
      // The baselines first, with the engines idle, then the agent path, back to back.
      const cached = await socketCopy(total, CACHED_REGION);
      const baseline = await socketCopy(total, total);
      const name = `bench-${round}`;
      const cpuBefore = new Map(processes.map((p) => [p.name, cpuSeconds(p.pid)]));
      const threadsBefore = new Map(processes.map((p) => [p.name, threadSeconds(p.pid)]));
      const sampler = setInterval(() => {
        for (const p of processes) {
          const rss = rssBytes(p.pid);
          peak.set(p.name, Math.max(peak.get(p.name) ?? 0, rss.all));
          peakOwn.set(p.name, Math.max(peakOwn.get(p.name) ?? 0, rss.own));
        }
      }, 50);
      try {
        await h.transfer({ name, fingerprint, seed, receivers, ranks: 1, deadlineSeconds: 600 });
        for (const r of receivers) {
          const entry = await waitFor(
            () => {
              const e = h.receiverEntry(name, r);
              return e !== undefined && (e.phase === 'Succeeded' || e.phase === 'Failed') ? e : undefined;
            },
            600_000,
            `${r.name} to finish`,
          );
          if (entry.phase !== 'Succeeded' || !entry.verified)
            throw new Error(`transfer failed: ${JSON.stringify(entry)}`);
        }
      } finally {
        clearInterval(sampler);
      }
      const cpu = new Map(processes.map((p) => [p.name, cpuSeconds(p.pid) - (cpuBefore.get(p.name) ?? 0)]));
      const busiest = new Map(
        processes.map((p) => [
          p.name,
          busiestThread(threadsBefore.get(p.name) ?? new Map(), threadSeconds(p.pid)),
        ]),
      );
      const perReceiver = await Promise.all(
        receivers.map((r) =>
          waitFor(
            () => dataSeconds(join(h.dir, `${r.name}-agent.log`), name),
            30_000,
            `${r.name} to log its result`,
          ),
        ),
      );
      const agent = total / Math.max(...perReceiver) / GB;
      perRound.push({
        baseline: baseline.gbps,
        cached: cached.gbps,
        baselineCpu: baseline.cpu,
        baselineBusiest: baseline.busiest,
        agent,
        cpu,
        busiest,
      });
      process.stderr.write(
        `  round ${round + 1}/${rounds}: plain copy ${baseline.gbps.toFixed(3)} GB/s (cache-resident ${cached.gbps.toFixed(3)}), agent ${agent.toFixed(3)} GB/s, ratio ${(agent / baseline.gbps).toFixed(3)} (${(agent / cached.gbps).toFixed(3)})\n`,
      );
    }
    if (engineKind === 'fixture') {
      // Receivers publish their digest just after acknowledging the last transfer.
      await waitFor(
        () => receivers.every((p) => h.engineStatus(p)?.ranks[0]?.digest !== undefined) || undefined,
        60_000,
        'receiver digests',
      );
      const digests = new Set([seed, ...receivers].map((p) => h.engineStatus(p)?.ranks[0]?.digest));
      if (digests.size !== 1) throw new Error('a receiver digest differs from the seed');
    }

    const ratios = perRound.map((r) => r.agent / r.baseline);
    const ratio = median(ratios);
    const baseline = median(perRound.map((r) => r.baseline));
    const throughput = median(perRound.map((r) => r.agent));
    const gib = (total / 2 ** 30).toFixed(2);
    const list = (values: number[]): string => values.map((v) => v.toFixed(3)).join(', ');
    const what =
      engineKind === 'fixture'
        ? 'fixture engine fill → slot → tcp → verify → slot → fixture engine drain'
        : 'null engine (no fill/drain copies): slot → tcp → verify → slot';
    const cachedRatios = perRound.map((r) => r.agent / r.cached);
    const figures: Figure[] = [
      {
        name: 'plain socket copy (1 stream)',
        value: baseline,
        unit: 'GB/s',
        notes: `${gib} GiB out of one ${gib} GiB buffer into another; median of ${rounds} rounds: ${list(perRound.map((r) => r.baseline))}`,
      },
      {
        name: 'plain socket copy, cache-resident (1 stream, one 4 MiB buffer each side)',
        value: median(perRound.map((r) => r.cached)),
        unit: 'GB/s',
        notes: `the same ${gib} GiB re-sent from one 4 MiB buffer into another (memory never touched: a ceiling no transfer of distinct weights reaches); median of ${rounds} rounds: ${list(perRound.map((r) => r.cached))}`,
      },
      {
        name: `agent seed→${receiversCount} receiver(s), ${engineKind} engine`,
        value: throughput,
        unit: 'GB/s',
        baseline: { name: 'plain socket copy, same round', value: throughput / ratio, unit: 'GB/s' },
        ratio,
        target: 0.8,
        notes: `${what}; ${gib} GiB per receiver, ${streams} streams; throughput per receiver; ratio = median of per-round ratios ${list(ratios)} (agent GB/s per round: ${list(perRound.map((r) => r.agent))})`,
      },
      {
        name: `agent seed→${receiversCount} receiver(s), ${engineKind} engine, vs the cache-resident copy`,
        value: throughput,
        unit: 'GB/s',
        baseline: {
          name: 'plain socket copy, cache-resident, same round',
          value: throughput / median(cachedRatios),
          unit: 'GB/s',
        },
        ratio: median(cachedRatios),
        notes: `for reference: per-round ratios ${list(cachedRatios)}`,
      },
    ];
    const gbMoved = (total * receiversCount) / GB;
    const baselineCpu = median(perRound.map((r) => r.baselineCpu)) / (total / GB);
    figures.push({
      name: 'CPU per GB, plain socket copy (sender + receiver)',
      value: baselineCpu,
      unit: 's/GB',
      notes: 'CPU seconds of both processes per GB copied, set-up (start-up, filling its memory) left out',
    });
    let agentCpu = 0;
    for (const p of processes) {
      const perGb = median(perRound.map((r) => r.cpu.get(p.name) ?? 0)) / gbMoved;
      if (p.name.endsWith('agent')) agentCpu += perGb;
      figures.push({
        name: `CPU per GB, ${p.name}`,
        value: perGb,
        unit: 's/GB',
        notes: /receiver-\d+-engine/.test(p.name)
          ? 'CPU seconds (all threads) from creating the transfer to Succeeded, per GB; includes the fixture engine sha256 digest of the whole rank at complete'
          : 'CPU seconds (all threads, user + system) from creating the transfer to Succeeded, per GB delivered to receivers',
      });
    }
    figures.push({
      name: 'CPU per GB, agents (seed + receivers)',
      value: agentCpu,
      unit: 's/GB',
      baseline: { name: 'plain socket copy', value: baselineCpu, unit: 's/GB' },
      ratio: baselineCpu / agentCpu,
      notes:
        'ratio = plain copy CPU / agents CPU per GB (1 = the agents cost no more CPU than the plain copy)',
    });
    // On a machine with a free core per thread, the agents' throughput is bounded by their busiest
    // thread's CPU per byte (a bound, not a measurement: it ignores waits between processes and
    // the engines' copies).
    const baselineBusiest = median(perRound.map((r) => r.baselineBusiest)) / (total / GB);
    let worst = { name: '-', perGb: 0 };
    for (const p of processes) {
      const perGb = median(perRound.map((r) => r.busiest.get(p.name)?.seconds ?? 0)) / gbMoved;
      const thread = perRound[perRound.length - 1]?.busiest.get(p.name)?.name ?? '-';
      // Agents only: the fixture receiver engine's figures include its sha256 digest of the whole
      // rank at `complete`, a test artefact outside the data phase.
      if (p.name.endsWith('agent') && perGb > worst.perGb) worst = { name: `${p.name} ${thread}`, perGb };
      figures.push({ name: `busiest thread CPU per GB, ${p.name} (${thread})`, value: perGb, unit: 's/GB' });
    }
    figures.push({
      name: 'thread-bound throughput estimate (1 / busiest thread CPU per GB)',
      value: 1 / worst.perGb,
      unit: 'GB/s',
      baseline: { name: 'plain socket copy, same bound', value: 1 / baselineBusiest, unit: 'GB/s' },
      ratio: baselineBusiest / worst.perGb,
      notes: `what a host with a free core per busy thread could reach, from CPU time not wall time: busiest ${worst.name} (${worst.perGb.toFixed(3)} s/GB) vs the plain copy's busiest thread (${baselineBusiest.toFixed(3)} s/GB); not a throughput measurement`,
    });
    figures.push({
      name: 'machine load average (1 min) at the start / end of the rounds',
      value: loadavg()[0] as number,
      unit: 'load',
      notes: `${loadBefore.toFixed(2)} → ${(loadavg()[0] as number).toFixed(2)} on ${cpus().length} CPUs (others' work on a shared machine shows here)`,
    });
    for (const [name, bytes] of peak) {
      const own = peakOwn.get(name) ?? 0;
      figures.push({
        name: `peak RSS ${name}`,
        value: bytes / MiB,
        unit: 'MiB',
        notes: `${(own / MiB).toFixed(0)} MiB its own (anon + file), ${((bytes - own) / MiB).toFixed(0)} MiB shared (staging slots mapped from tmpfs)${
          name.endsWith('agent')
            ? `; its own memory is ${((100 * own) / total).toFixed(1)}% of the rank's ${(total / MiB).toFixed(0)} MiB`
            : '; holds the model'
        }`,
      });
    }
    return figures;
  } finally {
    for (const engine of nullEngines) engine.close();
    await h.close();
  }
}

export const benchmark: Benchmark = {
  name: 'transport',
  description:
    'seed → receiver tcp throughput through real agents vs a plain socket copy (--size 512Mi, --receivers 1, --streams 4, --rounds 3, --engine fixture|null)',
  run,
};
