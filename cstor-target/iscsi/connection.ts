// One iSCSI connection, and with MaxConnections=1 its session: login, then the full feature phase
// (RFC 7143): CmdSN ordering, SCSI commands with R2T/Data-Out and Data-In, NOP keepalive, task
// management, text (SendTargets), logout, and Reject for PDUs we cannot take.
import type { Socket } from 'node:net';
import type { Logger } from '../../lib/logger.ts';
import { describeError } from '../../lib/errors.ts';
import { ScsiStatus, invalidFieldInCdb } from '../scsi/sense.ts';
import type { ScsiResult } from '../scsi/disk.ts';
import { BHS_LENGTH, NO_TAG, Opcode, encodeLun, type RawPdu } from './pdu/bhs.ts';
import { PduReader, framePdu } from './pdu/pdu-reader.ts';
import { decodeLoginRequest } from './pdu/login-request.ts';
import { encodeLoginResponse } from './pdu/login-response.ts';
import { decodeTextRequest } from './pdu/text-request.ts';
import { encodeTextResponse } from './pdu/text-response.ts';
import { decodeScsiCommand, type ScsiCommand } from './pdu/scsi-command.ts';
import { Residual, encodeScsiResponse, encodeSenseSegment, writeScsiResponse, type ScsiResponse } from './pdu/scsi-response.ts';
import { encodeDataIn, writeDataIn, type DataIn } from './pdu/data-in.ts';
import { decodeDataOut, type DataOut } from './pdu/data-out.ts';
import { encodeR2t } from './pdu/r2t.ts';
import { decodeNopOut } from './pdu/nop-out.ts';
import { encodeNopIn } from './pdu/nop-in.ts';
import { TmfFunction, decodeTaskMgmtRequest, type TaskMgmtRequest } from './pdu/task-mgmt-request.ts';
import { TmfResponse, encodeTaskMgmtResponse } from './pdu/task-mgmt-response.ts';
import { decodeLogoutRequest } from './pdu/logout-request.ts';
import { encodeLogoutResponse } from './pdu/logout-response.ts';
import { RejectReason, encodeReject } from './pdu/reject.ts';
import { LoginPhase, type LoginContext } from './login.ts';
import type { SessionParams } from './negotiation.ts';
import { decodeKeys, encodeKeys, type KeyValues } from './text-keys.ts';
import { snAdd, snInRange, snLess } from './serial.ts';
import { ScsiTask } from './scsi-task.ts';
import { ioBuffers, type Lease } from '../scsi/buffer-pool.ts';
import type { IscsiTarget, TargetMember } from './target.ts';
import { adoptWithReadBuffers } from '../../lib/adopt-socket.ts';

export interface ConnectionHost extends LoginContext {
  listTargets(): IscsiTarget[];
  /** "host:port,tpgt" for SendTargets. */
  targetAddress(): string;
  allocateTsih(): number;
  /** A Normal session logged in: the host ends any older session of the same initiator and ISID. */
  sessionStarted(conn: IscsiConnection, key: string): Promise<void>;
  connectionClosed(conn: IscsiConnection): void;
  /** Task management that reaches every session of the target (see IscsiPortal.resetTarget). */
  resetTarget(target: IscsiTarget, kind: ResetKind, requesterNexus: string): Promise<void>;
}

export type ResetKind = 'clear' | 'lun' | 'warm' | 'cold';

export interface ConnectionOptions {
  /** Send a NOP-In ping after this long without traffic from the initiator (0: never). */
  readonly nopInIntervalMs: number;
  /** Drop the connection when a ping goes unanswered this long. */
  readonly nopInTimeoutMs: number;
  /** Commands the initiator may have queued beyond ExpCmdSN. */
  readonly queueDepth: number;
  /** Longest a login may take before the connection is dropped. */
  readonly loginTimeoutMs: number;
}

const LOGIN_MAX_SEGMENT = 65536;
/** The PDU reader's slab size once logged in (before that its small default). */
const FULL_PHASE_SLAB = 256 * 1024;
const WRITE_BACKLOG_LIMIT = 64 << 20;
/** Parts up to this size are copied into the send slab rather than written as their own chunks. */
const COALESCE_MAX = 16384;
/** The send slab's size (small PDU parts are written or copied into it, see send). */
const OUT_SLAB = 64 * 1024;
const RETIRED_KEEP = 1024;
/** Data-In segments this large are sent without waiting for the end of the I/O round (see send). */
const URGENT_DATA_IN = 65536;
const PAD = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];

function runAll(callbacks: (() => void)[]): void {
  for (let i = 0; i < callbacks.length; i++) callbacks[i]!();
}

export class IscsiConnection implements TargetMember {
  private readonly reader = new PduReader({
    headerDigest: false,
    dataDigest: false,
    maxDataSegmentLength: LOGIN_MAX_SEGMENT,
    placeData: (bhs, length) => this.placeData(bhs, length),
  });
  private readonly login: LoginPhase;
  private phase: 'login' | 'full' | 'closing' | 'closed' = 'login';
  private params: SessionParams | undefined;
  private digests = { header: false, data: false };
  target: IscsiTarget | undefined;
  private discovery = false;
  initiatorName = '';
  isid: Buffer = Buffer.alloc(6);
  tsih = 0;
  private cid = 0;
  private loginStarted = false;
  private statSN = 0;
  private expCmdSN = 0;
  /** The highest MaxCmdSN advertised (it never goes back): commands are taken up to it. */
  private maxCmdSNSent = 0;
  /** Non-immediate commands that arrived ahead of ExpCmdSN, by CmdSN. */
  private readonly ahead = new Map<number, () => void>();
  /** The ITTs of the SCSI commands among them, by CmdSN (ABORT TASK finds them there). */
  private readonly aheadItt = new Map<number, number>();
  private readonly tasks = new Map<number, ScsiTask>();
  /** Tags of tasks we aborted or finished recently (→ their slot in retiredRing): late Data-Out for them is dropped quietly. */
  private readonly retired = new Map<number, number>();
  /** The last RETIRED_KEEP tags retired, oldest at retiredAt: the one to forget next (no iteration). */
  private readonly retiredRing = new Array<number>(RETIRED_KEEP).fill(-1);
  private retiredAt = 0;
  private nextTtt = 1;
  /** PDU parts queued for the next flush (regions of the send slab, and large data segments). */
  private out: Buffer[] = [];
  /**
   * The send slab: headers and small data segments are written into it back to back, so a batch
   * of small PDUs is one buffer for the socket. Only ever written forward (a fresh slab takes over
   * when it is full): a region handed to the socket is never written again.
   */
  private outSlab = Buffer.allocUnsafeSlow(OUT_SLAB);
  private outPos = 0;
  /** Start of the slab bytes not yet queued in `out`. */
  private outStart = 0;
  /** Called once the flush that carries the queued parts has been written (or dropped): pooled Data-In buffers go back. */
  private sentCallbacks: (() => void)[] = [];
  private flushScheduled = false;
  private urgentScheduled = false;
  /** A write command's data buffer the reader started filling with its immediate data (see placeData). */
  private placedImmediate: { itt: number; buffer: Buffer; lease: Lease | undefined } | undefined;
  private paused = false;
  private nexusCache: string | undefined;
  private lastRx = Date.now();
  private pingTtt: number | undefined;
  private pingSentAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private textContinuation: { itt: number; ttt: number; rest: Buffer } | undefined;
  private closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  private readonly socket: Socket;

  /**
   * `accepted` should come from a server made with pauseOnConnect (it has read nothing yet): its
   * handle then moves to a socket that reads into the PDU reader's own buffers (adoptWithReadBuffers).
   * Otherwise (or where that is not possible) its 'data' chunks are used.
   */
  constructor(
    accepted: Socket,
    private readonly host: ConnectionHost,
    private readonly options: ConnectionOptions,
    private readonly logger: Logger,
  ) {
    this.login = new LoginPhase(host);
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
    const adopted = adoptWithReadBuffers(accepted, {
      buffer: () => this.reader.readBuffer(),
      callback: (n) => {
        this.onRead(n);
        return true;
      },
    });
    const socket = (this.socket = adopted ?? accepted);
    socket.setNoDelay(true);
    if (adopted === null) {
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      if (socket.isPaused()) socket.resume();
    }
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
    const started = Date.now();
    const tick = Math.max(100, Math.min(1000, options.nopInIntervalMs || 1000));
    this.timer = setInterval(() => this.onTimer(started), tick);
    this.timer.unref();
  }

  /** The I_T nexus "<initiator>,i,0x<ISID>" (fixed once login completes; computed once then). */
  get nexus(): string {
    if (this.phase !== 'full' || this.nexusCache === undefined) this.nexusCache = `${this.initiatorName},i,0x${this.isid.toString('hex')}`;
    return this.nexusCache;
  }

  get sessionKey(): string {
    return `${this.initiatorName}|${this.isid.toString('hex')}|${this.target?.iqn ?? ''}`;
  }

  get isFullFeature(): boolean {
    return this.phase === 'full';
  }

  get inFlight(): number {
    return this.tasks.size;
  }

  /**
   * MaxCmdSN: the window opens by one as each command finishes, not as it arrives, so an initiator
   * has at most queueDepth commands outstanding (and their data buffers with them). Monotonic, as
   * initiators ignore a lower one (RFC 7143 §4.2.2.1).
   */
  private get maxCmdSN(): number {
    const m = snAdd(this.expCmdSN, this.options.queueDepth - 1 - this.tasks.size);
    if (snLess(this.maxCmdSNSent, m)) this.maxCmdSNSent = m;
    return this.maxCmdSNSent;
  }

  /** The StatSN for a PDU, advanced past it when the PDU carries a status. */
  private takeStatSN(advance: boolean): number {
    const statSN = this.statSN;
    if (advance) this.statSN = snAdd(statSN, 1);
    return statSN;
  }

  private numbers(advance: boolean): { statSN: number; expCmdSN: number; maxCmdSN: number } {
    const statSN = this.statSN;
    if (advance) this.statSN = snAdd(this.statSN, 1);
    return { statSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN };
  }

  // ---- socket plumbing -------------------------------------------------------------------

  /**
   * Queues a PDU. Everything queued while the event loop handles one round of I/O (replica replies,
   * initiator commands) leaves in one socket write when that round ends (setImmediate): one syscall
   * and one wake-up of the initiator for many responses. `urgent` PDUs (an R2T the initiator waits
   * on before it sends more data, large Data-In) leave as soon as the current callback is done
   * (nextTick) instead: libuv may run many more socket reads in this round first. Small parts are
   * copied into one buffer; large data segments go as they are, as views of the device's buffer.
   */
  private send(header: Buffer, data?: Buffer, urgent = false, onSent?: () => void): void {
    if (this.phase === 'closed' || this.socket.destroyed) {
      onSent?.();
      return;
    }
    if (onSent !== undefined) this.sentCallbacks.push(onSent);
    if (this.digests.header || this.digests.data) {
      for (const part of framePdu(header, data, this.digests)) this.queuePart(part);
    } else {
      this.queuePart(header);
      if (data && data.length > 0) {
        this.queuePart(data);
        const pad = -data.length & 3;
        if (pad) this.queuePart(PAD[pad]!);
      }
    }
    this.scheduleFlush(urgent);
  }

  /** Queues one part: copied into the send slab when small, else as it is. */
  private queuePart(part: Buffer): void {
    if (part.length <= COALESCE_MAX) {
      const at = this.outRoom(part.length);
      part.copy(this.outSlab, at);
      return;
    }
    this.closeOutRegion();
    this.out.push(part);
  }

  /** Reserves `n` (<= OUT_SLAB) bytes in the send slab; returns where they start. */
  private outRoom(n: number): number {
    if (this.outSlab.length - this.outPos < n) {
      this.closeOutRegion();
      this.outSlab = Buffer.allocUnsafeSlow(OUT_SLAB);
      this.outPos = this.outStart = 0;
    }
    const at = this.outPos;
    this.outPos += n;
    return at;
  }

  /** Queues the slab bytes written since the last region. */
  private closeOutRegion(): void {
    if (this.outPos > this.outStart) {
      this.out.push(this.outSlab.subarray(this.outStart, this.outPos));
      this.outStart = this.outPos;
    }
  }

  /**
   * A PDU whose header the caller writes straight into the send slab (the hot path: no Buffer per
   * header): reserves the BHS and, for a small data segment, the data and its padding, copies
   * the data, and returns where the BHS goes; -1 when digests are on or the connection is closed
   * (then use send()). The caller writes the header at once, then calls scheduleFlush.
   */
  private slabPdu(data: Buffer | undefined, onSent?: () => void): number {
    if (this.digests.header || this.digests.data || this.phase === 'closed' || this.socket.destroyed) return -1;
    if (onSent !== undefined) this.sentCallbacks.push(onSent);
    const n = data === undefined ? 0 : data.length;
    if (n === 0) return this.outRoom(BHS_LENGTH);
    const padded = (n + 3) & ~3;
    if (n <= COALESCE_MAX) {
      const at = this.outRoom(BHS_LENGTH + padded);
      data!.copy(this.outSlab, at + BHS_LENGTH);
      if (padded > n) this.outSlab.fill(0, at + BHS_LENGTH + n, at + BHS_LENGTH + padded);
      return at;
    }
    const at = this.outRoom(BHS_LENGTH);
    this.closeOutRegion();
    this.out.push(data!);
    if (padded > n) this.queuePart(PAD[padded - n]!);
    return at;
  }

  private scheduleFlush(urgent: boolean): void {
    if (urgent) {
      if (!this.urgentScheduled) {
        this.urgentScheduled = true;
        process.nextTick(this.flushBound);
      }
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushBound);
    }
  }

  private readonly flushBound = (): void => this.flush();

  /** Writes the queued PDUs now (see send). */
  private flush(): void {
    // Whichever comes first sends everything; the other finds the queue empty.
    this.flushScheduled = false;
    this.urgentScheduled = false;
    this.closeOutRegion();
    const parts = this.out;
    if (parts.length === 0) return;
    this.out = [];
    const cbs = this.sentCallbacks;
    if (cbs.length > 0) this.sentCallbacks = [];
    if (this.socket.destroyed || this.socket.writableEnded) {
      runAll(cbs);
      return;
    }
    // Writes complete in order: the last one's callback (also called on error) frees the buffers.
    const done = cbs.length > 0 ? () => runAll(cbs) : undefined;
    if (parts.length === 1) {
      this.socket.write(parts[0]!, done);
    } else {
      this.socket.cork();
      const last = parts.length - 1;
      for (let i = 0; i < last; i++) this.socket.write(parts[i]!);
      this.socket.write(parts[last]!, done);
      this.socket.uncork();
    }
    // Backpressure: an initiator that does not read its Data-In stops us reading its commands.
    if (!this.paused && this.socket.writableLength > WRITE_BACKLOG_LIMIT) {
      this.paused = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.paused = false;
        this.socket.resume();
      });
    }
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.reader.append(chunk);
    this.takePdus();
  }

  /** Direct reads: `n` bytes arrived in the reader's last readBuffer(). */
  private onRead(n: number): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.reader.commitRead(n);
    this.takePdus();
  }

  private takePdus(): void {
    this.lastRx = Date.now();
    for (;;) {
      let pdu: RawPdu | undefined;
      try {
        pdu = this.reader.next();
      } catch (err) {
        // Framing is lost: no header to echo in a Reject; just drop the connection.
        this.protocolFailure(describeError(err), undefined);
        return;
      }
      if (!pdu) break;
      try {
        this.onPdu(pdu);
      } catch (err) {
        // A decoder's bound check or a handler's invariant: reject the PDU and end the connection.
        this.protocolFailure(describeError(err), pdu.bhs);
        return;
      }
      if (!this.isOpen()) return;
    }
    // A data segment still being read in place keeps its buffer for the command it belongs to.
    if (!this.reader.placing) this.placedImmediate = undefined;
  }

  private isOpen(): boolean {
    return this.phase === 'login' || this.phase === 'full';
  }

  private protocolFailure(reason: string, bhs: Buffer | undefined): void {
    this.logger.warn('iSCSI protocol error: dropping the connection', { reason, initiator: this.initiatorName || undefined });
    if (bhs && this.phase === 'full') this.reject(RejectReason.protocolError, bhs);
    void this.close(reason);
  }

  private onTimer(started: number): void {
    const now = Date.now();
    if (this.phase === 'login') {
      if (now - started > this.options.loginTimeoutMs) void this.close('login timed out');
      return;
    }
    if (this.phase !== 'full' || this.options.nopInIntervalMs <= 0) return;
    if (this.pingTtt !== undefined) {
      if (now - this.pingSentAt > this.options.nopInTimeoutMs) {
        this.logger.warn('initiator did not answer NOP-In: dropping the connection', { initiator: this.initiatorName });
        void this.close('NOP-In timeout');
      }
      return;
    }
    if (now - this.lastRx >= this.options.nopInIntervalMs) {
      this.pingTtt = this.allocTtt();
      this.pingSentAt = now;
      this.send(encodeNopIn({ lunField: encodeLun(0), itt: NO_TAG, ttt: this.pingTtt, dataLength: 0, ...this.numbers(false) }));
    }
  }

  private allocTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    return t;
  }

  /** Ends the connection: in-flight device IO settles, then the socket is destroyed. */
  async close(reason: string): Promise<void> {
    if (this.phase === 'closed' || this.phase === 'closing') return this.closedPromise;
    this.phase = 'closing';
    this.logger.debug('closing iSCSI connection', { reason });
    for (const t of this.tasks.values()) t.aborted = true;
    this.flush(); // what was queued (a Reject, a Logout Response) goes before the FIN
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 2000);
    t.unref();
    await Promise.allSettled([...this.tasks.values()].map((x) => x.done));
    this.socket.destroy();
    return this.closedPromise;
  }

  private onClose(): void {
    this.out = [];
    this.outStart = this.outPos;
    runAll(this.sentCallbacks.splice(0));
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const t of this.tasks.values()) t.aborted = true;
    const wasClosed = this.phase === 'closed';
    this.phase = 'closed';
    if (!wasClosed) {
      this.target?.disk.releaseReservations(this.nexus);
      this.host.connectionClosed(this);
      // Settle once the in-flight tasks have (they no longer respond).
      void Promise.allSettled([...this.tasks.values()].map((x) => x.done)).then(() => this.resolveClosed());
    }
  }

  // ---- dispatch ------------------------------------------------------------------------

  private onPdu(pdu: RawPdu): void {
    const opcode = pdu.bhs[0]! & 0x3f;
    if (this.phase === 'login') {
      if (opcode !== Opcode.LoginRequest) {
        this.protocolFailure(`opcode 0x${opcode.toString(16)} before login completed`, undefined);
        return;
      }
      this.onLogin(pdu);
      return;
    }
    switch (opcode) {
      case Opcode.ScsiCommand:
        if (this.discovery) {
          this.reject(RejectReason.protocolError, pdu.bhs);
          return;
        }
        this.onScsiCommand(pdu);
        return;
      case Opcode.DataOut:
        this.onDataOut(decodeDataOut(pdu), pdu.bhs);
        return;
      case Opcode.NopOut:
        this.onNopOut(pdu);
        return;
      case Opcode.TextRequest:
        this.onText(pdu);
        return;
      case Opcode.TaskMgmtRequest:
        this.onTaskMgmt(pdu);
        return;
      case Opcode.LogoutRequest:
        this.onLogout(pdu);
        return;
      case Opcode.SnackRequest:
        this.reject(RejectReason.snackReject, pdu.bhs);
        return;
      case Opcode.LoginRequest:
        this.protocolFailure('Login Request in full feature phase', pdu.bhs);
        return;
      default:
        this.reject(RejectReason.commandNotSupported, pdu.bhs);
    }
  }

  private reject(reason: number, bhs: Buffer): void {
    this.send(encodeReject({ reason, dataSN: 0, ...this.numbers(true) }), Buffer.from(bhs.subarray(0, BHS_LENGTH)));
  }

  /** Runs `fn` in CmdSN order: now if immediate or next in sequence, later if ahead, never if outside the window. */
  private ordered(cmdSN: number, immediate: boolean, fn: () => void, itt?: number): void {
    if (immediate) {
      fn();
      return;
    }
    if (cmdSN === this.expCmdSN && !snLess(this.maxCmdSN, cmdSN)) {
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      fn();
      for (let next = this.ahead.get(this.expCmdSN); next; next = this.ahead.get(this.expCmdSN)) {
        this.ahead.delete(this.expCmdSN);
        if (this.aheadItt.size > 0) this.aheadItt.delete(this.expCmdSN);
        this.expCmdSN = snAdd(this.expCmdSN, 1);
        next();
      }
      return;
    }
    if (snInRange(cmdSN, this.expCmdSN, this.maxCmdSN) && !this.ahead.has(cmdSN)) {
      this.ahead.set(cmdSN, fn);
      if (itt !== undefined) this.aheadItt.set(cmdSN, itt);
      return;
    }
    // Outside [ExpCmdSN, MaxCmdSN] (or a duplicate): silently ignored (RFC 7143 §4.2.2.1).
  }

  // ---- login ---------------------------------------------------------------------------

  private onLogin(pdu: RawPdu): void {
    const req = decodeLoginRequest(pdu);
    if (!this.loginStarted) {
      this.loginStarted = true;
      this.isid = req.isid;
      this.cid = req.cid;
      this.expCmdSN = req.cmdSN;
      this.maxCmdSNSent = snAdd(req.cmdSN, this.options.queueDepth - 1);
      this.statSN = req.expStatSN;
    }
    if (req.tsih !== 0) {
      // Adding a connection to, or reinstating, an existing session: we run one connection per session.
      this.sendLogin(req, { transit: false, cont: false, csg: req.csg, nsg: 0, status: [2, 10], data: Buffer.alloc(0) }, 0);
      void this.close('login with a TSIH');
      return;
    }
    const reply = this.login.handle(req);
    if (reply.failed) {
      this.logger.info('iSCSI login refused', { initiator: this.initiatorName || undefined, reason: reply.reason, status: reply.status });
      this.sendLogin(req, reply, 0);
      void this.close(reply.reason ?? 'login failed');
      return;
    }
    if (!reply.complete) {
      this.sendLogin(req, reply, 0);
      return;
    }
    const result = this.login.result();
    this.params = result.params;
    this.target = result.target;
    this.discovery = result.sessionType === 'Discovery';
    this.initiatorName = result.initiatorName;
    this.tsih = this.host.allocateTsih();
    this.sendLogin(req, reply, this.tsih);
    // Digests and our receive limit apply from the first PDU after the final login response.
    this.digests = { header: this.params.headerDigest, data: this.params.dataDigest };
    this.reader.options.headerDigest = this.params.headerDigest;
    this.reader.options.dataDigest = this.params.dataDigest;
    this.reader.options.maxDataSegmentLength = this.params.maxRecvDataSegmentLength;
    // Direct reads: room for a queue depth of commands per socket read from now on.
    this.reader.options.slabSize = FULL_PHASE_SLAB;
    this.phase = 'full';
    if (this.target) {
      this.target.members.add(this);
      void this.host.sessionStarted(this, this.sessionKey);
    }
    this.logger.info('iSCSI login', {
      initiator: this.initiatorName,
      target: this.target?.iqn,
      sessionType: result.sessionType,
      tsih: this.tsih,
      headerDigest: this.params.headerDigest,
      dataDigest: this.params.dataDigest,
      immediateData: this.params.immediateData,
      initialR2T: this.params.initialR2T,
      firstBurstLength: this.params.firstBurstLength,
      maxBurstLength: this.params.maxBurstLength,
      maxXmitDataSegmentLength: this.params.maxXmitDataSegmentLength,
      maxOutstandingR2T: this.params.maxOutstandingR2T,
    });
  }

  private sendLogin(req: ReturnType<typeof decodeLoginRequest>, reply: { transit: boolean; cont: boolean; csg: number; nsg: number; status: readonly [number, number]; data: Buffer }, tsih: number): void {
    const header = encodeLoginResponse({
      transit: reply.transit,
      cont: reply.cont,
      csg: reply.csg,
      nsg: reply.nsg,
      isid: req.isid,
      tsih,
      itt: req.itt,
      statusClass: reply.status[0],
      statusDetail: reply.status[1],
      dataLength: reply.data.length,
      ...this.numbers(true),
    });
    this.send(header, reply.data);
  }

  // ---- text (SendTargets) -----------------------------------------------------------------

  private onText(pdu: RawPdu): void {
    const req = decodeTextRequest(pdu);
    this.ordered(req.cmdSN, req.immediate, () => {
      const max = this.params!.maxXmitDataSegmentLength;
      let body: Buffer;
      if (req.ttt !== NO_TAG && this.textContinuation && this.textContinuation.ttt === req.ttt) {
        body = this.textContinuation.rest;
      } else {
        this.textContinuation = undefined;
        let keys: KeyValues;
        try {
          keys = decodeKeys(req.data);
        } catch {
          this.reject(RejectReason.protocolError, pdu.bhs);
          return;
        }
        const answers: KeyValues = [];
        for (const [k, v] of keys) {
          if (k === 'SendTargets') answers.push(...this.sendTargets(v));
          else answers.push([k, 'NotUnderstood']);
        }
        body = encodeKeys(answers);
      }
      if (body.length > max) {
        const ttt = this.allocTtt();
        this.textContinuation = { itt: req.itt, ttt, rest: body.subarray(max) };
        this.send(encodeTextResponse({ final: false, cont: true, itt: req.itt, ttt, dataLength: max, ...this.numbers(true) }), body.subarray(0, max));
        return;
      }
      this.textContinuation = undefined;
      this.send(encodeTextResponse({ final: true, cont: false, itt: req.itt, ttt: NO_TAG, dataLength: body.length, ...this.numbers(true) }), body);
    });
  }

  private sendTargets(value: string): KeyValues {
    const out: KeyValues = [];
    const all = this.host.listTargets();
    const wanted = value === 'All' ? (this.discovery ? all : all.filter((t) => t === this.target)) : value === '' ? (this.target ? [this.target] : []) : all.filter((t) => t.iqn === value);
    for (const t of wanted) {
      out.push(['TargetName', t.iqn], ['TargetAddress', this.host.targetAddress()]);
    }
    return out;
  }

  // ---- NOP -------------------------------------------------------------------------------

  private onNopOut(pdu: RawPdu): void {
    const req = decodeNopOut(pdu);
    if (req.itt === NO_TAG) {
      // The answer to our ping (or a ping that wants no answer).
      if (req.ttt !== NO_TAG && req.ttt === this.pingTtt) this.pingTtt = undefined;
      return;
    }
    this.ordered(req.cmdSN, req.immediate, () => {
      const data = req.data.subarray(0, this.params!.maxXmitDataSegmentLength);
      this.send(encodeNopIn({ lunField: req.lunField, itt: req.itt, ttt: NO_TAG, dataLength: data.length, ...this.numbers(true) }), Buffer.from(data));
    });
  }

  // ---- logout ----------------------------------------------------------------------------

  private onLogout(pdu: RawPdu): void {
    const req = decodeLogoutRequest(pdu);
    this.ordered(req.cmdSN, req.immediate, () => {
      let response = 0;
      if (req.reason === 1 && req.cid !== this.cid) response = 1;
      else if (req.reason === 2) response = 2;
      else if (req.reason > 2) {
        this.reject(RejectReason.invalidPduField, pdu.bhs);
        return;
      }
      const tasks = [...this.tasks.values()].map((t) => t.done);
      void Promise.allSettled(tasks).then(() => {
        this.send(encodeLogoutResponse({ itt: req.itt, response, time2Wait: 0, time2Retain: 0, ...this.numbers(true) }));
        if (response === 0) {
          this.target?.disk.releaseReservations(this.nexus);
          void this.close('logout');
        }
      });
    });
  }

  // ---- task management -------------------------------------------------------------------

  private onTaskMgmt(pdu: RawPdu): void {
    const req = decodeTaskMgmtRequest(pdu);
    const cmdSNAtArrival = req.cmdSN;
    this.ordered(req.cmdSN, req.immediate, () => {
      void this.runTaskMgmt(req, cmdSNAtArrival).then((response) => {
        this.send(encodeTaskMgmtResponse({ itt: req.itt, response, ...this.numbers(true) }));
      });
    });
  }

  private async runTaskMgmt(req: TaskMgmtRequest, cmdSN: number): Promise<number> {
    if (this.discovery || !this.target) return TmfResponse.rejected;
    switch (req.func) {
      case TmfFunction.abortTask: {
        const task = this.tasks.get(req.refTaskTag);
        if (!task) {
          // Already answered (or aborted): it does not exist any more.
          if (this.retired.has(req.refTaskTag)) return TmfResponse.taskDoesNotExist;
          if (!snLess(req.refCmdSN, cmdSN)) return TmfResponse.taskDoesNotExist;
          if (this.aheadItt.get(req.refCmdSN) === req.refTaskTag) {
            // Received ahead of a CmdSN gap, not started: it must never run once the gap fills.
            this.ahead.set(req.refCmdSN, () => undefined);
            this.aheadItt.delete(req.refCmdSN);
          } else if (!this.ahead.has(req.refCmdSN)) {
            // Never received, numbered below this request: RFC 7143 §11.5.1 counts it received and
            // the abort done, so ExpCmdSN moves past it (else every later command waits for it forever).
            this.ordered(req.refCmdSN, false, () => undefined);
          }
          return TmfResponse.complete;
        }
        await this.abortTask(task);
        return TmfResponse.complete;
      }
      case TmfFunction.abortTaskSet:
      case TmfFunction.clearTaskSet:
        if (req.lun !== 0) return TmfResponse.lunDoesNotExist;
        this.dropQueuedBefore(cmdSN);
        if (req.func === TmfFunction.clearTaskSet) await this.host.resetTarget(this.target, 'clear', this.nexus);
        else await this.abortAll(0);
        return TmfResponse.complete;
      case TmfFunction.lunReset:
        if (req.lun !== 0) return TmfResponse.lunDoesNotExist;
        this.dropQueuedBefore(cmdSN);
        await this.host.resetTarget(this.target, 'lun', this.nexus);
        return TmfResponse.complete;
      case TmfFunction.targetWarmReset:
        this.dropQueuedBefore(cmdSN);
        await this.host.resetTarget(this.target, 'warm', this.nexus);
        return TmfResponse.complete;
      case TmfFunction.targetColdReset:
        this.dropQueuedBefore(cmdSN);
        await this.host.resetTarget(this.target, 'cold', this.nexus);
        return TmfResponse.complete;
      case TmfFunction.clearAca:
      case TmfFunction.taskReassign:
        return TmfResponse.notSupported;
      default:
        return TmfResponse.rejected;
    }
  }

  private async abortTask(task: ScsiTask): Promise<void> {
    task.aborted = true;
    this.retire(task);
    if (task.done) await task.done.catch(() => undefined);
  }

  /**
   * SCSI commands this initiator sent before an (immediate) abort or reset but that still wait
   * behind a CmdSN gap: they belong to the aborted task set, so they must never run once the gap
   * fills (their CmdSNs stay taken). Commands numbered after the request are left alone.
   */
  private dropQueuedBefore(cmdSN: number): void {
    if (this.aheadItt.size === 0) return;
    for (const sn of [...this.aheadItt.keys()]) {
      if (!snLess(sn, cmdSN)) continue;
      this.ahead.set(sn, () => undefined);
      this.aheadItt.delete(sn);
    }
  }

  async abortAll(lun?: number): Promise<void> {
    const victims = [...this.tasks.values()].filter((t) => lun === undefined || t.cmd.lun === lun);
    await Promise.all(victims.map((t) => this.abortTask(t)));
  }

  private retire(task: ScsiTask): void {
    // An aborted task that finishes later must not remove a newer task that reuses its tag.
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    const slot = this.retiredAt;
    const oldest = this.retiredRing[slot]!;
    // Forget the oldest unless its tag was retired again since (then a later slot holds it).
    if (oldest >= 0 && this.retired.get(oldest) === slot) this.retired.delete(oldest);
    this.retiredRing[slot] = task.itt;
    this.retired.set(task.itt, slot);
    this.retiredAt = (slot + 1) % RETIRED_KEEP;
  }

  // ---- SCSI commands ---------------------------------------------------------------------

  private onScsiCommand(pdu: RawPdu): void {
    const cmd = decodeScsiCommand(pdu);
    const placed = cmd.data.length > 0 ? this.claimPlaced(cmd) : undefined;
    // The usual case, next in order with nothing queued ahead and the window open: run it without a closure.
    if (!cmd.immediate && cmd.cmdSN === this.expCmdSN && this.ahead.size === 0 && !snLess(this.maxCmdSNSent, cmd.cmdSN)) {
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      this.startCommand(pdu, cmd, placed);
      return;
    }
    this.ordered(cmd.cmdSN, cmd.immediate, () => this.startCommand(pdu, cmd, placed), cmd.itt);
  }

  private startCommand(pdu: RawPdu, cmd: ScsiCommand, placed: { buffer: Buffer; lease: Lease | undefined } | undefined): void {
    const params = this.params!;
    if (this.tasks.has(cmd.itt)) {
      this.reject(RejectReason.taskInProgress, pdu.bhs);
      return;
    }
    if (cmd.data.length > 0 && (!cmd.write || !params.immediateData || cmd.data.length > Math.min(params.firstBurstLength, cmd.expectedLength))) {
      this.protocolFailure('SCSI Command carries more immediate data than negotiated', pdu.bhs);
      return;
    }
    const task = new ScsiTask(cmd, placed);
    this.tasks.set(cmd.itt, task);
    if (this.retired.size > 0) this.retired.delete(cmd.itt);
    const disk = this.target!.disk;
    if (cmd.write && cmd.expectedLength > 2 * disk.limits.maxTransferBlocks * disk.blockSize) {
      // Never buffer more than a command may carry; late Data-Out for it is dropped as retired.
      this.complete(task, { status: ScsiStatus.checkCondition, sense: invalidFieldInCdb(0, `expected data transfer length ${cmd.expectedLength} is too large`).sense });
      return;
    }
    if (!cmd.write || cmd.expectedLength === 0) {
      this.execute(task, undefined);
      return;
    }
    if (cmd.data.length > 0) task.accept(0, cmd.data);
    task.unsolicitedLimit = params.initialR2T ? cmd.data.length : Math.min(params.firstBurstLength, cmd.expectedLength);
    task.unsolicitedDone = cmd.final || params.initialR2T;
    task.nextR2tOffset = task.unsolicitedDone ? cmd.data.length : task.unsolicitedLimit;
    this.advanceWrite(task);
  }

  /** Issues R2Ts for data not yet asked for, or runs the command once all data is in. */
  private advanceWrite(task: ScsiTask): void {
    if (task.aborted) return;
    if (task.dataComplete) {
      if (!task.executing) this.execute(task, task.buffer);
      return;
    }
    if (!task.unsolicitedDone) return;
    const params = this.params!;
    const total = task.cmd.expectedLength;
    while (task.r2ts.size < params.maxOutstandingR2T && task.nextR2tOffset < total) {
      const offset = task.nextR2tOffset;
      const length = Math.min(params.maxBurstLength, total - offset);
      const ttt = this.allocTtt();
      task.r2ts.set(ttt, { ttt, offset, length, received: 0, nextDataSN: 0 });
      task.nextR2tOffset += length;
      this.send(encodeR2t({ lun: task.cmd.lun, itt: task.itt, ttt, r2tSN: task.r2tSN, bufferOffset: offset, desiredLength: length, ...this.numbers(false) }), undefined, true);
      task.r2tSN++;
    }
  }

  /**
   * A data segment spanning socket chunks is assembled straight into its command's buffer (one copy
   * instead of two): a write command's immediate data into a new buffer of its expected length
   * (claimed by onScsiCommand), a Data-Out at its offset. Only a hint: the handlers still check the
   * PDU, and a bad one ends the connection, so a command never runs with bytes a rejected PDU put there.
   */
  private placeData(bhs: Buffer, length: number): Buffer | undefined {
    if (this.phase !== 'full') return undefined;
    const opcode = bhs[0]! & 0x3f;
    if (opcode === Opcode.ScsiCommand) {
      const expected = bhs.readUInt32BE(20);
      const disk = this.target?.disk;
      // Only for a write of sane size whose buffer the data is a fair part of: the command may yet be
      // dropped (CmdSN outside the window), and a peer must not make us allocate far more than it sent.
      if ((bhs[1]! & 0x20) === 0 || !disk || length > expected || expected > Math.max(4 * length, 1 << 20)) return undefined;
      const lease = ioBuffers.acquire(expected);
      const buffer = lease ? lease.buffer : Buffer.allocUnsafe(expected);
      this.placedImmediate = { itt: bhs.readUInt32BE(16), buffer, lease };
      return buffer.subarray(0, length);
    }
    if (opcode !== Opcode.DataOut) return undefined;
    const task = this.tasks.get(bhs.readUInt32BE(16));
    if (!task || task.executing || task.aborted) return undefined;
    const offset = bhs.readUInt32BE(40);
    if (offset + length > task.cmd.expectedLength || offset !== task.received) return undefined;
    return task.placement(offset, length);
  }

  /** The buffer placeData assembled this command's immediate data in, if it did. */
  private claimPlaced(cmd: ScsiCommand): { buffer: Buffer; lease: Lease | undefined } | undefined {
    const placed = this.placedImmediate;
    if (!placed) return undefined;
    this.placedImmediate = undefined;
    if (placed.itt !== cmd.itt || cmd.data.buffer !== placed.buffer.buffer || cmd.data.byteOffset !== placed.buffer.byteOffset) return undefined;
    return placed;
  }

  private onDataOut(d: DataOut, bhs: Buffer): void {
    const task = this.tasks.get(d.itt);
    if (!task || task.executing) {
      if (this.retired.has(d.itt)) return; // data for a task we aborted: discard (RFC 7143 §4.2.3.3)
      this.reject(RejectReason.invalidPduField, bhs);
      return;
    }
    const total = task.cmd.expectedLength;
    const end = d.bufferOffset + d.data.length;
    if (end > total) {
      this.protocolFailure(`Data-Out past the expected data transfer length (${end} > ${total})`, bhs);
      return;
    }
    if (d.data.length > this.params!.maxRecvDataSegmentLength) {
      this.protocolFailure('Data-Out larger than MaxRecvDataSegmentLength', bhs);
      return;
    }
    if (d.ttt === NO_TAG) {
      // DataPDUInOrder=Yes: each unsolicited PDU starts where the data so far ends.
      if (task.unsolicitedDone || end > task.unsolicitedLimit || d.dataSN !== task.unsolicitedDataSN || d.bufferOffset !== task.received) {
        this.protocolFailure(`unexpected unsolicited Data-Out (DataSN ${d.dataSN}, offset ${d.bufferOffset})`, bhs);
        return;
      }
      task.unsolicitedDataSN++;
      task.accept(d.bufferOffset, d.data);
      if (d.final) {
        // The unsolicited burst may end short of FirstBurstLength: R2Ts cover the rest.
        task.unsolicitedDone = true;
        task.nextR2tOffset = task.received;
      }
    } else {
      const r2t = task.r2ts.get(d.ttt);
      // In order within the burst, and the burst is complete when its F bit comes.
      const short = d.final && r2t !== undefined && r2t.received + d.data.length !== r2t.length;
      if (!r2t || d.bufferOffset !== r2t.offset + r2t.received || end > r2t.offset + r2t.length || d.dataSN !== r2t.nextDataSN || short) {
        this.protocolFailure(`Data-Out does not match an outstanding R2T (TTT ${d.ttt}, DataSN ${d.dataSN}, offset ${d.bufferOffset})`, bhs);
        return;
      }
      r2t.nextDataSN++;
      r2t.received += d.data.length;
      task.accept(d.bufferOffset, d.data);
      if (d.final || r2t.received >= r2t.length) task.r2ts.delete(d.ttt);
    }
    this.advanceWrite(task);
  }

  private execute(task: ScsiTask, dataOut: Buffer | undefined): void {
    const target = this.target!;
    task.executing = true;
    const releaseDataOut = dataOut !== undefined ? task.releaser() : undefined;
    // The callback form: a plain READ/WRITE goes to the device and back without a promise.
    target.disk.executeCb(releaseDataOut ? { lun: task.cmd.lun, cdb: task.cmd.cdb, dataOut, nexus: this.nexus, releaseDataOut } : { lun: task.cmd.lun, cdb: task.cmd.cdb, dataOut, nexus: this.nexus }, (result) => {
      try {
        this.complete(task, result);
      } catch (err) {
        this.logger.error('SCSI command completion failed unexpectedly', { error: describeError(err) });
      } finally {
        task.finish();
      }
    });
  }

  private complete(task: ScsiTask, result: ScsiResult): void {
    if (task.aborted || this.phase !== 'full') {
      this.retire(task);
      result.release?.();
      return;
    }
    this.retire(task);
    const cmd = task.cmd;
    const edtl = cmd.expectedLength;
    const max = this.params!.maxXmitDataSegmentLength;
    const burst = this.params!.maxBurstLength;
    let residualFlag: number = Residual.none;
    let residualCount = 0;
    const wanted = result.data ? result.data.length : this.target!.disk.dataOutLength(cmd.cdb);
    // Data-out the CDB asks for but the initiator never sent (W clear) was not transferred, whatever its EDTL.
    const sent = result.data !== undefined || cmd.write || wanted === 0 ? edtl : 0;
    if (result.status === ScsiStatus.good || result.data) {
      if (wanted > sent) {
        residualFlag = Residual.overflow;
        residualCount = wanted - sent;
      } else if (wanted < sent) {
        residualFlag = Residual.underflow;
        residualCount = sent - wanted;
      }
    }
    let dataSN = 0;
    const data = result.data && cmd.read ? result.data.subarray(0, Math.min(result.data.length, edtl)) : undefined;
    const collapse = result.status === ScsiStatus.good && !result.sense;
    if (data && data.length > 0) {
      for (let off = 0; off < data.length; ) {
        // A Data-In PDU never crosses a burst (sequence) boundary: MaxBurstLength bounds each sequence.
        const n = Math.min(max, burst - (off % burst), data.length - off);
        const last = off + n >= data.length;
        // A pooled buffer goes back once the write carrying its last piece is done.
        const endOfBurst = last || (off + n) % burst === 0;
        const withStatus = last && collapse;
        const fields: DataIn = {
          final: endOfBurst,
          hasStatus: withStatus,
          status: result.status,
          residualFlag,
          residualCount,
          itt: task.itt,
          dataSN: dataSN++,
          bufferOffset: off,
          dataLength: n,
          // (the numbers as fields, not a spread object: this runs per IO)
          statSN: this.takeStatSN(withStatus),
          expCmdSN: this.expCmdSN,
          maxCmdSN: this.maxCmdSN,
        };
        const piece = off === 0 && n === data.length ? data : data.subarray(off, off + n);
        const onSent = last ? result.release : undefined;
        // The header straight into the send slab (small data copied behind it), else a Buffer of its own.
        const at = this.slabPdu(piece, onSent);
        if (at >= 0) {
          writeDataIn(this.outSlab, at, fields);
          this.scheduleFlush(n >= URGENT_DATA_IN);
        } else {
          this.send(encodeDataIn(fields), piece, n >= URGENT_DATA_IN, onSent);
        }
        off += n;
      }
      if (collapse) return;
    } else if (result.data && !cmd.read && result.data.length > 0) {
      // Data-in for a command sent without the R bit: nothing can be transferred.
      residualFlag = Residual.overflow;
      residualCount = result.data.length;
    }
    if (!(data && data.length > 0)) result.release?.();
    const senseSeg = result.sense ? encodeSenseSegment(result.sense) : undefined;
    const fields: ScsiResponse = {
      itt: task.itt,
      response: 0,
      status: result.status,
      residualFlag,
      residualCount,
      expDataSN: cmd.write ? task.r2tSN : dataSN,
      dataLength: senseSeg?.length ?? 0,
      statSN: this.takeStatSN(true),
      expCmdSN: this.expCmdSN,
      maxCmdSN: this.maxCmdSN,
    };
    const at = this.slabPdu(senseSeg);
    if (at >= 0) {
      writeScsiResponse(this.outSlab, at, fields);
      this.scheduleFlush(false);
    } else {
      this.send(encodeScsiResponse(fields), senseSeg);
    }
  }
}
