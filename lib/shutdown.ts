// Graceful stop for daemons: wait for SIGTERM/SIGINT, then run the shutdown steps; a second
// signal or a deadline without finishing forces the exit, so a stuck step never hangs a stop.
import { describeError } from './errors.ts';
import type { Logger } from './logger.ts';

export function waitForSignal(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      logger.info('shutting down', { signal });
      resolve();
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/** Runs `steps`, logging "<what> stopped"; forced exit(1) on a second signal or after `deadlineMs`. */
export async function shutdown(logger: Logger, what: string, steps: () => Promise<void>, deadlineMs = 10_000): Promise<void> {
  const force = (why: string): void => {
    logger.error('forced exit', { why });
    process.exit(1);
  };
  const timer = setTimeout(() => force(`shutdown took longer than ${deadlineMs / 1000} s`), deadlineMs);
  timer.unref();
  process.once('SIGTERM', () => force('second signal'));
  process.once('SIGINT', () => force('second signal'));
  try {
    await steps();
    logger.info(`${what} stopped`);
  } catch (err) {
    logger.error('shutdown failed', { error: describeError(err) });
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
  }
}
