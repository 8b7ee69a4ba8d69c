// PERSISTENT RESERVE IN / OUT (SPC-4 §5.13, §6.15, §6.16) for one logical unit: registrations per
// I_T nexus, one reservation (scope LU) of any of the six types, and the conflict rules commands
// are checked against. Not persisted across target restarts (APTPL is refused).
import { Asc, ScsiSenseError, SenseKey, invalidFieldInCdb, invalidFieldInParameterList } from './sense.ts';

export const PrType = {
  writeExclusive: 1,
  exclusiveAccess: 3,
  writeExclusiveRegistrantsOnly: 5,
  exclusiveAccessRegistrantsOnly: 6,
  writeExclusiveAllRegistrants: 7,
  exclusiveAccessAllRegistrants: 8,
} as const;

const validTypes: ReadonlySet<number> = new Set(Object.values(PrType));

/** Thrown to end a command with RESERVATION CONFLICT status. */
export class ReservationConflictError extends Error {
  constructor() {
    super('reservation conflict');
    this.name = 'ReservationConflictError';
  }
}

export type AccessKind = 'read' | 'write' | 'other';

interface Reservation {
  holder: string;
  type: number;
}

export class PersistentReservations {
  private readonly keys = new Map<string, bigint>();
  private reservation: Reservation | undefined;
  private generation = 0;

  get hasReservation(): boolean {
    return this.reservation !== undefined;
  }

  private allRegistrants(t: number): boolean {
    return t === PrType.writeExclusiveAllRegistrants || t === PrType.exclusiveAccessAllRegistrants;
  }

  private isHolder(nexus: string): boolean {
    const r = this.reservation;
    if (!r) return false;
    return this.allRegistrants(r.type) ? this.keys.has(nexus) : r.holder === nexus;
  }

  /** Whether `nexus` may run a command of this kind under the current reservation. */
  allows(nexus: string, kind: AccessKind): boolean {
    const r = this.reservation;
    if (!r || kind === 'other' || this.isHolder(nexus)) return true;
    const registrantsToo = r.type === PrType.writeExclusiveRegistrantsOnly || r.type === PrType.exclusiveAccessRegistrantsOnly;
    if (registrantsToo && this.keys.has(nexus)) return true;
    const exclusiveAccess = r.type === PrType.exclusiveAccess || r.type === PrType.exclusiveAccessRegistrantsOnly || r.type === PrType.exclusiveAccessAllRegistrants;
    return kind === 'read' ? !exclusiveAccess : false;
  }

  /** PERSISTENT RESERVE IN: the parameter data (the caller cuts it to the allocation length). */
  in(cdb: Buffer): Buffer {
    const sa = cdb[1]! & 0x1f;
    switch (sa) {
      case 0: {
        const keys = [...this.keys.values()];
        const b = Buffer.alloc(8 + keys.length * 8);
        b.writeUInt32BE(this.generation, 0);
        b.writeUInt32BE(keys.length * 8, 4);
        keys.forEach((k, i) => b.writeBigUInt64BE(k, 8 + i * 8));
        return b;
      }
      case 1: {
        const r = this.reservation;
        const b = Buffer.alloc(r ? 24 : 8);
        b.writeUInt32BE(this.generation, 0);
        if (r) {
          b.writeUInt32BE(16, 4);
          b.writeBigUInt64BE(this.allRegistrants(r.type) ? 0n : (this.keys.get(r.holder) ?? 0n), 8);
          b[21] = r.type & 0x0f; // scope 0 (LU)
        }
        return b;
      }
      case 2: {
        const b = Buffer.alloc(8);
        b.writeUInt16BE(8, 0);
        b[2] = 0x10; // CRH
        b[3] = 0x80; // TMV: the type mask is valid
        b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        b[5] = 0x01; // EX_AC_AR
        return b;
      }
      case 3: {
        const descs: Buffer[] = [];
        for (const [nexus, key] of this.keys) {
          const tid = transportId(nexus);
          const d = Buffer.alloc(24 + tid.length);
          d.writeBigUInt64BE(key, 0);
          const holder = this.isHolder(nexus);
          d[12] = holder ? 0x01 : 0;
          d[13] = holder && this.reservation ? this.reservation.type & 0x0f : 0;
          d.writeUInt16BE(1, 18); // relative target port identifier
          d.writeUInt32BE(tid.length, 20);
          tid.copy(d, 24);
          descs.push(d);
        }
        const body = Buffer.concat(descs);
        const h = Buffer.alloc(8);
        h.writeUInt32BE(this.generation, 0);
        h.writeUInt32BE(body.length, 4);
        return Buffer.concat([h, body]);
      }
      default:
        throw invalidFieldInCdb(1, `PERSISTENT RESERVE IN service action ${sa}`, 4);
    }
  }

  /** PERSISTENT RESERVE OUT. Throws ReservationConflictError or a ScsiSenseError. */
  out(nexus: string, cdb: Buffer, data: Buffer | undefined): void {
    const sa = cdb[1]! & 0x1f;
    const scope = cdb[2]! >> 4;
    const type = cdb[2]! & 0x0f;
    const listLen = cdb.readUInt32BE(5);
    if (sa > 7) throw invalidFieldInCdb(1, `PERSISTENT RESERVE OUT service action ${sa}`, 4);
    if (sa === 7) throw invalidFieldInCdb(1, 'REGISTER AND MOVE is not supported', 4);
    if (listLen !== 24) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, `PERSISTENT RESERVE OUT parameter list of ${listLen} bytes (24 expected)`);
    if (!data || data.length < 24) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'PERSISTENT RESERVE OUT parameter list truncated');
    const key = data.readBigUInt64BE(0);
    const saKey = data.readBigUInt64BE(8);
    const flags = data[20]!;
    if (flags & 0x08) throw invalidFieldInParameterList(20, 'SPEC_I_PT is not supported');
    if (flags & 0x01) throw invalidFieldInParameterList(20, 'APTPL is not supported');
    const registered = this.keys.get(nexus);
    const needKey = (): void => {
      if (registered === undefined || registered !== key) throw new ReservationConflictError();
    };
    const needScopeType = (): void => {
      if (scope !== 0) throw invalidFieldInCdb(2, 'scope other than LU', 7);
      if (!validTypes.has(type)) throw invalidFieldInCdb(2, `reservation type ${type}`, 3);
    };
    switch (sa) {
      case 0: // REGISTER
      case 6: {
        // REGISTER AND IGNORE EXISTING KEY
        if (sa === 0) {
          if (registered === undefined ? key !== 0n : registered !== key) throw new ReservationConflictError();
        }
        if (saKey === 0n) {
          if (registered !== undefined) this.unregister(nexus);
        } else {
          this.keys.set(nexus, saKey);
        }
        this.generation = (this.generation + 1) >>> 0;
        return;
      }
      case 1: {
        // RESERVE
        needKey();
        needScopeType();
        const r = this.reservation;
        if (!r) {
          this.reservation = { holder: nexus, type };
          return;
        }
        if (this.isHolder(nexus) && r.type === type) return;
        throw new ReservationConflictError();
      }
      case 2: {
        // RELEASE
        needKey();
        const r = this.reservation;
        if (!r || !this.isHolder(nexus)) return;
        if (scope !== 0 || r.type !== type) throw new ScsiSenseError(SenseKey.illegalRequest, [0x26, 0x04], 'invalid release of persistent reservation');
        this.reservation = undefined;
        return;
      }
      case 3: {
        // CLEAR
        needKey();
        this.keys.clear();
        this.reservation = undefined;
        this.generation = (this.generation + 1) >>> 0;
        return;
      }
      case 4:
      case 5: {
        // PREEMPT, PREEMPT AND ABORT
        needKey();
        needScopeType();
        const r = this.reservation;
        if (r && this.allRegistrants(r.type) && saKey === 0n) {
          for (const n of [...this.keys.keys()]) if (n !== nexus) this.keys.delete(n);
          this.reservation = { holder: nexus, type };
        } else {
          if (saKey === 0n) throw invalidFieldInParameterList(8, 'SERVICE ACTION RESERVATION KEY 0');
          const holderKey = r && !this.allRegistrants(r.type) ? this.keys.get(r.holder) : undefined;
          const victims = [...this.keys.entries()].filter(([, k]) => k === saKey).map(([n]) => n);
          if (victims.length === 0) throw new ReservationConflictError();
          for (const n of victims) if (n !== nexus) this.keys.delete(n);
          if (r && holderKey === saKey) this.reservation = { holder: nexus, type };
          else if (r && !this.allRegistrants(r.type) && !this.keys.has(r.holder)) this.reservation = undefined;
        }
        this.generation = (this.generation + 1) >>> 0;
        return;
      }
    }
  }

  private unregister(nexus: string): void {
    this.keys.delete(nexus);
    const r = this.reservation;
    if (!r) return;
    if (this.allRegistrants(r.type)) {
      if (this.keys.size === 0) this.reservation = undefined;
    } else if (r.holder === nexus) {
      this.reservation = undefined;
    }
  }
}

/** iSCSI TransportID, format 01b: "<initiator name>,i,0x<ISID>" NUL-padded to a multiple of 4. */
function transportId(nexus: string): Buffer {
  const name = Buffer.from(nexus + '\0', 'utf8');
  const len = (name.length + 3) & ~3;
  const b = Buffer.alloc(4 + len);
  b[0] = 0x40 | 0x05;
  b.writeUInt16BE(len, 2);
  name.copy(b, 4);
  return b;
}
