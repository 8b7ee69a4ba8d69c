import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { chapResponse } from './chap.ts';
import { LoginPhase, type LoginContext } from './login.ts';
import { defaultTargetLimits } from './negotiation.ts';
import type { LoginRequest } from './pdu/login-request.ts';
import { IscsiTarget } from './target.ts';
import { decodeKeys, encodeKeys, type KeyValues } from './text-keys.ts';

const plain = new IscsiTarget({ volume: 'v1', device: new MemoryBlockDevice(1 << 20), serial: 's' });
const secured = new IscsiTarget({ volume: 'v2', device: new MemoryBlockDevice(1 << 20), serial: 's', chap: { user: 'bob', secret: 'bob-secret-1' } });
const ctx: LoginContext = { limits: defaultTargetLimits, findTarget: (iqn) => [plain, secured].find((t) => t.iqn === iqn) };

function req(keys: KeyValues, o: Partial<LoginRequest> = {}): LoginRequest {
  return { transit: true, cont: false, csg: 1, nsg: 3, versionMax: 0, versionMin: 0, isid: Buffer.alloc(6), tsih: 0, itt: 1, cid: 0, cmdSN: 1, expStatSN: 0, data: encodeKeys(keys), ...o };
}

describe('iSCSI login phase', () => {
  it('logs a Normal session straight into full feature phase, declaring our limits', () => {
    const l = new LoginPhase(ctx);
    const r = l.handle(req([['InitiatorName', 'iqn.x:i'], ['TargetName', plain.iqn], ['MaxRecvDataSegmentLength', '65536'], ['ImmediateData', 'Yes']]));
    expect(r).to.include({ failed: false, complete: true, transit: true, nsg: 3 });
    const keys = Object.fromEntries(decodeKeys(r.data));
    expect(keys).to.include({ TargetPortalGroupTag: '1', MaxRecvDataSegmentLength: String(defaultTargetLimits.maxRecvDataSegmentLength), ImmediateData: 'Yes' });
    expect(l.result().params.maxXmitDataSegmentLength).to.equal(65536);
  });

  it('fails a missing target with 0x0203 and a missing InitiatorName with 0x0207', () => {
    expect(new LoginPhase(ctx).handle(req([['InitiatorName', 'i'], ['TargetName', 'iqn.nope']])).status).to.deep.equal([2, 3]);
    expect(new LoginPhase(ctx).handle(req([['TargetName', plain.iqn]])).status).to.deep.equal([2, 7]);
  });

  it('runs CHAP when the target has a secret, and refuses a bad response', () => {
    const l = new LoginPhase(ctx);
    const a = l.handle(req([['InitiatorName', 'i'], ['TargetName', secured.iqn], ['AuthMethod', 'None,CHAP']], { csg: 0, nsg: 1 }));
    expect(a.transit).to.equal(false);
    expect(Object.fromEntries(decodeKeys(a.data))).to.include({ AuthMethod: 'CHAP' });
    const b = l.handle(req([['CHAP_A', '7,5']], { csg: 0, nsg: 1 }));
    const kb = Object.fromEntries(decodeKeys(b.data));
    expect(kb.CHAP_A).to.equal('5');
    const resp = chapResponse(Number(kb.CHAP_I), 'bob-secret-1', Buffer.from(kb.CHAP_C!.slice(2), 'hex'));
    const c = l.handle(req([['CHAP_N', 'bob'], ['CHAP_R', `0x${resp.toString('hex')}`]], { csg: 0, nsg: 1 }));
    expect(c).to.include({ failed: false, transit: true, nsg: 1 });
    const d = l.handle(req([], { csg: 1, nsg: 3 }));
    expect(d.complete).to.equal(true);

    const bad = new LoginPhase(ctx);
    bad.handle(req([['InitiatorName', 'i'], ['TargetName', secured.iqn], ['AuthMethod', 'CHAP']], { csg: 0, nsg: 1 }));
    bad.handle(req([['CHAP_A', '5']], { csg: 0, nsg: 1 }));
    expect(bad.handle(req([['CHAP_N', 'bob'], ['CHAP_R', '0x00112233445566778899aabbccddeeff']], { csg: 0, nsg: 1 })).status).to.deep.equal([2, 1]);
    expect(new LoginPhase(ctx).handle(req([['InitiatorName', 'i'], ['TargetName', secured.iqn]])).status).to.deep.equal([2, 1]);
  });

  it('splits a long answer with the C bit and reassembles continued requests', () => {
    const l = new LoginPhase(ctx);
    const many: KeyValues = Array.from({ length: 400 }, (_, i) => [`X-test-${i}`, 'v'] as [string, string]);
    const first = l.handle(req([['InitiatorName', 'i'], ['TargetName', plain.iqn], ...many.slice(0, 200)], { cont: true }));
    expect(first).to.include({ cont: false, transit: false, failed: false });
    const parts = [l.handle(req(many.slice(200), { cont: false }))];
    while (parts[parts.length - 1]!.cont) parts.push(l.handle(req([])));
    expect(parts.length).to.be.greaterThan(1);
    expect(parts.every((p) => p.data.length <= 8192)).to.equal(true);
    expect(parts[parts.length - 1]!.complete).to.equal(true);
    const keys = decodeKeys(Buffer.concat(parts.map((p) => p.data)));
    expect(keys.filter(([, v]) => v === 'NotUnderstood')).to.have.length(400);
  });
});
