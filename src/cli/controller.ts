// `seedcast controller`: parse config, start the manager, stop cleanly on SIGTERM/SIGINT.
import { CONTROLLER_USAGE, parseControllerConfig } from '../controller/config.ts';
import { startController } from '../controller/manager.ts';
import { errorMessage, ValidationError } from '../shared/errors.ts';
import { KubeClient } from '../shared/kube.ts';
import { createLogger } from '../shared/log.ts';

export async function run(argv: string[]): Promise<number> {
  let config: ReturnType<typeof parseControllerConfig>;
  try {
    config = parseControllerConfig(argv);
  } catch (err) {
    process.stderr.write(`seedcast controller: ${errorMessage(err)}\n\n${CONTROLLER_USAGE}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(CONTROLLER_USAGE);
    return 0;
  }
  const logger = createLogger({ name: 'seedcast-controller', level: config.logLevel });
  try {
    const client = await KubeClient.create({ kubeconfig: config.kubeconfig });
    const controller = await startController(client, config, logger);
    logger.info(
      {
        identity: config.identity,
        namespace: config.namespace ?? '<all>',
        metricsPort: controller.metricsPort,
      },
      'controller started',
    );
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void controller.stop();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    await controller.done;
    await client.close();
    return 0;
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'controller failed');
    return err instanceof ValidationError ? 2 : 1;
  }
}
