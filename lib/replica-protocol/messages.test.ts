import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import type { MessageBody } from './codec.ts';
import { encodeFrame } from './frame.ts';
import { decodeHeader, headerSize, maxIoBytes, type Frame } from './header.ts';
import { opcodes } from './opcodes.ts';
import { decodeErrorReply, encodeErrorReply } from './messages/error-reply.ts';
import * as ilb from './messages/import-layer-begin.ts';
import * as ile from './messages/import-layer-end.ts';
import * as ilw from './messages/import-layer-write.ts';
import * as open from './messages/open.ts';
import * as rhs from './messages/read-head-since.ts';
import * as rl from './messages/read-layer.ts';
import * as read from './messages/read.ts';
import * as rs from './messages/rebuild-start.ts';
import * as status from './messages/replica-status.ts';
import * as sc from './messages/snapshot-create.ts';
import * as sd from './messages/snapshot-destroy.ts';
import * as sl from './messages/snapshot-list.ts';
import * as stats from './messages/stats.ts';
import * as sync from './messages/sync.ts';
import * as unmap from './messages/unmap.ts';
import * as win from './messages/write-if-newer.ts';
import * as write from './messages/write.ts';

/** Encodes a body as a whole frame and decodes it back, as the wire would. */
function wire(opcode: number, body: MessageBody, status = 0): Frame {
  const bytes = Buffer.concat(encodeFrame({ opcode, seq: 1, reply: false, status }, body));
  return { header: decodeHeader(bytes.subarray(0, headerSize)), payload: bytes.subarray(headerSize) };
}

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

describe('lib/replica-protocol/messages', () => {
  describe('golden bytes', () => {
    it('OPEN request', () => {
      const body = open.encodeOpenRequest({ volume: 'pv-1', size: 1 << 20, blockSize: 4096, replicationFactor: 3, targetId: 't' });
      expect(Buffer.concat(body.payload)).to.deep.equal(
        hex(
          '0000100000000000' + // size 1 MiB
            '00100000' + // blockSize 4096
            '03' + // replicationFactor
            '0400' + '70762d31' + // "pv-1"
            '0100' + '74', // "t"
        ),
      );
    });
    it('SNAPSHOT_LIST reply', () => {
      const body = sl.encodeSnapshotListReply([{ name: 's1', ioSeq: 5, createdAt: 1000, usedBytes: 4096 }]);
      expect(Buffer.concat(body.payload)).to.deep.equal(
        hex('01000000' + '0500000000000000' + 'e803000000000000' + '0010000000000000' + '0200' + '7331'),
      );
    });
    it('READ_HEAD_SINCE reply (run page)', () => {
      const body = rhs.encodeReadHeadSinceReply({ runs: [{ offset: 512, data: Buffer.from([0xaa, 0xbb]), ioSeq: 9 }], next: 3 });
      expect(Buffer.concat(body.payload)).to.deep.equal(
        hex('01' + '0300000000000000' + '01000000' + '0002000000000000' + '01' + '0900000000000000' + '02000000' + 'aabb'),
      );
    });
    it('error reply', () => {
      const body = encodeErrorReply(new CstorError('not_found', 'no'));
      expect(body.status).to.equal(2);
      expect(Buffer.concat(body.payload)).to.deep.equal(Buffer.from('no'));
      const f = wire(opcodes.open, body, body.status);
      const e = decodeErrorReply(f, 'OPEN');
      expect(e.code).to.equal('not_found');
      expect(e.message).to.equal('OPEN: no');
    });
  });

  describe('round trips', () => {
    it('every request', () => {
      const req = { volume: 'vol-a', size: 2 ** 40, blockSize: 512, replicationFactor: 1, targetId: 'target-x' };
      expect(open.decodeOpenRequest(wire(1, open.encodeOpenRequest(req)))).to.deep.equal(req);
      expect(read.decodeReadRequest(wire(2, read.encodeReadRequest({ offset: 8192, length: 4096 })))).to.deep.equal({ offset: 8192, length: 4096 });
      const data = Buffer.alloc(1024, 3);
      expect(write.decodeWriteRequest(wire(3, write.encodeWriteRequest({ offset: 512, data, ioSeq: 77 })))).to.deep.equal({ offset: 512, data, ioSeq: 77 });
      expect(unmap.decodeUnmapRequest(wire(5, unmap.encodeUnmapRequest({ offset: 0, length: 2 ** 33, ioSeq: 4 })))).to.deep.equal({
        offset: 0,
        length: 2 ** 33,
        ioSeq: 4,
      });
      expect(sc.decodeSnapshotCreateRequest(wire(8, sc.encodeSnapshotCreateRequest({ name: 'pv_snap_123', ioSeq: 9 })))).to.deep.equal({ name: 'pv_snap_123', ioSeq: 9 });
      expect(sd.decodeSnapshotDestroyRequest(wire(9, sd.encodeSnapshotDestroyRequest('s')))).to.deep.equal({ name: 's' });
      expect(rl.decodeReadLayerRequest(wire(11, rl.encodeReadLayerRequest({ name: 'snap', cursor: 17, maxBytes: 1 << 20 })))).to.deep.equal({
        name: 'snap',
        cursor: 17,
        maxBytes: 1 << 20,
      });
      expect(rhs.decodeReadHeadSinceRequest(wire(12, rhs.encodeReadHeadSinceRequest({ sinceIoSeq: 5, cursor: 0, maxBytes: 100 })))).to.deep.equal({
        sinceIoSeq: 5,
        cursor: 0,
        maxBytes: 100,
      });
      expect(rs.decodeRebuildStartRequest(wire(13, rs.encodeRebuildStartRequest(null)))).to.deep.equal({ keepThrough: null });
      expect(rs.decodeRebuildStartRequest(wire(13, rs.encodeRebuildStartRequest('s1')))).to.deep.equal({ keepThrough: 's1' });
      expect(ilb.decodeImportLayerBeginRequest(wire(14, ilb.encodeImportLayerBeginRequest({ name: 's1', ioSeq: 3 })))).to.deep.equal({ name: 's1', ioSeq: 3 });
      expect(ilw.decodeImportLayerWriteRequest(wire(15, ilw.encodeImportLayerWriteRequest({ name: 's1', offset: 4096, data })))).to.deep.equal({
        name: 's1',
        offset: 4096,
        data,
      });
      expect(ile.decodeImportLayerEndRequest(wire(16, ile.encodeImportLayerEndRequest('s1')))).to.deep.equal({ name: 's1' });
      expect(win.decodeWriteIfNewerRequest(wire(17, win.encodeWriteIfNewerRequest({ offset: 0, data, ioSeq: 2 })))).to.deep.equal({ offset: 0, data, ioSeq: 2 });
    });

    it('every reply', () => {
      const st = { volume: 'v', mode: 'Rebuilding' as const, checkpointedIoSeq: 99, size: 1 << 30, blockSize: 4096, inflightRead: 3, inflightWrite: 4, upTime: 12 };
      expect(open.decodeOpenReply(wire(1, open.encodeOpenReply(st)))).to.deep.equal(st);
      expect(status.decodeStatusReply(wire(6, status.encodeStatusReply(st)))).to.deep.equal(st);
      expect(read.decodeReadReply(wire(2, read.encodeReadReply(Buffer.alloc(8, 1))), 8)).to.deep.equal(Buffer.alloc(8, 1));
      expect(sync.decodeSyncReply(wire(4, sync.encodeSyncReply(1234)))).to.equal(1234);
      const s = { reads: 1, writes: 2, readBytes: 3, writeBytes: 2 ** 45, usedBytes: 5, snapshots: 6 };
      expect(stats.decodeStatsReply(wire(7, stats.encodeStatsReply(s)))).to.deep.equal(s);
      const snaps = [
        { name: 'a', ioSeq: 1, createdAt: 1700000000000, usedBytes: 0 },
        { name: 'b_c_123', ioSeq: 8, createdAt: 1700000000001, usedBytes: 512 },
      ];
      expect(sl.decodeSnapshotListReply(wire(10, sl.encodeSnapshotListReply(snaps)))).to.deep.equal(snaps);
      const page = { runs: [{ offset: 0, data: Buffer.alloc(512, 1) }, { offset: 4096, data: Buffer.alloc(1024, 2) }], next: null };
      expect(rl.decodeReadLayerReply(wire(11, rl.encodeReadLayerReply(page)))).to.deep.equal(page);
      const head = { runs: [{ offset: 0, data: Buffer.alloc(512, 1), ioSeq: 5 }], next: 1 };
      expect(rhs.decodeReadHeadSinceReply(wire(12, rhs.encodeReadHeadSinceReply(head)))).to.deep.equal(head);
    });
  });

  describe('bad payloads', () => {
    it('refuses truncated payloads with a protocol error naming the message', () => {
      const body = open.encodeOpenRequest({ volume: 'pv-1', size: 1, blockSize: 512, replicationFactor: 1, targetId: 't' });
      const f = wire(1, body);
      for (let n = 0; n < f.payload.length; n++) {
        expect(() => open.decodeOpenRequest({ header: f.header, payload: f.payload.subarray(0, n) }))
          .to.throw(CstorError)
          .with.property('code', 'protocol');
      }
      const page = wire(12, rhs.encodeReadHeadSinceReply({ runs: [{ offset: 0, data: Buffer.alloc(64), ioSeq: 1 }], next: null }));
      expect(() => rhs.decodeReadHeadSinceReply({ header: page.header, payload: page.payload.subarray(0, 40) })).to.throw(/READ_HEAD_SINCE reply truncated/);
    });
    it('refuses trailing bytes and huge counts', () => {
      const f = wire(8, sc.encodeSnapshotCreateRequest({ name: 's', ioSeq: 1 }));
      expect(() => sc.decodeSnapshotCreateRequest({ header: f.header, payload: Buffer.concat([f.payload, Buffer.from([0])]) })).to.throw(/1 unexpected trailing bytes/);
      const lying = Buffer.from('01' + 'ffffffff', 'hex');
      expect(() => sl.decodeSnapshotListReply({ header: f.header, payload: Buffer.concat([lying.subarray(1), Buffer.alloc(0)]) })).to.throw(/count 4294967295 exceeds/);
      const runs = Buffer.from('00' + '0000000000000000' + 'ffffff0f', 'hex');
      expect(() => rl.decodeReadLayerReply({ header: f.header, payload: runs })).to.throw(/run count 268435455 cannot fit/);
    });
    it('refuses oversized IO on both sides', () => {
      expect(() => read.encodeReadRequest({ offset: 0, length: maxIoBytes + 1 })).to.throw(CstorError).with.property('code', 'invalid');
      const f = wire(2, { payload: [Buffer.from([1, 0, 0, 0x02])] });
      expect(() => read.decodeReadRequest(f)).to.throw(CstorError).with.property('code', 'too_large');
      expect(() => write.encodeWriteRequest({ offset: 0, data: Buffer.alloc(maxIoBytes + 1), ioSeq: 1 })).to.throw(/exceed the limit/);
      expect(() => write.encodeWriteRequest({ offset: -1, data: Buffer.alloc(1), ioSeq: 1 })).to.throw(/offset: -1 is not a non-negative safe integer/);
    });
    it('refuses an unknown replica mode', () => {
      const st = { volume: 'v', mode: 'New' as const, checkpointedIoSeq: 0, size: 0, blockSize: 512, inflightRead: 0, inflightWrite: 0, upTime: 0 };
      const f = wire(6, status.encodeStatusReply(st));
      f.payload[0] = 7;
      expect(() => status.decodeStatusReply(f)).to.throw(/unknown replica mode 7/);
    });
  });
});
