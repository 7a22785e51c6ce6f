// Benchmark `transport`: seed → receiver over loopback through two real agents and fixture
// engines (engine fill → staging → tcp → checksum → staging → engine drain), as a ratio to a
// plain socket copy of the same bytes measured in the same run; plus the agents' peak resident
// memory during the transfer (it must stay far below the model size: no second copy).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseBytes } from '../src/agent/units.ts';
import { freePort, Harness, ROOT, waitFor } from '../test/agent/harness.ts';
import type { Benchmark, BenchOptions, Figure } from './types.ts';

const GB = 1e9;
const MiB = 2 ** 20;

function firstLine(child: ReturnType<typeof spawn>, match: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (match(line)) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`socket-copy exited with ${code}`)));
  });
}

async function socketCopy(bytes: number): Promise<number> {
  const script = join(ROOT, 'bench', 'socket-copy.ts');
  const port = await freePort();
  const sender = spawn(process.execPath, [script, 'send', String(port), String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await firstLine(sender, (l) => l === 'listening');
  const receiver = spawn(process.execPath, [script, 'recv', String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const result = JSON.parse(await firstLine(receiver, (l) => l.startsWith('{'))) as {
    bytes: number;
    seconds: number;
  };
  if (result.bytes !== bytes) throw new Error(`socket copy moved ${result.bytes} of ${bytes} bytes`);
  return result.bytes / result.seconds / GB;
}

function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The agent's own measure of the data phase (all ranks received, verified and drained). */
function dataSeconds(logFile: string): number | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('received and verified every rank')) continue;
    return (JSON.parse(line) as { dataSeconds: number }).dataSeconds;
  }
  return undefined;
}

async function run(options: BenchOptions): Promise<Figure[]> {
  const size = parseBytes(options.size ?? '512Mi');
  if (size === undefined) throw new Error(`--size ${options.size} is not a byte size`);
  const receiversCount = Number(options.receivers ?? '1');
  const streams = options.streams ?? '4';
  const h = new Harness('bench');
  try {
    const flags = {
      'bucket-bytes': options['bucket-bytes'] ?? '64Mi',
      'chunk-bytes': '4Mi',
      streams,
      'chunk-pool': '64',
      window: options.window ?? '8',
      'step-timeout-ms': '120000',
      'log-level': 'info',
    };
    const seed = await h.pod({ name: 'seed', tp: 1, size: String(size), state: 'loaded', agentFlags: flags });
    const receivers = await Promise.all(
      Array.from({ length: receiversCount }, (_, i) =>
        h.pod({ name: `receiver-${i}`, tp: 1, size: String(size), state: 'empty', agentFlags: flags }),
      ),
    );
    const fingerprint = await h.fingerprint(seed, 300_000);
    for (const r of receivers) await h.fingerprint(r, 300_000);
    const total = (h.engineStatus(seed)?.ranks ?? []).reduce(
      (sum, r) => sum + ((r as { totalBytes?: number }).totalBytes ?? 0),
      0,
    );

    // The baseline runs first, on the same machine, with the engines idle.
    const baseline = Math.max(await socketCopy(total), await socketCopy(total));

    const peak = new Map<string, number>();
    const sample = (): void => {
      for (const pod of [seed, ...receivers]) {
        peak.set(`${pod.name}-agent`, Math.max(peak.get(`${pod.name}-agent`) ?? 0, rssBytes(pod.agent.pid)));
        peak.set(
          `${pod.name}-engine`,
          Math.max(peak.get(`${pod.name}-engine`) ?? 0, rssBytes(pod.engine?.pid)),
        );
      }
    };
    const sampler = setInterval(sample, 50);
    await h.transfer({ name: 'bench', fingerprint, seed, receivers, ranks: 1, deadlineSeconds: 600 });
    for (const r of receivers) {
      const entry = await waitFor(
        () => {
          const e = h.receiverEntry('bench', r);
          return e !== undefined && (e.phase === 'Succeeded' || e.phase === 'Failed') ? e : undefined;
        },
        600_000,
        `${r.name} to finish`,
      );
      if (entry.phase !== 'Succeeded' || !entry.verified)
        throw new Error(`transfer failed: ${JSON.stringify(entry)}`);
    }
    clearInterval(sampler);
    const perReceiver = await Promise.all(
      receivers.map((r) =>
        waitFor(() => dataSeconds(join(h.dir, `${r.name}-agent.log`)), 30_000, `${r.name} to log its result`),
      ),
    );
    const seconds = Math.max(...perReceiver);
    const throughput = total / seconds / GB;
    const digests = new Set([seed, ...receivers].map((p) => h.engineStatus(p)?.ranks[0]?.digest));
    if (digests.size !== 1) throw new Error('a receiver digest differs from the seed');
    const figures: Figure[] = [
      {
        name: 'plain socket copy (1 stream, best of 2)',
        value: baseline,
        unit: 'GB/s',
        notes: `${(total / 2 ** 30).toFixed(2)} GiB`,
      },
      {
        name: `agent seed→${receiversCount} receiver(s), engine fill→verified drain`,
        value: throughput,
        unit: 'GB/s',
        baseline: { name: 'plain socket copy', value: baseline, unit: 'GB/s' },
        ratio: throughput / baseline,
        target: 0.8,
        notes: `${(total / 2 ** 30).toFixed(2)} GiB per receiver in ${seconds.toFixed(2)} s, ${streams} streams; throughput per receiver`,
      },
    ];
    for (const [name, bytes] of peak) {
      figures.push({
        name: `peak RSS ${name}`,
        value: bytes / MiB,
        unit: 'MiB',
        notes: name.endsWith('agent')
          ? `${((100 * bytes) / total).toFixed(1)}% of the rank's ${(total / MiB).toFixed(0)} MiB`
          : 'holds the model',
      });
    }
    return figures;
  } finally {
    await h.close();
  }
}

export const benchmark: Benchmark = {
  name: 'transport',
  description:
    'seed → receiver tcp throughput through real agents vs a plain socket copy (--size 512Mi, --receivers 1, --streams 4)',
  run,
};
