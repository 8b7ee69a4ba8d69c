// Listening sockets for daemons. Every daemon announces each listener with one log line
// {msg: "listening", listener, address}; `cstor up` and the tests read the real port from it,
// so tests can pass port 0 and never collide.
import type { Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Logger } from './logger.ts';
import { CstorError } from './errors.ts';

export function formatAddress(addr: AddressInfo): string {
  return addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
}

/** Starts `server` listening on host:port and resolves with the bound address. */
export function listen(server: Server | NetServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new CstorError('unavailable', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err, retryable: false }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function announceListening(logger: Logger, listener: string, addr: AddressInfo): void {
  logger.info('listening', { listener, address: formatAddress(addr) });
}

/** Closes a server, resolving once it is closed (errors ignored: it may already be closed). */
export function closeServer(server: Server | NetServer): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}
