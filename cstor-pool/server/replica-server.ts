// The replica protocol server: accepts target connections on one port for every volume of the
// pool. Each connection binds to one volume with OPEN; connections to the same volume share one
// Replica handle and one IoOrdering.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../lib/logger.ts';
import { listen } from '../../lib/listen.ts';
import type { Pool } from '../store/types.ts';
import { ReplicaConnection } from './connection.ts';
import { noMetrics, type PoolMetrics } from './metrics.ts';
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
}

export class ReplicaServer {
  private readonly server: net.Server;
  private readonly connections = new Set<ReplicaConnection>();
  private readonly handles = new Map<string, Promise<VolumeHandle>>();
  private readonly log: Logger;
  private readonly metrics: PoolMetrics;

  constructor(private readonly options: ReplicaServerOptions) {
    this.log = options.logger.child({ component: 'replica-server' });
    this.metrics = options.metrics ?? noMetrics;
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.error('replica server error', { error: err.message }));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listen(this.server, host, port);
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
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.destroy();
    await closed;
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
    });
    this.connections.add(conn);
    this.metrics.connections(1);
    socket.on('close', () => {
      this.connections.delete(conn);
      this.metrics.connections(-1);
    });
  }

  private handleFor(volume: string): Promise<VolumeHandle> {
    let h = this.handles.get(volume);
    if (!h) {
      h = this.options.pool.openReplica(volume).then((r) => new VolumeHandle(r));
      this.handles.set(volume, h);
      h.catch(() => {
        if (this.handles.get(volume) === h) this.handles.delete(volume);
      });
    }
    return h;
  }
}
