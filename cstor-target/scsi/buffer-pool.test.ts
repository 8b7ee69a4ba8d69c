import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import { BufferPool } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('serves exactly the size asked for, from power-of-two slabs, and only within its range', () => {
    const pool = new BufferPool({ minSize: 1024, maxSize: 8192 });
    expect(pool.acquire(1023)).to.equal(undefined);
    expect(pool.acquire(8193)).to.equal(undefined);
    const a = pool.acquire(3000)!;
    expect(a.buffer.length).to.equal(3000);
    expect(a.buffer.buffer.byteLength).to.equal(4096);
    expect(pool.acquire(8192)!.buffer.length).to.equal(8192);
  });

  it('hands a released buffer to the next lease of its size class, and ignores a second release', () => {
    const pool = new BufferPool({ minSize: 1024, maxSize: 8192 });
    const a = pool.acquire(4096)!;
    a.buffer.fill(7);
    a.release();
    a.release();
    expect(pool.freeBytesHeld).to.equal(4096);
    const b = pool.acquire(3500)!;
    expect(b.buffer.buffer).to.equal(a.buffer.buffer);
    expect(pool.reused).to.equal(1);
    // The second release of `a` did not put the slab back twice: a third lease gets a new one.
    const c = pool.acquire(4096)!;
    expect(c.buffer.buffer).to.not.equal(b.buffer.buffer);
    expect(pool.acquire(1024)!.buffer.buffer).to.not.equal(a.buffer.buffer);
  });

  it('keeps at most maxFreeBytes of free buffers; leases never given back are simply lost', () => {
    const pool = new BufferPool({ minSize: 1024, maxSize: 4096, maxFreeBytes: 8192 });
    const leases = [1, 2, 3].map(() => pool.acquire(4096)!);
    leases.forEach((l) => l.release());
    expect(pool.freeBytesHeld).to.equal(8192);
    pool.acquire(4096); // dropped, never released
    expect(pool.freeBytesHeld).to.equal(4096);
  });

  it('refuses sizes that are not powers of two', () => {
    try {
      new BufferPool({ minSize: 1000 });
      expect.fail('accepted');
    } catch (err) {
      expect(hasErrorCode(err, 'invalid')).to.equal(true);
    }
  });
});
