import { expect } from 'chai';
import { PersistentReservations, PrType, ReservationConflictError } from './persistent-reservations.ts';

function out(sa: number, type = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5f;
  c[1] = sa;
  c[2] = type;
  c.writeUInt32BE(24, 5);
  return c;
}

function params(key: bigint, saKey: bigint): Buffer {
  const p = Buffer.alloc(24);
  p.writeBigUInt64BE(key, 0);
  p.writeBigUInt64BE(saKey, 8);
  return p;
}

function inCdb(sa: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5e;
  c[1] = sa;
  c.writeUInt16BE(4096, 7);
  return c;
}

describe('PersistentReservations', () => {
  it('registers keys, reads them back, and bumps the generation', () => {
    const pr = new PersistentReservations();
    pr.out('a', out(0), params(0n, 0xaan));
    pr.out('b', out(0), params(0n, 0xbbn));
    const keys = pr.in(inCdb(0));
    expect(keys.readUInt32BE(0)).to.equal(2);
    expect(keys.readUInt32BE(4)).to.equal(16);
    expect([keys.readBigUInt64BE(8), keys.readBigUInt64BE(16)]).to.deep.equal([0xaan, 0xbbn]);
    expect(() => pr.out('a', out(0), params(0x11n, 0x12n))).to.throw(ReservationConflictError);
    pr.out('a', out(0), params(0xaan, 0n)); // unregister
    expect(pr.in(inCdb(0)).readUInt32BE(4)).to.equal(8);
  });

  it('enforces WRITE EXCLUSIVE and EXCLUSIVE ACCESS against other nexuses', () => {
    const pr = new PersistentReservations();
    pr.out('a', out(0), params(0n, 1n));
    pr.out('a', out(1, PrType.writeExclusive), params(1n, 0n));
    expect(pr.allows('b', 'read')).to.equal(true);
    expect(pr.allows('b', 'write')).to.equal(false);
    expect(pr.allows('a', 'write')).to.equal(true);
    const r = pr.in(inCdb(1));
    expect(r.readUInt32BE(4)).to.equal(16);
    expect(r.readBigUInt64BE(8)).to.equal(1n);
    expect(r[21]).to.equal(PrType.writeExclusive);
    pr.out('a', out(2, PrType.writeExclusive), params(1n, 0n));
    pr.out('a', out(1, PrType.exclusiveAccess), params(1n, 0n));
    expect(pr.allows('b', 'read')).to.equal(false);
  });

  it('lets registrants in with the registrants-only and all-registrants types', () => {
    const pr = new PersistentReservations();
    pr.out('a', out(0), params(0n, 1n));
    pr.out('b', out(0), params(0n, 2n));
    pr.out('a', out(1, PrType.exclusiveAccessRegistrantsOnly), params(1n, 0n));
    expect(pr.allows('b', 'write')).to.equal(true);
    expect(pr.allows('c', 'read')).to.equal(false);
  });

  it('PREEMPT takes the reservation and removes the preempted registration; CLEAR drops everything', () => {
    const pr = new PersistentReservations();
    pr.out('a', out(0), params(0n, 1n));
    pr.out('b', out(0), params(0n, 2n));
    pr.out('a', out(1, PrType.writeExclusive), params(1n, 0n));
    pr.out('b', out(4, PrType.exclusiveAccess), params(2n, 1n));
    expect(pr.allows('a', 'read')).to.equal(false);
    expect(pr.allows('b', 'write')).to.equal(true);
    expect(pr.in(inCdb(0)).readUInt32BE(4)).to.equal(8);
    pr.out('b', out(3), params(2n, 0n));
    expect(pr.hasReservation).to.equal(false);
    expect(pr.in(inCdb(0)).readUInt32BE(4)).to.equal(0);
  });

  it('reports capabilities and full status, and refuses unknown service actions', () => {
    const pr = new PersistentReservations();
    expect(pr.in(inCdb(2)).readUInt16BE(0)).to.equal(8);
    pr.out('iqn.x:i,i,0x00023d000001', out(0), params(0n, 7n));
    const full = pr.in(inCdb(3));
    expect(full.readUInt32BE(4)).to.be.greaterThan(24);
    expect(full.subarray(8 + 28).toString()).to.contain('iqn.x:i,i,0x00023d000001');
    expect(() => pr.in(inCdb(9))).to.throw(/service action/);
  });
});
