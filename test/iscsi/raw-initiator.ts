// A minimal hand-driven iSCSI initiator for tests that need to send exact (or broken) PDUs.
import net from 'node:net';
import { BHS_LENGTH, type RawPdu } from '../../cstor-target/iscsi/pdu/bhs.ts';
import { PduReader, framePdu } from '../../cstor-target/iscsi/pdu/pdu-reader.ts';
import { decodeKeys, encodeKeys, type KeyValues } from '../../cstor-target/iscsi/text-keys.ts';

export interface BhsFields {
  opcode: number;
  immediate?: boolean;
  flags?: number;
  b2?: number;
  b3?: number;
  ahsWords?: number;
  dataLength?: number;
  lun?: Buffer;
  itt?: number;
  /** Bytes 20-47 as big-endian u32 words (7 words). */
  words?: number[];
}

export function buildBhs(f: BhsFields): Buffer {
  const b = Buffer.alloc(BHS_LENGTH);
  b[0] = (f.immediate ? 0x40 : 0) | (f.opcode & 0x3f);
  b[1] = f.flags ?? 0x80;
  b[2] = f.b2 ?? 0;
  b[3] = f.b3 ?? 0;
  b[4] = f.ahsWords ?? 0;
  b.writeUIntBE(f.dataLength ?? 0, 5, 3);
  (f.lun ?? Buffer.alloc(8)).copy(b, 8);
  b.writeUInt32BE((f.itt ?? 0) >>> 0, 16);
  (f.words ?? []).forEach((w, i) => b.writeUInt32BE(w >>> 0, 20 + i * 4));
  return b;
}

export function pad(data: Buffer): Buffer {
  const p = (4 - (data.length % 4)) % 4;
  return p ? Buffer.concat([data, Buffer.alloc(p)]) : data;
}

export interface ScsiReply {
  status: number;
  response: number;
  flags: number;
  residual: number;
  data: Buffer;
  sense: Buffer | undefined;
}

export class RawInitiator {
  private readonly reader = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1 << 24 });
  private readonly queue: RawPdu[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  cmdSN = 1;
  expStatSN = 0;
  itt = 1;
  isid = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]);
  private digests = { header: false, data: false };

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.reader.push(chunk)) this.queue.push(p);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawInitiator> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new RawInitiator(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  send(...parts: Buffer[]): void {
    if (this.digests.header || this.digests.data) {
      // Re-frame: parts are [BHS(+AHS), padded data?]; digests go after each.
      const all = Buffer.concat(parts);
      const dl = all.readUIntBE(5, 3);
      const hl = 48 + all[4]! * 4;
      this.socket.write(Buffer.concat(framePdu(all.subarray(0, hl), all.subarray(hl, hl + dl), this.digests)));
      return;
    }
    this.socket.write(Buffer.concat(parts));
  }

  /** Turns on CRC32C digests both ways (after a login that negotiated them). */
  enableDigests(header: boolean, data: boolean): void {
    this.digests = { header, data };
    this.reader.options.headerDigest = header;
    this.reader.options.dataDigest = data;
  }

  /** The next PDU, or 'closed' when the target dropped us, or 'timeout'. */
  async next(timeoutMs = 3000): Promise<RawPdu | 'closed' | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.queue.shift();
      if (p) return p;
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the target to close the connection. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const p = await this.next(deadline - Date.now());
      if (p === 'closed') return true;
      if (p === 'timeout') return false;
    }
    return this.closed;
  }

  /** One Login Request (CSG=1 → NSG=3, T=1) with `keys`; returns the response's status and keys. */
  async login(keys: KeyValues, opts: { csg?: number; nsg?: number; transit?: boolean } = {}): Promise<{ statusClass: number; statusDetail: number; keys: KeyValues; pdu: RawPdu }> {
    const data = encodeKeys(keys);
    const csg = opts.csg ?? 1;
    const nsg = opts.nsg ?? 3;
    const flags = ((opts.transit ?? true) ? 0x80 : 0) | (csg << 2) | nsg;
    const bhs = buildBhs({ opcode: 0x03, immediate: true, flags, dataLength: data.length, lun: Buffer.concat([this.isid, Buffer.alloc(2)]), itt: this.itt++, words: [0, this.cmdSN, this.expStatSN] });
    this.send(bhs, pad(data));
    const p = await this.next();
    if (typeof p === 'string') throw new Error(`login: ${p}`);
    this.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
    return { statusClass: p.bhs[36]!, statusDetail: p.bhs[37]!, keys: decodeKeys(p.data), pdu: p };
  }

  async loginNormal(iqn: string, overrides: KeyValues = []): Promise<KeyValues> {
    const keys = new Map<string, string>([
      ['InitiatorName', 'iqn.2026-01.test:raw'],
      ['TargetName', iqn],
      ['SessionType', 'Normal'],
      ['HeaderDigest', 'None'],
      ['DataDigest', 'None'],
      ['MaxRecvDataSegmentLength', '65536'],
      ['InitialR2T', 'No'],
      ['ImmediateData', 'Yes'],
      ['MaxBurstLength', '262144'],
      ['FirstBurstLength', '65536'],
    ]);
    for (const [k, v] of overrides) keys.set(k, v);
    const r = await this.login([...keys.entries()]);
    if (r.statusClass !== 0) throw new Error(`login failed ${r.statusClass}/${r.statusDetail}`);
    return r.keys;
  }

  /** Builds a SCSI Command PDU (does not send it). */
  scsiCommand(cdb: Buffer, o: { edtl?: number; read?: boolean; write?: boolean; data?: Buffer; lun?: number; cmdSN?: number; itt?: number; final?: boolean } = {}): Buffer {
    const c = Buffer.alloc(16);
    cdb.copy(c);
    const lun = Buffer.alloc(8);
    lun[1] = o.lun ?? 0;
    const data = o.data ?? Buffer.alloc(0);
    const flags = ((o.final ?? true) ? 0x80 : 0) | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | 1;
    const cmdSN = o.cmdSN ?? this.cmdSN++;
    const bhs = buildBhs({ opcode: 0x01, flags, dataLength: data.length, lun, itt: o.itt ?? this.itt++, words: [o.edtl ?? 0, cmdSN, this.expStatSN] });
    c.copy(bhs, 32);
    return Buffer.concat([bhs, pad(data)]);
  }

  /** Collects the answer to task `itt`: Data-In then status (in a Data-In with S, or a SCSI Response). */
  async collect(itt: number, timeoutMs = 3000): Promise<ScsiReply | 'closed' | 'timeout'> {
    const chunks: Buffer[] = [];
    for (;;) {
      const p = await this.next(timeoutMs);
      if (typeof p === 'string') return p;
      const op = p.bhs[0]! & 0x3f;
      if (p.bhs.readUInt32BE(16) !== itt) continue;
      if (op === 0x25) {
        chunks.push(p.data);
        if (p.bhs[1]! & 0x01) {
          this.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
          return { status: p.bhs[3]!, response: 0, flags: p.bhs[1]!, residual: p.bhs.readUInt32BE(44), data: Buffer.concat(chunks), sense: undefined };
        }
      } else if (op === 0x21) {
        this.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
        const sense = p.data.length >= 2 ? p.data.subarray(2, 2 + p.data.readUInt16BE(0)) : undefined;
        return { status: p.bhs[3]!, response: p.bhs[2]!, flags: p.bhs[1]!, residual: p.bhs.readUInt32BE(44), data: Buffer.concat(chunks), sense };
      }
    }
  }

  async scsi(cdb: Buffer, o: Parameters<RawInitiator['scsiCommand']>[1] = {}): Promise<ScsiReply | 'closed' | 'timeout'> {
    const itt = this.itt;
    this.send(this.scsiCommand(cdb, { ...o, itt }));
    this.itt++;
    return this.collect(itt);
  }

  close(): void {
    this.socket.destroy();
  }
}
