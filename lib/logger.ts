// The winston logger factory. Entry points build one root logger; components take child loggers
// carrying their context ({component, volume, replica, key}).
import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level?: string;
  /** json: one JSON object a line (default; tests and `cstor up` parse it); text: for a terminal. */
  format?: 'json' | 'text';
  component: string;
  /** Where lines go; stdout by default. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const format =
    options.format === 'text'
      ? winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf((info) => {
            const { level, message, timestamp, component, ...rest } = info;
            const ctx = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${level} [${String(component)}] ${String(message)}${ctx}`;
          }),
        )
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level: options.level ?? 'info',
    format,
    defaultMeta: { component: options.component },
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stdout })],
  });
}

/** A logger that drops everything: for unit tests. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
