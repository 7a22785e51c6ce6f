// `seedcast <command>`: each command lives in its own module and is loaded only when used, so
// `seedcast agent` never pulls in controller code and vice versa.
import { enableCompileCache } from 'node:module';
import { pathToFileURL } from 'node:url';

export interface Command {
  summary: string;
  /** Module (relative to this file) exporting `run(argv: string[]): Promise<number>`. */
  module: string;
}

export const COMMANDS: Record<string, Command> = {
  controller: {
    summary: 'run the controller (seeds, transfers, readiness gates, InferenceDeployments)',
    module: './controller.ts',
  },
  demo: {
    summary: 'warm-start scale-out on a local dev cluster, with a live view and a summary',
    module: './demo.ts',
  },
  gen: { summary: 'generate CRDs (and other generated files) from the zod schemas', module: './gen.ts' },
  agent: {
    summary: 'the in-pod agent: engine bridge, weight transfers, status reporting',
    module: './agent.ts',
  },
  'fixture-engine': {
    summary: 'CPU fixture engine speaking the bridge protocol (tests, demo)',
    module: './fixture-engine.ts',
  },
  inject: {
    summary: 'print a pod template with the seedcast agent injected (own workloads)',
    module: './inject.ts',
  },
  'dev-cluster': {
    summary: 'local control plane built from source with fake GPU nodes (up|down|status)',
    module: './dev-cluster.ts',
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: seedcast <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'seedcast <command> --help for options',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`seedcast: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  // V8's compile cache (NODE_COMPILE_CACHE, or the OS temp dir): an agent or fixture engine starts
  // with ~0.1 s of CPU instead of ~0.3 s, which counts when a scale-out starts many pods on one
  // node. A read-only or missing directory only means no cache. SEEDCAST_COMPILE_CACHE=0 turns it off.
  if (process.env.SEEDCAST_COMPILE_CACHE !== '0') {
    try {
      enableCompileCache();
    } catch {
      // no cache
    }
  }
  // In dist/ the modules are .js; in a checkout Node runs the .ts sources directly.
  const file = import.meta.url.endsWith('.ts') ? command.module : command.module.replace(/\.ts$/, '.js');
  const mod = (await import(new URL(file, import.meta.url).href)) as {
    run: (argv: string[]) => Promise<number>;
  };
  return mod.run(rest);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
