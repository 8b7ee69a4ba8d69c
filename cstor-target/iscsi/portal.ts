// The iSCSI portal: one TCP listener serving one target per volume
// (iqn.2016-09.com.openebs.cstor:<volume>, LUN 0). The daemon adds and removes targets as it
// starts and stops serving volumes; the mgmt API reads per-target IO stats from here.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { BlockDevice } from '../../lib/block-device.ts';
import { CstorError } from '../../lib/errors.ts';
import { closeServer, formatAddress, listen } from '../../lib/listen.ts';
import { silentLogger, type Logger } from '../../lib/logger.ts';
import { isDns1123Label } from '../../lib/names.ts';
import type { IoStatsSnapshot } from '../scsi/io-stats.ts';
import { Asc } from '../scsi/sense.ts';
import type { ChapCredentials } from './chap.ts';
import type { WriteCacheStore } from '../scsi/disk.ts';
import { IscsiConnection, type ConnectionHost, type ConnectionOptions, type ResetKind } from './connection.ts';
import { defaultTargetLimits, type TargetLimits } from './negotiation.ts';
import { IscsiTarget, targetIqn } from './target.ts';

export interface IscsiPortalOptions {
  readonly logger?: Logger;
  /** Negotiation limits; defaults suit a disk (256 KiB segments, 16 MiB bursts, immediate data). */
  readonly limits?: Partial<TargetLimits>;
  readonly connection?: Partial<ConnectionOptions>;
  /** Address advertised in SendTargets; defaults to the listening address. */
  readonly advertiseAddress?: string;
  /** CHAP required for discovery sessions (optional). */
  readonly discoveryChap?: ChapCredentials;
}

export interface AddTargetOptions {
  readonly volume: string;
  readonly device: BlockDevice;
  /** VPD 0x80 serial; defaults to the volume name. */
  readonly serial?: string;
  /** When set, initiators must log in with CHAP (MD5) using these credentials. */
  readonly chap?: ChapCredentials;
  /** Where the LUN's write-cache setting is kept across restarts (ScsiDiskOptions.writeCache). */
  readonly writeCache?: WriteCacheStore;
}

export interface TargetInfo {
  readonly volume: string;
  readonly iqn: string;
  readonly sessions: number;
  readonly inFlight: number;
  readonly stats: IoStatsSnapshot;
}

export class IscsiPortal {
  private readonly server: net.Server;
  private readonly targets = new Map<string, IscsiTarget>();
  private readonly connections = new Set<IscsiConnection>();
  private readonly sessionsByKey = new Map<string, IscsiConnection>();
  private readonly logger: Logger;
  private readonly limits: TargetLimits;
  private readonly connOptions: ConnectionOptions;
  private addr: AddressInfo | undefined;
  private tsih = 0;
  private closing = false;
  private readonly host: ConnectionHost;

  constructor(private readonly options: IscsiPortalOptions = {}) {
    this.logger = options.logger ?? silentLogger();
    this.limits = { ...defaultTargetLimits, ...options.limits };
    this.connOptions = { nopInIntervalMs: 5000, nopInTimeoutMs: 30000, queueDepth: 128, loginTimeoutMs: 15000, ...options.connection };
    this.host = this.makeHost();
    // pauseOnConnect: a connection reads nothing until IscsiConnection has it read into its own buffers.
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket));
    this.server.on('error', (err) => this.logger.error('iSCSI portal error', { error: err.message }));
  }

  /** Starts listening; resolves with the bound address (pass port 0 for any free port). */
  async listen(host: string, port: number): Promise<AddressInfo> {
    this.addr = await listen(this.server, host, port);
    return this.addr;
  }

  get address(): AddressInfo | undefined {
    return this.addr;
  }

  /** Serves `device` as LUN 0 of iqn.2016-09.com.openebs.cstor:<volume>. */
  addTarget(opts: AddTargetOptions): IscsiTarget {
    if (!isDns1123Label(opts.volume)) throw new CstorError('invalid', `volume name ${JSON.stringify(opts.volume)} is not a DNS-1123 label`);
    if (this.targets.has(opts.volume)) throw new CstorError('already_exists', `volume ${opts.volume} is already served`);
    const { device } = opts;
    if (device.blockSize !== 512 && device.blockSize !== 4096) throw new CstorError('invalid', `block size ${device.blockSize} is not 512 or 4096`);
    if (device.size <= 0 || device.size % device.blockSize !== 0) throw new CstorError('invalid', `device size ${device.size} is not a positive multiple of ${device.blockSize}`);
    const target = new IscsiTarget({ volume: opts.volume, device, serial: opts.serial ?? opts.volume, ...(opts.chap ? { chap: opts.chap } : {}), ...(opts.writeCache ? { writeCache: opts.writeCache } : {}) });
    this.targets.set(opts.volume, target);
    this.logger.info('iSCSI target added', { volume: opts.volume, iqn: target.iqn });
    return target;
  }

  /** Stops serving a volume: its sessions are dropped and their in-flight IO settles first. */
  async removeTarget(volume: string): Promise<void> {
    const target = this.targets.get(volume);
    if (!target) throw new CstorError('not_found', `volume ${volume} is not served`);
    this.targets.delete(volume);
    await Promise.all([...target.members].map((m) => m.close('target removed')));
    this.logger.info('iSCSI target removed', { volume });
  }

  hasTarget(volume: string): boolean {
    return this.targets.has(volume);
  }

  targetInfo(volume: string): TargetInfo | undefined {
    const t = this.targets.get(volume);
    if (!t) return undefined;
    const members = [...this.connections].filter((c) => c.target === t && c.isFullFeature);
    return { volume, iqn: t.iqn, sessions: members.length, inFlight: members.reduce((n, c) => n + c.inFlight, 0), stats: t.disk.stats.snapshot() };
  }

  listTargets(): TargetInfo[] {
    return [...this.targets.keys()].map((v) => this.targetInfo(v)!);
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = closeServer(this.server);
    await Promise.all([...this.connections].map((c) => c.close('portal closing')));
    await closed;
  }

  private onConnection(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = new IscsiConnection(socket, this.host, this.connOptions, this.logger);
    this.connections.add(conn);
  }

  private makeHost(): ConnectionHost {
    return {
      limits: this.limits,
      discoveryChap: this.options.discoveryChap,
      findTarget: (iqn) => [...this.targets.values()].find((t) => t.iqn === iqn),
      listTargets: () => [...this.targets.values()],
      targetAddress: () => `${this.options.advertiseAddress ?? (this.addr ? formatAddress(this.addr) : '127.0.0.1:3260')},1`,
      allocateTsih: () => {
        this.tsih = this.tsih >= 0xffff ? 1 : this.tsih + 1;
        return this.tsih;
      },
      sessionStarted: async (conn, key) => {
        const old = this.sessionsByKey.get(key);
        this.sessionsByKey.set(key, conn);
        if (old && old !== conn) await old.close('session reinstated');
      },
      connectionClosed: (conn) => {
        this.connections.delete(conn);
        conn.target?.members.delete(conn);
        if (this.sessionsByKey.get(conn.sessionKey) === conn) this.sessionsByKey.delete(conn.sessionKey);
      },
      resetTarget: (target, kind, requester) => this.resetTarget(target, kind, requester),
    };
  }

  /**
   * Task management across sessions: CLEAR TASK SET aborts every session's tasks on LUN 0 (the others
   * then see COMMANDS CLEARED BY ANOTHER INITIATOR); a LUN or target reset also drops reservations and
   * gives every nexus BUS DEVICE RESET FUNCTION OCCURRED; a cold reset then ends every session.
   */
  private async resetTarget(target: IscsiTarget, kind: ResetKind, requester: string): Promise<void> {
    const members = [...target.members];
    await Promise.all(members.map((m) => m.abortAll(kind === 'clear' || kind === 'lun' ? 0 : undefined)));
    if (kind === 'clear') {
      target.disk.raiseUnitAttention(
        members.map((m) => m.nexus).filter((n) => n !== requester),
        Asc.commandsClearedByAnotherInitiator,
      );
      return;
    }
    target.disk.releaseReservations();
    target.disk.raiseUnitAttention(
      members.map((m) => m.nexus),
      Asc.busDeviceReset,
    );
    this.logger.info('iSCSI target reset', { volume: target.volume, kind });
    if (kind === 'cold') {
      // After the requester gets its answer.
      setTimeout(() => members.forEach((m) => void m.close('target cold reset')), 10).unref();
    }
  }

  /** The IQN a volume is served under. */
  static iqnFor(volume: string): string {
    return targetIqn(volume);
  }
}
