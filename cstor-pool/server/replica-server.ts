// The replica protocol server: accepts target connections on one port for every volume of the
// pool. Each connection binds to one volume with OPEN; connections to the same volume share one
// Replica handle and one IoOrdering. Besides its TCP port (the wire contract), the server can also
// listen on a UNIX domain socket for targets on the same host (same frames; `unix:PATH` addresses).
import fs from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { CstorError, toCstorError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { unixAddressPrefix } from '../../lib/replica-protocol/address.ts';
import { listen } from '../../lib/listen.ts';
import type { Pool } from '../store/types.ts';
import { ReplicaConnection } from './connection.ts';
import { noMetrics, type PoolMetrics } from './metrics.ts';
import { PayloadPool } from './payload-pool.ts';
import { VolumeHandle } from './volume-handle.ts';

export interface ReplicaServerOptions {
  pool: Pool;
  logger: Logger;
  metrics?: PoolMetrics;
  /** Requests in flight per connection before it stops reading (default 1024). */
  maxInFlight?: number;
  /** Request payload bytes in flight per connection before it stops reading (default 256 MiB). */
  maxInFlightBytes?: number;
  /** Queued reply bytes per connection before it stops reading (default 64 MiB). */
  maxQueuedReplyBytes?: number;
  /** false: connections read with 'data' events (the fallback path), for tests. Default true. */
  directReads?: boolean;
}

export class ReplicaServer {
  private readonly server: net.Server;
  private unixServer: { server: net.Server; path: string } | null = null;
  private readonly connections = new Set<ReplicaConnection>();
  private readonly handles = new Map<string, Promise<VolumeHandle>>();
  private readonly log: Logger;
  private readonly metrics: PoolMetrics;
  private readonly payloads = new PayloadPool();

  constructor(private readonly options: ReplicaServerOptions) {
    this.log = options.logger.child({ component: 'replica-server' });
    this.metrics = options.metrics ?? noMetrics;
    // pauseOnConnect: a connection reads nothing until ReplicaConnection has moved it onto its own
    // read buffers (see adoptWithReadBuffers).
    this.server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.error('replica server error', { error: err.message }));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listen(this.server, host, port);
  }

  /**
   * Also listens on a UNIX domain socket at `socketPath` (a stale socket file left by a killed
   * daemon is replaced; any other file there is refused). Resolves with the address clients
   * use: "unix:" + the path.
   */
  async listenUnix(socketPath: string): Promise<string> {
    if (this.unixServer !== null) throw new CstorError('conflict', `replica server already listens on unix:${this.unixServer.path}`);
    const st = await fs.lstat(socketPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw toCstorError(err, 'io', `replica socket ${socketPath}`);
    });
    if (st !== null) {
      if (!st.isSocket()) throw new CstorError('invalid', `replica socket ${socketPath}: exists and is not a socket; refusing to replace it`);
      await fs.unlink(socketPath);
    }
    const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    server.on('error', (err) => this.log.error('replica unix server error', { error: err.message }));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new CstorError('unavailable', `cannot listen on unix:${socketPath}: ${err.message}`, { cause: err, retryable: false }));
      server.once('error', onError);
      server.listen(socketPath, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.unixServer = { server, path: socketPath };
    return `${unixAddressPrefix}${socketPath}`;
  }

  /** Connections open now (for tests and status). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Closes every connection serving `volume` and forgets its handle (before the volume is deleted). */
  dropVolume(volume: string): void {
    for (const c of this.connections) if (c.volume === volume) c.destroy();
    this.handles.delete(volume);
  }

  /**
   * Stops accepting and closes every connection. Requests already handed to the store finish
   * (their replies are dropped); the caller syncs and closes the pool afterwards.
   */
  async close(): Promise<void> {
    const closed = [this.server, ...(this.unixServer ? [this.unixServer.server] : [])].map((srv) => new Promise<void>((resolve) => srv.close(() => resolve())));
    for (const c of this.connections) c.destroy();
    await Promise.all(closed);
    // net.Server unlinks its socket file on close; a crash leaves it, and listenUnix replaces it.
    this.unixServer = null;
  }

  private accept(socket: net.Socket): void {
    const conn = new ReplicaConnection(socket, {
      pool: this.options.pool,
      logger: this.log,
      metrics: this.metrics,
      handleFor: (volume) => this.handleFor(volume),
      maxInFlight: this.options.maxInFlight ?? 1024,
      maxInFlightBytes: this.options.maxInFlightBytes ?? 256 * 1024 * 1024,
      maxQueuedReplyBytes: this.options.maxQueuedReplyBytes ?? 64 * 1024 * 1024,
      payloads: this.payloads,
      fenceVolume: (volume, keep) => {
        let n = 0;
        for (const c of this.connections) {
          if (c !== keep && c.volume === volume) {
            c.destroy();
            n++;
          }
        }
        return n;
      },
      ...(this.options.directReads !== undefined ? { directReads: this.options.directReads } : {}),
    });
    this.connections.add(conn);
    this.metrics.connections(1);
    conn.onClose(() => {
      this.connections.delete(conn);
      this.metrics.connections(-1);
    });
  }

  private async handleFor(volume: string): Promise<VolumeHandle> {
    const cached = this.handles.get(volume);
    // A replica failed by an IO error is reloaded by the pool on the next open (new connections
    // get the reloaded one; the old ones keep failing until the target drops them).
    if (cached && (await cached.catch(() => null))?.replica.isFailed === true && this.handles.get(volume) === cached) {
      this.handles.delete(volume);
    }
    let h = this.handles.get(volume);
    if (!h) {
      const opened = this.options.pool.openReplica(volume).then((r) => new VolumeHandle(r));
      this.handles.set(volume, opened);
      opened.catch(() => {
        if (this.handles.get(volume) === opened) this.handles.delete(volume);
      });
      h = opened;
    }
    return h;
  }

}
