// Port choice for the embedded system: a port that worked before (state.json) or the design's
// fixed port when it is free, else 0 (the OS picks; the daemon announces the real one).
import net from 'node:net';

/** True when host:port can be bound right now (a hint: another process may take it meanwhile). */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first candidate (non-zero) that is free, else 0. */
export async function choosePort(host: string, candidates: ReadonlyArray<number | undefined>): Promise<number> {
  for (const port of candidates) {
    if (port === undefined || port === 0) continue;
    if (await isPortFree(host, port)) return port;
  }
  return 0;
}

/** "host:port" → port (NaN when malformed). */
export function portOf(address: string): number {
  const m = /:(\d+)$/.exec(address);
  return m ? Number(m[1]) : NaN;
}
