import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * The one root logger of a process. Everything else takes a child of it with stable keys
 * (`weightSource`, `pod`, `transfer`, `rank`, `peer`). Tokens never reach a log line.
 */
export function createLogger(options: {
  name: string;
  level?: string;
  destination?: number | string;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? process.env.SEEDCAST_LOG_LEVEL ?? 'info',
      redact: {
        paths: [
          'token',
          '*.token',
          'headers.authorization',
          '*.headers.authorization',
          'password',
          '*.password',
        ],
        censor: '[redacted]',
      },
      base: { pid: process.pid },
    },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}

/** A logger that drops everything, for unit tests of code that takes a logger. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
