// `seedcast fixture-engine`: the CPU fixture engine (see src/fixture/engine.ts).
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { openHostMapper } from '../agent/memory/host-mapping.ts';
import { parseBytes } from '../agent/units.ts';
import { parseOrThrow } from '../api/v1alpha1/validate.ts';
import { FixtureEngine } from '../fixture/engine.ts';
import { createLogger } from '../shared/log.ts';

const HELP = `usage: seedcast fixture-engine [options]

  --socket PATH          agent bridge socket (env SEEDCAST_SOCKET, default /run/seedcast/agent.sock)
  --model NAME           model name (default fixture/llama-like)
  --revision REV         model revision (default main)
  --engine-version V     engine version in the fingerprint (default 1)
  --tp N                 tensor-parallel ranks, one bridge connection each (default 1)
  --size BYTES           approximate bytes per rank, e.g. 8MiB, 2GiB (default 16MiB)
  --state empty|loaded   start with dummy weights (receiver) or real ones (seed) (default empty)
  --status-file PATH     JSON status (state and digest per rank), rewritten on every change
  --digest on|off        sha256 of each rank after a load or receive (default on; a test aid that
                         costs ~0.7 s of CPU per GB)
  --load-delay-ms N      simulated cold-load time (default 0)
  --log-level LEVEL      pino level (default info)
`;

const options = z.object({
  socket: z.string().min(1),
  model: z.string().min(1),
  revision: z.string().min(1),
  engineVersion: z.string().min(1),
  tp: z.coerce.number().int().min(1).max(64),
  size: z.string().transform((text, ctx) => {
    const bytes = parseBytes(text);
    if (bytes === undefined || bytes < 1024) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a byte size of at least 1KiB` });
      return z.NEVER;
    }
    return bytes;
  }),
  state: z.enum(['empty', 'loaded']),
  statusFile: z.string().min(1).optional(),
  loadDelayMs: z.coerce.number().int().nonnegative(),
  logLevel: z.string(),
  hostMapping: z.enum(['auto', 'on', 'off']),
  digest: z.enum(['on', 'off']),
});

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      model: { type: 'string' },
      revision: { type: 'string' },
      'engine-version': { type: 'string' },
      tp: { type: 'string' },
      size: { type: 'string' },
      state: { type: 'string' },
      'status-file': { type: 'string' },
      'load-delay-ms': { type: 'string' },
      'log-level': { type: 'string' },
      digest: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = parseOrThrow(
    options,
    {
      socket: values.socket ?? process.env.SEEDCAST_SOCKET ?? '/run/seedcast/agent.sock',
      model: values.model ?? 'fixture/llama-like',
      revision: values.revision ?? 'main',
      engineVersion: values['engine-version'] ?? '1',
      tp: values.tp ?? '1',
      size: values.size ?? '16MiB',
      state: values.state ?? 'empty',
      statusFile: values['status-file'],
      loadDelayMs: values['load-delay-ms'] ?? '0',
      logLevel: values['log-level'] ?? process.env.SEEDCAST_LOG_LEVEL ?? 'info',
      hostMapping: process.env.SEEDCAST_HOST_MAPPING || 'auto',
      digest: values.digest ?? 'on',
    },
    'fixture-engine options',
  );
  const log = createLogger({ name: 'fixture-engine', level: config.logLevel });
  // Like a real host-memory engine, map the agent's slot files (copies without syscalls) when the
  // addon is there; positional I/O otherwise.
  const mapper = await openHostMapper({ hostMapping: config.hostMapping }, log);
  const engine = new FixtureEngine({
    socketPath: config.socket,
    model: {
      engine: 'fixture',
      engineVersion: config.engineVersion,
      model: config.model,
      revision: config.revision,
      tensorParallel: config.tp,
      bytesPerRank: config.size,
    },
    state: config.state,
    ...(config.statusFile === undefined ? {} : { statusFile: config.statusFile }),
    loadDelayMs: config.loadDelayMs,
    ...(mapper === undefined ? {} : { mapper }),
    digest: config.digest === 'on',
    log,
  });
  engine.start();
  log.info(
    { ranks: config.tp, state: config.state, fingerprints: engine.ranks.map((r) => r.fingerprint) },
    'fixture engine started',
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  engine.stop();
  return 0;
}
