// `seedcast agent`: the in-pod agent (see docs/agent.md).
import { parseArgs } from 'node:util';
import { startAgent } from '../agent/agent.ts';
import { LocalStatusSink, LocalTransferSource } from '../agent/cluster/local.ts';
import { configHelp, loadConfig, SETTINGS } from '../agent/config.ts';
import { installAgent, runEngine, splitExec } from '../agent/incontainer.ts';
import { openGpuExtras } from '../agent/memory/cuda-setup.ts';
import { errorMessage } from '../shared/errors.ts';
import type { KubeClient } from '../shared/kube.ts';
import { createLogger } from '../shared/log.ts';

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'install') return install(argv.slice(1));
  // In-container mode: `seedcast agent [options] --exec -- <engine command…>`.
  let engineCommand: string[] | undefined;
  if (argv.includes('--exec')) {
    try {
      const split = splitExec(argv);
      argv = split.agentArgs;
      engineCommand = split.engine;
    } catch (err) {
      process.stderr.write(`seedcast agent: ${errorMessage(err)}\n`);
      return 2;
    }
  }
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const setting of Object.values(SETTINGS)) options[setting.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    process.stderr.write(`seedcast agent: ${errorMessage(err)}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(
      `usage: seedcast agent [options]   (each option also reads its environment variable)\n\n${configHelp()}\n`,
    );
    return 0;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(values as Record<string, string | undefined>);
  } catch (err) {
    process.stderr.write(`seedcast agent: ${errorMessage(err)}\n`);
    return 2;
  }
  const log = createLogger({ name: 'seedcast-agent', level: config.logLevel }).child({ pod: config.podName });
  let client: KubeClient | undefined;
  const cluster =
    config.localDir === undefined
      ? await (async () => {
          // Loaded only here: the local mode (tests, demo) never pays for the Kubernetes client.
          const { KubeClient } = await import('../shared/kube.ts');
          const { KubeStatusSink, KubeTransferSource } = await import('../agent/cluster/kube.ts');
          client = await KubeClient.create(
            config.kubeconfig === undefined ? {} : { kubeconfig: config.kubeconfig },
          );
          return {
            source: new KubeTransferSource(client, config.namespace, log.child({ component: 'watch' })),
            sink: new KubeStatusSink(client, config.namespace, config.podName),
          };
        })()
      : {
          source: new LocalTransferSource(config.localDir, config.namespace, log),
          sink: new LocalStatusSink(config.localDir, config.podName),
        };
  let gpu: Awaited<ReturnType<typeof openGpuExtras>>;
  try {
    gpu = await openGpuExtras(config, log.child({ component: 'gpu' }));
  } catch (err) {
    process.stderr.write(`seedcast agent: SEEDCAST_GPU=on but the GPU is not usable: ${errorMessage(err)}\n`);
    return 1;
  }
  const agent = await startAgent(config, {
    ...cluster,
    log,
    ...(gpu === undefined ? {} : { memory: gpu.memory, transports: gpu.transports }),
  });
  let code = 0;
  if (engineCommand !== undefined) {
    // The engine is the container's main process in spirit: its exit ends the agent too.
    const engine = runEngine(engineCommand);
    log.info({ engine: engineCommand[0], pid: engine.child.pid }, 'engine started under the agent');
    code = await engine.exited;
    log.info({ code }, 'engine exited');
  } else {
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
  }
  log.info('shutting down');
  await agent.close();
  await gpu?.close();
  await client?.close();
  return code;
}

async function install(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dest: { type: 'string' } } });
  if (values.dest === undefined) {
    process.stderr.write('usage: seedcast agent install --dest DIR\n');
    return 2;
  }
  try {
    const launcher = await installAgent(values.dest);
    process.stdout.write(`installed the seedcast agent: ${launcher}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`seedcast agent install: ${errorMessage(err)}\n`);
    return 1;
  }
}
