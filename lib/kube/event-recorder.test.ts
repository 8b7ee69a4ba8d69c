import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { Writable } from 'node:stream';
import { EventRecorder, type EventClient } from './event-recorder.ts';
import { FakeClock } from './fake-clock.ts';
import type { ObjectRef } from './resource-client.ts';
import type { CoreEvent } from './types/core.ts';
import type { VolumeSnapshot } from './types/volume-snapshot.ts';

class FakeEvents implements EventClient {
  readonly events = new Map<string, CoreEvent>();
  fail: CstorError | undefined;
  async create(obj: CoreEvent): Promise<CoreEvent> {
    if (this.fail) throw this.fail;
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    if (this.events.has(key)) throw new CstorError('already_exists', key);
    this.events.set(key, structuredClone(obj));
    return obj;
  }
  async mergePatch(ref: ObjectRef, patch: object): Promise<CoreEvent> {
    if (this.fail) throw this.fail;
    const ev = this.events.get(`${ref.namespace}/${ref.name}`);
    if (!ev) throw new CstorError('not_found', 'events not found');
    Object.assign(ev, patch);
    return ev;
  }
}

const snap: VolumeSnapshot = {
  apiVersion: 'volumesnapshot.external-storage.k8s.io/v1',
  kind: 'VolumeSnapshot',
  metadata: { name: 'snap1', namespace: 'default', uid: 'u-1', resourceVersion: '9' },
  spec: { persistentVolumeClaimName: 'pvc1' },
};

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ component: 'test', stream }), lines };
}

describe('EventRecorder', () => {
  it('creates an Event with the object reference, source and timestamps', async () => {
    const client = new FakeEvents();
    const clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
    const rec = new EventRecorder({ client, component: 'snapshot-controller', logger: captureLogger().logger, clock });
    await rec.event(snap, 'Warning', 'SnapshotCreateFailed', 'volume pv1 is not Healthy');
    expect(client.events.size).to.equal(1);
    const ev = [...client.events.values()][0]!;
    expect(ev.metadata.namespace).to.equal('default');
    expect(ev.metadata.name).to.match(/^snap1\.[0-9a-f]+$/);
    expect(ev.involvedObject).to.deep.equal({ kind: 'VolumeSnapshot', apiVersion: 'volumesnapshot.external-storage.k8s.io/v1', name: 'snap1', namespace: 'default', uid: 'u-1', resourceVersion: '9' });
    expect(ev).to.include({ type: 'Warning', reason: 'SnapshotCreateFailed', message: 'volume pv1 is not Healthy', count: 1, firstTimestamp: '2026-01-02T03:04:05Z', lastTimestamp: '2026-01-02T03:04:05Z', reportingComponent: 'snapshot-controller' });
    expect(ev.source).to.deep.equal({ component: 'snapshot-controller', host: 'snapshot-controller' });
  });

  it('aggregates repeats of the same object, reason and message into one Event with a count', async () => {
    const client = new FakeEvents();
    const clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
    const rec = new EventRecorder({ client, component: 'c', logger: captureLogger().logger, clock });
    // concurrent repeats: serialised per key, so still one Event
    await Promise.all([rec.event(snap, 'Warning', 'Failed', 'm'), rec.event(snap, 'Warning', 'Failed', 'm'), rec.event(snap, 'Warning', 'Failed', 'm')]);
    await clock.advance(60_000);
    await rec.event(snap, 'Warning', 'Failed', 'm');
    await rec.event(snap, 'Warning', 'Failed', 'another message');
    await rec.event({ kind: 'PersistentVolume', name: 'pv1', uid: 'u-pv' }, 'Normal', 'Released', 'x');
    const events = [...client.events.values()];
    expect(events).to.have.length(3);
    const agg = events.find((e) => e.message === 'm')!;
    expect(agg.count).to.equal(4);
    expect(agg.firstTimestamp).to.equal('2026-01-02T03:04:05Z');
    expect(agg.lastTimestamp).to.equal('2026-01-02T03:05:05Z');
    const pvEvent = events.find((e) => e.involvedObject.kind === 'PersistentVolume')!;
    expect(pvEvent.metadata.namespace, 'cluster-scoped objects: events in default').to.equal('default');
  });

  it('starts a new Event when the aggregated one is gone, and never throws (logs a warning)', async () => {
    const client = new FakeEvents();
    const { logger, lines } = captureLogger();
    const rec = new EventRecorder({ client, component: 'c', logger, clock: new FakeClock() });
    await rec.event(snap, 'Normal', 'Ready', 'ok');
    client.events.clear(); // expired by the server
    await rec.event(snap, 'Normal', 'Ready', 'ok');
    expect([...client.events.values()].map((e) => e.count)).to.deep.equal([1]);
    client.fail = new CstorError('unavailable', 'API server down');
    await rec.event(snap, 'Normal', 'Ready', 'other');
    const warn = lines.find((l) => l.level === 'warn');
    expect(warn).to.include({ message: 'could not record event', reason: 'Ready', object: 'VolumeSnapshot/default/snap1' });
    expect(String(warn?.error)).to.contain('API server down');
  });
});
