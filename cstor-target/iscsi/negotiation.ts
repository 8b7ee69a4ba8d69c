// Login operational parameter negotiation (RFC 7143 §13). The target's limits, the result of
// negotiating each key the initiator offers, and the answers to send back.
import type { KeyValues } from './text-keys.ts';

export interface TargetLimits {
  /** What we can receive in one PDU's data segment (declared to the initiator). */
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly maxOutstandingR2T: number;
  readonly defaultTime2Wait: number;
  readonly defaultTime2Retain: number;
}

export const defaultTargetLimits: TargetLimits = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 16776192,
  firstBurstLength: 262144,
  initialR2T: false,
  immediateData: true,
  maxOutstandingR2T: 1,
  defaultTime2Wait: 2,
  defaultTime2Retain: 0,
};

/** The session/connection parameters in force once login completes (RFC defaults until negotiated). */
export interface SessionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  maxConnections: number;
  initialR2T: boolean;
  immediateData: boolean;
  /** Our receive limit (declared). */
  maxRecvDataSegmentLength: number;
  /** The initiator's receive limit: our Data-In segments never exceed it. */
  maxXmitDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  maxOutstandingR2T: number;
  dataPduInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
}

export function rfcDefaults(limits: TargetLimits): SessionParams {
  return {
    headerDigest: false,
    dataDigest: false,
    maxConnections: 1,
    initialR2T: true,
    immediateData: true,
    maxRecvDataSegmentLength: limits.maxRecvDataSegmentLength,
    maxXmitDataSegmentLength: 8192,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    maxOutstandingR2T: 1,
    dataPduInOrder: true,
    dataSequenceInOrder: true,
    errorRecoveryLevel: 0,
  };
}

/** Keys handled elsewhere (identity, security) that operational negotiation must not answer. */
const handledElsewhere = new Set(['CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R', 'InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType', 'AuthMethod', 'TargetAlias', 'TargetAddress', 'TargetPortalGroupTag']);

export interface NegotiationError {
  readonly key: string;
  readonly message: string;
}

function parseNumber(v: string): number | undefined {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

function numberIn(v: string, lo: number, hi: number): number | undefined {
  const n = parseNumber(v);
  return n !== undefined && n >= lo && n <= hi ? n : undefined;
}

function yesNo(v: string): boolean | undefined {
  return v === 'Yes' ? true : v === 'No' ? false : undefined;
}

/**
 * Negotiates the operational keys in `offered` into `params`; returns the answers to send. Keys we do
 * not know get NotUnderstood; bad values get Reject (the login goes on, as §6.2 allows); a value
 * outside its legal range is a hard error (returned in `errors`).
 */
export function negotiateOperational(
  offered: KeyValues,
  params: SessionParams,
  limits: TargetLimits,
  discovery: boolean,
): { answers: KeyValues; errors: NegotiationError[] } {
  const answers: KeyValues = [];
  const errors: NegotiationError[] = [];
  const bad = (k: string, v: string): void => {
    answers.push([k, 'Reject']);
    errors.push({ key: k, message: `invalid value ${JSON.stringify(v)} for ${k}` });
  };
  for (const [k, v] of offered) {
    if (handledElsewhere.has(k)) continue;
    if (v === 'NotUnderstood' || v === 'Irrelevant' || v === 'Reject') continue;
    switch (k) {
      case 'HeaderDigest':
      case 'DataDigest': {
        const choices = v.split(',');
        const pick = choices.find((c) => c === 'None' || c === 'CRC32C');
        if (!pick) {
          answers.push([k, 'Reject']);
          break;
        }
        if (k === 'HeaderDigest') params.headerDigest = pick === 'CRC32C';
        else params.dataDigest = pick === 'CRC32C';
        answers.push([k, pick]);
        break;
      }
      case 'MaxConnections': {
        const n = numberIn(v, 1, 65535);
        if (n === undefined) bad(k, v);
        else answers.push([k, String((params.maxConnections = 1))]);
        break;
      }
      case 'InitialR2T': {
        const b = yesNo(v);
        if (b === undefined) bad(k, v);
        else if (discovery) answers.push([k, 'Irrelevant']);
        else {
          params.initialR2T = b || limits.initialR2T;
          answers.push([k, params.initialR2T ? 'Yes' : 'No']);
        }
        break;
      }
      case 'ImmediateData': {
        const b = yesNo(v);
        if (b === undefined) bad(k, v);
        else if (discovery) answers.push([k, 'Irrelevant']);
        else {
          params.immediateData = b && limits.immediateData;
          answers.push([k, params.immediateData ? 'Yes' : 'No']);
        }
        break;
      }
      case 'MaxRecvDataSegmentLength': {
        const n = numberIn(v, 512, 16777215);
        if (n === undefined) bad(k, v);
        else params.maxXmitDataSegmentLength = n; // declarative: ours is sent separately
        break;
      }
      case 'MaxBurstLength': {
        const n = numberIn(v, 512, 16777215);
        if (n === undefined) bad(k, v);
        else if (discovery) answers.push([k, 'Irrelevant']);
        else answers.push([k, String((params.maxBurstLength = Math.min(n, limits.maxBurstLength)))]);
        break;
      }
      case 'FirstBurstLength': {
        const n = numberIn(v, 512, 16777215);
        if (n === undefined) bad(k, v);
        else if (discovery) answers.push([k, 'Irrelevant']);
        else answers.push([k, String((params.firstBurstLength = Math.min(n, limits.firstBurstLength)))]);
        break;
      }
      case 'DefaultTime2Wait': {
        const n = numberIn(v, 0, 3600);
        if (n === undefined) bad(k, v);
        else answers.push([k, String((params.defaultTime2Wait = Math.max(n, limits.defaultTime2Wait)))]);
        break;
      }
      case 'DefaultTime2Retain': {
        const n = numberIn(v, 0, 3600);
        if (n === undefined) bad(k, v);
        else answers.push([k, String((params.defaultTime2Retain = Math.min(n, limits.defaultTime2Retain)))]);
        break;
      }
      case 'MaxOutstandingR2T': {
        const n = numberIn(v, 1, 65535);
        if (n === undefined) bad(k, v);
        else if (discovery) answers.push([k, 'Irrelevant']);
        else answers.push([k, String((params.maxOutstandingR2T = Math.min(n, limits.maxOutstandingR2T)))]);
        break;
      }
      case 'DataPDUInOrder':
      case 'DataSequenceInOrder': {
        const b = yesNo(v);
        if (b === undefined) bad(k, v);
        else if (discovery) answers.push([k, 'Irrelevant']);
        else {
          // We answer Yes (OR function): data arrives in order, which the reassembly relies on.
          if (k === 'DataPDUInOrder') params.dataPduInOrder = true;
          else params.dataSequenceInOrder = true;
          answers.push([k, 'Yes']);
        }
        break;
      }
      case 'ErrorRecoveryLevel': {
        const n = numberIn(v, 0, 2);
        if (n === undefined) bad(k, v);
        else answers.push([k, String((params.errorRecoveryLevel = 0))]);
        break;
      }
      case 'IFMarker':
      case 'OFMarker':
        answers.push([k, 'No']);
        break;
      case 'IFMarkInt':
      case 'OFMarkInt':
        answers.push([k, 'Irrelevant']);
        break;
      default:
        answers.push([k, 'NotUnderstood']);
    }
  }
  if (params.firstBurstLength > params.maxBurstLength) params.firstBurstLength = params.maxBurstLength;
  return { answers, errors };
}
