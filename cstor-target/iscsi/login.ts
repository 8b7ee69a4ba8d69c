// The login phase of one connection (RFC 7143 §6, §11.12-13): security stage (AuthMethod None or
// CHAP), operational stage (parameter negotiation), text continuation in both directions, and the
// checks that fail a login with a status class/detail.
import type { LoginRequest } from './pdu/login-request.ts';
import { LoginStatus } from './pdu/login-response.ts';
import { negotiateOperational, rfcDefaults, type SessionParams, type TargetLimits } from './negotiation.ts';
import { decodeKeys, encodeKeys, type KeyValues } from './text-keys.ts';
import { newChallenge, verifyChap, type ChapChallenge } from './chap.ts';
import type { IscsiTarget } from './target.ts';

export const Stage = { security: 0, operational: 1, fullFeature: 3 } as const;

export interface LoginContext {
  findTarget(iqn: string): IscsiTarget | undefined;
  readonly limits: TargetLimits;
  /** CHAP credentials for discovery sessions, when discovery requires authentication. */
  readonly discoveryChap?: { user: string; secret: string } | undefined;
}

/** One login response to send: header fields beyond the sequence numbers, and its text. */
export interface LoginReply {
  readonly transit: boolean;
  readonly cont: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly status: readonly [number, number];
  readonly data: Buffer;
  /** The login is over: full feature phase starts after this reply. */
  readonly complete: boolean;
  /** The login failed: close after this reply. */
  readonly failed: boolean;
  readonly reason?: string;
}

export interface LoginResult {
  readonly sessionType: 'Discovery' | 'Normal';
  readonly initiatorName: string;
  readonly target: IscsiTarget | undefined;
  readonly params: SessionParams;
}

type AuthStep = 'none-needed' | 'need-method' | 'need-algorithm' | 'need-response' | 'done';

export class LoginPhase {
  private first = true;
  private stage: number = Stage.security;
  private inbound: Buffer[] = [];
  private outbound: Buffer | undefined;
  private outboundHeader: { transit: boolean; csg: number; nsg: number; complete: boolean } | undefined;
  private sessionType: 'Discovery' | 'Normal' = 'Normal';
  private initiatorName = '';
  private target: IscsiTarget | undefined;
  private auth: AuthStep = 'none-needed';
  private challenge: ChapChallenge | undefined;
  private declaredMrdsl = false;
  private sentTpgt = false;
  readonly params: SessionParams;

  constructor(private readonly ctx: LoginContext) {
    this.params = rfcDefaults(ctx.limits);
  }

  result(): LoginResult {
    return { sessionType: this.sessionType, initiatorName: this.initiatorName, target: this.target, params: this.params };
  }

  handle(req: LoginRequest): LoginReply {
    // Our own continuation: the initiator sends an empty request for the next part.
    if (this.outbound && this.outboundHeader) return this.nextOutbound();
    if (req.versionMin > 0) return this.fail(LoginStatus.unsupportedVersion, `iSCSI version ${req.versionMin} not supported`);
    if (req.csg === 2 || req.csg === 3 || (req.transit && (req.nsg === 2 || req.nsg <= req.csg))) {
      return this.fail(LoginStatus.initiatorError, `bad login stage transition CSG=${req.csg} NSG=${req.nsg}`);
    }
    if (req.csg < this.stage) return this.fail(LoginStatus.initiatorError, `login stage went back from ${this.stage} to ${req.csg}`);
    this.stage = req.csg;
    this.inbound.push(req.data);
    if (this.inbound.reduce((n, b) => n + b.length, 0) > 65536) return this.fail(LoginStatus.initiatorError, 'login text longer than 64 KiB');
    if (req.cont) return { transit: false, cont: false, csg: req.csg, nsg: 0, status: LoginStatus.success, data: Buffer.alloc(0), complete: false, failed: false };
    let keys: KeyValues;
    try {
      keys = decodeKeys(Buffer.concat(this.inbound));
    } catch (err) {
      return this.fail(LoginStatus.initiatorError, (err as Error).message);
    }
    this.inbound = [];
    const get = (k: string): string | undefined => keys.find(([key]) => key === k)?.[1];
    const answers: KeyValues = [];

    if (this.first) {
      this.first = false;
      const name = get('InitiatorName');
      if (!name) return this.fail(LoginStatus.missingParameter, 'InitiatorName is missing');
      this.initiatorName = name;
      const st = get('SessionType') ?? 'Normal';
      if (st !== 'Normal' && st !== 'Discovery') return this.fail(LoginStatus.sessionTypeUnsupported, `SessionType ${st}`);
      this.sessionType = st;
      if (st === 'Normal') {
        const tn = get('TargetName');
        if (!tn) return this.fail(LoginStatus.missingParameter, 'TargetName is missing');
        this.target = this.ctx.findTarget(tn);
        if (!this.target) return this.fail(LoginStatus.targetNotFound, `no target ${tn}`);
      }
      const creds = this.sessionType === 'Normal' ? this.target?.chap : this.ctx.discoveryChap;
      this.auth = creds ? 'need-method' : 'none-needed';
      if (st === 'Normal') {
        answers.push(['TargetPortalGroupTag', '1']);
        this.sentTpgt = true;
        if (get('TargetAlias') === undefined && this.target) answers.push(['TargetAlias', this.target.alias]);
      }
    }

    const creds = this.sessionType === 'Normal' ? this.target?.chap : this.ctx.discoveryChap;
    if (req.csg === Stage.security) {
      const method = get('AuthMethod');
      if (method !== undefined) {
        const offered = method.split(',');
        if (creds) {
          if (!offered.includes('CHAP')) return this.fail(LoginStatus.authFailed, 'this target requires CHAP');
          answers.push(['AuthMethod', 'CHAP']);
          this.auth = 'need-algorithm';
        } else {
          if (!offered.includes('None')) return this.fail(LoginStatus.authFailed, `AuthMethod ${method}: only None is configured`);
          answers.push(['AuthMethod', 'None']);
        }
      }
      const alg = get('CHAP_A');
      if (alg !== undefined) {
        if (this.auth !== 'need-algorithm') return this.fail(LoginStatus.initiatorError, 'CHAP_A out of sequence');
        if (!alg.split(',').includes('5')) return this.fail(LoginStatus.authFailed, `CHAP_A ${alg}: only MD5 (5) is supported`);
        this.challenge = newChallenge();
        answers.push(['CHAP_A', '5'], ['CHAP_I', String(this.challenge.id)], ['CHAP_C', `0x${this.challenge.challenge.toString('hex')}`]);
        this.auth = 'need-response';
      }
      const chapN = get('CHAP_N');
      const chapR = get('CHAP_R');
      if (chapN !== undefined || chapR !== undefined) {
        if (this.auth !== 'need-response' || !this.challenge || !creds) return this.fail(LoginStatus.initiatorError, 'CHAP_N/CHAP_R out of sequence');
        if (!verifyChap(this.challenge, creds, chapN ?? '', chapR ?? '')) return this.fail(LoginStatus.authFailed, 'CHAP authentication failed');
        if (get('CHAP_I') !== undefined || get('CHAP_C') !== undefined) return this.fail(LoginStatus.authFailed, 'mutual CHAP is not supported');
        this.auth = 'done';
      }
    } else if (this.auth === 'need-method' || this.auth === 'need-algorithm' || this.auth === 'need-response') {
      return this.fail(LoginStatus.authFailed, 'authentication required before the operational stage');
    }

    const { answers: op, errors } = negotiateOperational(keys, this.params, this.ctx.limits, this.sessionType === 'Discovery');
    if (errors.length > 0) return this.fail(LoginStatus.initiatorError, errors.map((e) => e.message).join('; '));
    answers.push(...op);

    const authPending = this.auth !== 'none-needed' && this.auth !== 'done';
    const transit = req.transit && !authPending;
    const nsg = transit ? req.nsg : 0;
    const complete = transit && nsg === Stage.fullFeature;
    if (!this.declaredMrdsl && (req.csg === Stage.operational || complete)) {
      answers.push(['MaxRecvDataSegmentLength', String(this.ctx.limits.maxRecvDataSegmentLength)]);
      this.declaredMrdsl = true;
    }
    if (complete && this.sessionType === 'Normal' && !this.sentTpgt) answers.push(['TargetPortalGroupTag', '1']);
    const text = encodeKeys(answers);
    this.outbound = text;
    this.outboundHeader = { transit, csg: req.csg, nsg, complete };
    return this.nextOutbound();
  }

  /** Sends our text in pieces no larger than the initiator's receive limit (C bit on all but the last). */
  private nextOutbound(): LoginReply {
    const text = this.outbound!;
    const h = this.outboundHeader!;
    const max = this.params.maxXmitDataSegmentLength;
    if (text.length > max) {
      this.outbound = text.subarray(max);
      return { transit: false, cont: true, csg: h.csg, nsg: 0, status: LoginStatus.success, data: text.subarray(0, max), complete: false, failed: false };
    }
    this.outbound = undefined;
    this.outboundHeader = undefined;
    if (h.complete) this.stage = Stage.fullFeature;
    else if (h.transit) this.stage = h.nsg;
    return { transit: h.transit, cont: false, csg: h.csg, nsg: h.nsg, status: LoginStatus.success, data: text, complete: h.complete, failed: false };
  }

  private fail(status: readonly [number, number], reason: string): LoginReply {
    return { transit: false, cont: false, csg: this.stage, nsg: 0, status, data: Buffer.alloc(0), complete: false, failed: true, reason };
  }
}
