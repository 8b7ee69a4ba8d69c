// One served volume: its IQN, its SCSI disk (LUN 0), optional CHAP credentials, and the connections
// logged in to it.
import type { BlockDevice } from '../../lib/block-device.ts';
import { ScsiDisk, type WriteCacheStore } from '../scsi/disk.ts';
import type { ChapCredentials } from './chap.ts';

export const IQN_PREFIX = 'iqn.2016-09.com.openebs.cstor:';

export function targetIqn(volume: string): string {
  return `${IQN_PREFIX}${volume}`;
}

/** What the target tells a connection: drop this session (target removed, reset, reinstatement). */
export interface TargetMember {
  /** The I_T nexus: "<initiator name>,i,0x<ISID>". */
  readonly nexus: string;
  /** Ends the connection; resolves once its in-flight IO has settled. */
  close(reason: string): Promise<void>;
  /** Aborts (drops without response) every task of this connection on `lun`, or on all LUNs; resolves when they have settled. */
  abortAll(lun?: number): Promise<void>;
}

export interface IscsiTargetOptions {
  readonly volume: string;
  readonly device: BlockDevice;
  readonly serial: string;
  readonly chap?: ChapCredentials;
  readonly alias?: string;
  readonly writeCache?: WriteCacheStore;
}

export class IscsiTarget {
  readonly volume: string;
  readonly iqn: string;
  readonly disk: ScsiDisk;
  readonly chap: ChapCredentials | undefined;
  readonly alias: string;
  readonly members = new Set<TargetMember>();

  constructor(opts: IscsiTargetOptions) {
    this.volume = opts.volume;
    this.iqn = targetIqn(opts.volume);
    this.chap = opts.chap;
    this.alias = opts.alias ?? opts.volume;
    this.disk = new ScsiDisk({
      device: opts.device,
      identity: { serial: opts.serial, vendor: 'OpenEBS', product: 'cstor-target', revision: '0001' },
      ...(opts.writeCache ? { writeCache: opts.writeCache } : {}),
    });
  }
}
