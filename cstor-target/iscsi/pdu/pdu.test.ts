// Golden bytes and round trips for the PDU encoders/decoders.
import { expect } from 'chai';
import { decodeBhsCommon, decodeLun, encodeLun, type RawPdu } from './bhs.ts';
import { decodeScsiCommand } from './scsi-command.ts';
import { Residual, encodeScsiResponse, encodeSenseSegment } from './scsi-response.ts';
import { encodeDataIn } from './data-in.ts';
import { decodeDataOut } from './data-out.ts';
import { encodeR2t } from './r2t.ts';
import { decodeLoginRequest } from './login-request.ts';
import { encodeLoginResponse } from './login-response.ts';
import { encodeReject } from './reject.ts';
import { decodeTaskMgmtRequest } from './task-mgmt-request.ts';
import { encodeTaskMgmtResponse } from './task-mgmt-response.ts';
import { encodeNopIn } from './nop-in.ts';
import { decodeLogoutRequest } from './logout-request.ts';
import { encodeLogoutResponse } from './logout-response.ts';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

function pdu(bhs: Buffer, data: Buffer = Buffer.alloc(0), ahs: Buffer = Buffer.alloc(0)): RawPdu {
  return { bhs, ahs, data };
}

const nums = { statSN: 0x11223344, expCmdSN: 0x10, maxCmdSN: 0x8f };

describe('iSCSI PDUs', () => {
  it('decodes a SCSI Command (READ 10) byte for byte', () => {
    const bhs = hex(`
      41 c1 0000 00 000000 0000000000000000
      0000abcd 00001000 00000007 00000003
      28000000002000000800000000000000`);
    const c = decodeScsiCommand(pdu(bhs));
    expect(c).to.include({ immediate: true, final: true, read: true, write: false, attr: 1, lun: 0, itt: 0xabcd, expectedLength: 4096, cmdSN: 7, expStatSN: 3 });
    expect(c.cdb.toString('hex')).to.equal('28000000002000000800000000000000');
  });

  it('appends an Extended CDB AHS to the CDB', () => {
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x01;
    bhs[4] = 2;
    bhs.fill(0xaa, 32, 48);
    // AHSLength 5 = the reserved byte + 4 CDB bytes past the first 16.
    const ahs = hex('0005 01 00 01020304');
    const c = decodeScsiCommand(pdu(bhs, Buffer.alloc(0), ahs));
    expect(c.cdb.length).to.equal(20);
    expect(c.cdb.subarray(16).toString('hex')).to.equal('01020304');
  });

  it('encodes a SCSI Response with underflow and sense', () => {
    const sense = encodeSenseSegment(Buffer.from([0x70, 0, 5]));
    const b = encodeScsiResponse({ itt: 9, response: 0, status: 2, residualFlag: Residual.underflow, residualCount: 512, expDataSN: 0, dataLength: sense.length, ...nums });
    expect(b.toString('hex')).to.equal(
      '21820002' + '00000005' + '0000000000000000' + '00000009' + '00000000' + '11223344' + '00000010' + '0000008f' + '00000000' + '00000000' + '00000200',
    );
    expect(sense.toString('hex')).to.equal('0003700005');
  });

  it('encodes a Data-In with the status bit, and one without', () => {
    const last = encodeDataIn({ final: true, hasStatus: true, status: 0, residualFlag: Residual.overflow, residualCount: 4, itt: 1, dataSN: 2, bufferOffset: 8192, dataLength: 4096, ...nums });
    expect(last.subarray(0, 8).toString('hex')).to.equal('2585000000001000');
    expect(last.readUInt32BE(24)).to.equal(nums.statSN);
    expect(last.readUInt32BE(36)).to.equal(2);
    expect(last.readUInt32BE(40)).to.equal(8192);
    expect(last.readUInt32BE(44)).to.equal(4);
    const mid = encodeDataIn({ final: false, hasStatus: false, status: 0, residualFlag: 0, residualCount: 9, itt: 1, dataSN: 0, bufferOffset: 0, dataLength: 4096, ...nums });
    expect(mid[1]).to.equal(0);
    expect(mid.readUInt32BE(24)).to.equal(0); // StatSN reserved without S
    expect(mid.readUInt32BE(20)).to.equal(0xffffffff);
  });

  it('encodes an R2T', () => {
    const b = encodeR2t({ lun: 0, itt: 5, ttt: 6, r2tSN: 1, bufferOffset: 65536, desiredLength: 262144, ...nums });
    expect(b.toString('hex')).to.equal(
      '31800000' + '00000000' + '0000000000000000' + '00000005' + '00000006' + '11223344' + '00000010' + '0000008f' + '00000001' + '00010000' + '00040000',
    );
  });

  it('decodes a Data-Out', () => {
    const bhs = hex('05800000 00000200 0000000000000000 00000005 00000006 00000000 00000003 00000000 00000001 00000400 00000000');
    expect(decodeDataOut(pdu(bhs, Buffer.alloc(512)))).to.include({ final: true, itt: 5, ttt: 6, expStatSN: 3, dataSN: 1, bufferOffset: 1024 });
  });

  it('decodes a Login Request and encodes its response', () => {
    const bhs = hex('43870000 00000010 802345678912 0000 00000001 00010000 00000007 00000000 00000000000000000000000000000000');
    const req = decodeLoginRequest(pdu(bhs));
    expect(req).to.include({ transit: true, cont: false, csg: 1, nsg: 3, versionMax: 0, versionMin: 0, tsih: 0, itt: 1, cid: 1, cmdSN: 7 });
    expect(req.isid.toString('hex')).to.equal('802345678912');
    const res = encodeLoginResponse({ transit: true, cont: false, csg: 1, nsg: 3, isid: req.isid, tsih: 0x1234, itt: 1, statusClass: 2, statusDetail: 3, dataLength: 0, ...nums });
    expect(res.subarray(0, 16).toString('hex')).to.equal('2387000000000000' + '8023456789121234');
    expect([res[36], res[37]]).to.deep.equal([2, 3]);
  });

  it('encodes Reject, TMF response, NOP-In and Logout response', () => {
    const rej = encodeReject({ reason: 5, dataSN: 0, ...nums });
    expect(rej.subarray(0, 8).toString('hex')).to.equal('3f80050000000030');
    expect(rej.readUInt32BE(16)).to.equal(0xffffffff);
    const tmf = encodeTaskMgmtResponse({ itt: 3, response: 1, ...nums });
    expect(tmf.subarray(0, 4).toString('hex')).to.equal('22800100');
    const nop = encodeNopIn({ lunField: encodeLun(0), itt: 0xffffffff, ttt: 77, dataLength: 0, ...nums });
    expect(nop.readUInt32BE(16)).to.equal(0xffffffff);
    expect(nop.readUInt32BE(20)).to.equal(77);
    const lo = encodeLogoutResponse({ itt: 4, response: 0, time2Wait: 2, time2Retain: 0, ...nums });
    expect(lo.subarray(0, 4).toString('hex')).to.equal('26800000');
    expect(lo.readUInt16BE(40)).to.equal(2);
  });

  it('decodes TMF and Logout requests', () => {
    const tmf = hex('42810000 00000000 0001000000000000 00000009 00000004 00000011 00000002 00000010 00000000 0000000000000000');
    expect(decodeTaskMgmtRequest(pdu(tmf))).to.include({ immediate: true, func: 1, lun: 1, itt: 9, refTaskTag: 4, cmdSN: 0x11, refCmdSN: 0x10 });
    const lo = hex('46800000 00000000 0000000000000000 00000002 00010000 00000005 00000003 00000000000000000000000000000000');
    expect(decodeLogoutRequest(pdu(lo))).to.include({ immediate: true, reason: 0, itt: 2, cid: 1, cmdSN: 5 });
  });

  it('reads the common header fields and LUN formats', () => {
    const h = decodeBhsCommon(hex('41c1 0000 02 000123 0000000000000000 deadbeef' + '00'.repeat(28)));
    expect(h).to.include({ immediate: true, opcode: 1, final: true, totalAhsLength: 2, dataSegmentLength: 0x123, itt: 0xdeadbeef });
    expect(decodeLun(encodeLun(5))).to.equal(5);
    expect(decodeLun(encodeLun(300))).to.equal(300);
    expect(decodeLun(hex('c000000000000000'))).to.equal(0xffff);
  });

  it('refuses a truncated header', () => {
    expect(() => decodeScsiCommand(pdu(Buffer.alloc(20)))).to.throw(/truncated/);
  });
});
