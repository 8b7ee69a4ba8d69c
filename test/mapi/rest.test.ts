// m-apiserver's REST API (DESIGN.md §4) through axios against a real `cstor mapi` process on a
// real kube-lite: volumes and snapshots created, read, listed, deleted; a clone on its source's
// pools; bad input answered with the right status and a message naming the problem; idempotency;
// a flow failing mid-way rolled back with the failed task named; metrics, health, request logs;
// templates read at run time (an edit changes the very next request; with --template-cache watch,
// the requests after its watch event).
import axios, { type AxiosInstance } from 'axios';
import { expect } from 'chai';
import type { KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { stopAll } from '../support/daemon.ts';
import { cas, ns, startMapiStack, type MapiStack } from './support.ts';

interface CasVolume {
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: { capacity: string; iqn: string; targetPortal: string; targetIP: string; targetPort: string; replicas: number; casType: string; fsType: string; lun: number };
  status: { Phase: string; Message: string; Reason: string };
}

const poolOf = (o: KubeObject): string => String((o.metadata.labels as Record<string, string> | undefined)?.['cstorpool.openebs.io/name']);

describe('m-apiserver REST API (cstor mapi on kube-lite)', function () {
  this.timeout(120_000);
  let stack: MapiStack;
  let api: AxiosInstance;

  const volumeBody = (name: string, capacity = '2G', extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    metadata: {
      name,
      namespace: 'default',
      labels: { 'openebs.io/storageclass': '', 'openebs.io/namespace': 'default', 'openebs.io/persistentvolumeclaim': `claim-${name}` },
    },
    spec: { capacity },
    ...extra,
  });
  const cvrsOf = async (volume: string): Promise<string[]> =>
    (await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: `openebs.io/persistent-volume=${volume}` }))
      .map((o) => String(o.metadata.name))
      .sort();
  const cvExists = async (name: string): Promise<boolean> =>
    (await stack.kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns })).some((o) => o.metadata.name === name);

  before(async () => {
    stack = await startMapiStack();
    api = axios.create({ baseURL: stack.url, validateStatus: () => true, proxy: false });
  });
  after(async () => {
    await stack?.stop();
    await stopAll();
  });

  describe('volumes', () => {
    it('creates a volume (3 replicas, Healthy), reads it, lists it; the same create twice gives one object', async () => {
      const res = await api.post<CasVolume>('/latest/volumes/', volumeBody('pvc-one'));
      expect(res.status, JSON.stringify(res.data)).to.equal(200);
      expect(res.data.kind).to.equal('CASVolume');
      expect(res.data.spec).to.include({ capacity: '2G', iqn: 'iqn.2016-09.com.openebs.cstor:pvc-one', targetPortal: '127.0.0.1:3260', targetIP: '127.0.0.1', targetPort: '3260', replicas: 3, casType: 'cstor', fsType: 'ext4', lun: 0 });
      expect(res.data.status.Phase).to.equal('Healthy');
      expect(await cvrsOf('pvc-one')).to.deep.equal(['pvc-one-pool-a', 'pvc-one-pool-b', 'pvc-one-pool-c']);

      const again = await api.post<CasVolume>('/latest/volumes', volumeBody('pvc-one'));
      expect(again.status).to.equal(200);
      expect(again.data.metadata.name).to.equal('pvc-one');
      expect((await stack.kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns })).filter((o) => o.metadata.name === 'pvc-one')).to.have.length(1);
      expect(await cvrsOf('pvc-one')).to.have.length(3);

      const read = await api.get<CasVolume>('/latest/volumes/pvc-one', { headers: { namespace: 'default' } });
      expect(read.status).to.equal(200);
      expect(read.data.spec).to.include({ iqn: 'iqn.2016-09.com.openebs.cstor:pvc-one', targetPortal: '127.0.0.1:3260', replicas: 3 });
      expect(read.data.status.Phase).to.equal('Healthy');

      const list = await api.get<{ items: CasVolume[] }>('/latest/volumes/', { headers: { namespace: 'default' } });
      expect(list.status).to.equal(200);
      expect(list.data.items.map((v) => v.metadata.name)).to.include('pvc-one');
    });

    it('accepts a YAML body when Content-Type contains yaml', async () => {
      const yaml = ['metadata:', '  name: pvc-yaml', '  namespace: default', 'spec:', '  capacity: 1G', ''].join('\n');
      const res = await api.post<CasVolume>('/latest/volumes/', yaml, { headers: { 'Content-Type': 'application/yaml' } });
      expect(res.status, JSON.stringify(res.data)).to.equal(200);
      expect(res.data.spec.capacity).to.equal('1G');
      expect(res.data.status.Phase).to.equal('Healthy');
    });

    it('deletes a volume with its replicas; deleting what is gone succeeds; reading it then is 404', async () => {
      const del = await api.delete('/latest/volumes/pvc-yaml');
      expect(del.status, JSON.stringify(del.data)).to.equal(200);
      expect(await cvExists('pvc-yaml')).to.equal(false);
      // Replicas go once the pool (here the simulation) drops their finalizer.
      for (let i = 0; i < 100 && (await cvrsOf('pvc-yaml')).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await cvrsOf('pvc-yaml')).to.deep.equal([]);
      const again = await api.delete('/latest/volumes/pvc-yaml');
      expect(again.status).to.equal(200);
      const read = await api.get<{ error: string }>('/latest/volumes/pvc-yaml');
      expect(read.status).to.equal(404);
      expect(read.data.error).to.match(/pvc-yaml/);
    });
  });

  describe('snapshots', () => {
    it('creates (also through the legacy /create/ path), lists, reads and deletes snapshots; idempotent both ways', async () => {
      const body = { metadata: { name: 'pvc-one_snap1_1000', namespace: 'default' }, spec: { casType: 'cstor', volumeName: 'pvc-one' } };
      const res = await api.post<{ kind: string; metadata: { name: string } }>('/latest/snapshots/', body);
      expect(res.status, JSON.stringify(res.data)).to.equal(200);
      expect(res.data).to.nested.include({ kind: 'CASSnapshot', 'metadata.name': 'pvc-one_snap1_1000' });
      const again = await api.post('/latest/snapshots/', body);
      expect(again.status).to.equal(200);
      const legacy = await api.post('/latest/snapshots/create/', { metadata: { name: 'pvc-one_snap2_2000', namespace: 'default' }, spec: { casType: 'cstor', volumeName: 'pvc-one' } });
      expect(legacy.status, JSON.stringify(legacy.data)).to.equal(200);
      expect(stack.fake.target.snapshotsOf('pvc-one')).to.deep.equal(['pvc-one_snap1_1000', 'pvc-one_snap2_2000']);

      const params = { volume: 'pvc-one', namespace: 'default', casType: 'cstor' };
      const list = await api.get<{ items: { metadata: { name: string } }[] }>('/latest/snapshots/', { params });
      expect(list.status).to.equal(200);
      expect(list.data.items.map((s) => s.metadata.name).sort()).to.deep.equal(['pvc-one_snap1_1000', 'pvc-one_snap2_2000']);
      const read = await api.get<{ metadata: { name: string } }>('/latest/snapshots/pvc-one_snap2_2000', { params });
      expect(read.status).to.equal(200);
      expect(read.data.metadata.name).to.equal('pvc-one_snap2_2000');

      const del = await api.delete('/latest/snapshots/pvc-one_snap2_2000', { params });
      expect(del.status, JSON.stringify(del.data)).to.equal(200);
      expect(stack.fake.target.snapshotsOf('pvc-one')).to.deep.equal(['pvc-one_snap1_1000']);
      expect((await api.delete('/latest/snapshots/pvc-one_snap2_2000', { params })).status).to.equal(200);
      const gone = await api.get<{ error: string }>('/latest/snapshots/pvc-one_snap2_2000', { params });
      expect(gone.status).to.equal(404);
      expect(gone.data.error).to.match(/pvc-one_snap2_2000/);
    });

    it('clones a volume from a snapshot: replicas on the source pools, clone labels and annotations', async () => {
      const res = await api.post<CasVolume>(
        '/latest/volumes/',
        volumeBody('pvc-clone', '2G', { cloneSpec: { isClone: true, sourceVolume: 'pvc-one', snapshotName: 'pvc-one_snap1_1000' } }),
      );
      expect(res.status, JSON.stringify(res.data)).to.equal(200);
      expect(res.data.status.Phase).to.equal('Healthy');
      const cvrs = await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-clone' });
      const sourcePools = (await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-one' }))
        .map((o) => poolOf(o))
        .sort();
      expect(cvrs.map((o) => poolOf(o)).sort()).to.deep.equal(sourcePools);
      for (const o of cvrs) {
        expect(o.metadata.labels).to.include({ 'openebs.io/cloned': 'true' });
        expect(o.metadata.annotations).to.include({ 'openebs.io/snapshot': 'pvc-one_snap1_1000', 'openebs.io/source-volume': 'pvc-one' });
      }
      const cv = await stack.kube.get({ apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: 'pvc-clone' });
      expect(cv.metadata.labels).to.include({ 'openebs.io/source-volume': 'pvc-one' });
      expect(cv.metadata.annotations).to.include({ 'openebs.io/snapshot': 'pvc-one_snap1_1000' });
    });
  });

  describe('bad input: status and a message naming the problem', () => {
    // axios would re-encode a string body as a JSON string literal: send the bytes as they are.
    const rawJson = { headers: { 'Content-Type': 'application/json' }, transformRequest: [(d: unknown) => d] };
    const cases: Array<{ what: string; send: () => Promise<{ status: number; data: unknown }>; status: number; message: RegExp }> = [
      { what: 'malformed JSON', send: () => api.post('/latest/volumes/', '{"metadata": {"name": "x"', rawJson), status: 400, message: /not valid JSON/ },
      { what: 'malformed YAML', send: () => api.post('/latest/volumes/', 'metadata:\n  name: [x\nspec: {', { headers: { 'Content-Type': 'application/x-yaml' } }), status: 400, message: /not valid YAML: .*\(\d+:\d+\)/ },
      { what: 'an empty body', send: () => api.post('/latest/snapshots/', '', rawJson), status: 400, message: /body is empty: a CASSnapshot is required/ },
      { what: 'a volume without a name', send: () => api.post('/latest/volumes/', { metadata: {}, spec: { capacity: '1G' } }), status: 400, message: /metadata\.name \(the volume name\) is required/ },
      { what: 'a volume without a capacity', send: () => api.post('/latest/volumes/', { metadata: { name: 'pvc-nocap' }, spec: {} }), status: 400, message: /spec\.capacity is required/ },
      { what: 'a volume name that is not DNS-1123', send: () => api.post('/latest/volumes/', { metadata: { name: 'Bad_Name' }, spec: { capacity: '1G' } }), status: 400, message: /"Bad_Name" is not a valid name/ },
      { what: 'a snapshot without a name', send: () => api.post('/latest/snapshots/', { metadata: {}, spec: { volumeName: 'pvc-one' } }), status: 400, message: /metadata\.name \(the snapshot name\) is required/ },
      { what: 'a snapshot without a volume', send: () => api.post('/latest/snapshots/', { metadata: { name: 's1' }, spec: {} }), status: 400, message: /spec\.volumeName is required/ },
      { what: 'a snapshot list without ?volume=', send: () => api.get('/latest/snapshots/'), status: 400, message: /query parameter volume .* is required/ },
      { what: 'an unknown casType', send: () => api.get('/latest/snapshots/', { params: { volume: 'pvc-one', casType: 'jiva' } }), status: 400, message: /casType "jiva" is not supported/ },
      { what: 'an unknown volume', send: () => api.get('/latest/volumes/pvc-nope'), status: 404, message: /pvc-nope/ },
      { what: 'a snapshot of an unknown volume', send: () => api.post('/latest/snapshots/', { metadata: { name: 's1' }, spec: { volumeName: 'pvc-nope' } }), status: 404, message: /volume pvc-nope not found/ },
      {
        what: 'a clone of a missing snapshot',
        send: () => api.post('/latest/volumes/', volumeBody('pvc-c2', '2G', { cloneSpec: { isClone: true, sourceVolume: 'pvc-one', snapshotName: 'nosuch' } })),
        status: 404,
        message: /snapshot nosuch of volume pvc-one not found: cannot clone pvc-c2/,
      },
      {
        what: 'a clone smaller than its source',
        send: () => api.post('/latest/volumes/', volumeBody('pvc-c3', '1G', { cloneSpec: { isClone: true, sourceVolume: 'pvc-one', snapshotName: 'pvc-one_snap1_1000' } })),
        status: 400,
        message: /clone pvc-c3 of 1G is smaller than its source volume pvc-one \(2G\)/,
      },
      { what: 'an unknown route', send: () => api.put('/latest/volumes/pvc-one', {}), status: 404, message: /no route PUT \/latest\/volumes\/pvc-one/ },
    ];
    for (const c of cases) {
      it(`${c.what} → ${c.status}`, async () => {
        const res = await c.send();
        expect(res.status, JSON.stringify(res.data)).to.equal(c.status);
        expect((res.data as { error: string }).error).to.match(c.message);
      });
    }

    it('nothing is left behind by the refused clones', async () => {
      expect(await cvExists('pvc-c2')).to.equal(false);
      expect(await cvExists('pvc-c3')).to.equal(false);
      expect(await cvrsOf('pvc-c2')).to.deep.equal([]);
      expect(await cvrsOf('pvc-c3')).to.deep.equal([]);
    });

    it('a snapshot of a non-Healthy volume is refused (409) and leaves nothing behind', async () => {
      const ref = { apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: 'pvc-one' };
      await stack.kube.patchStatus(ref, { status: { phase: 'Degraded' } });
      try {
        const res = await api.post<{ error: string }>('/latest/snapshots/', { metadata: { name: 'pvc-one_snap3_3000' }, spec: { casType: 'cstor', volumeName: 'pvc-one' } });
        expect(res.status).to.equal(409);
        expect(res.data.error).to.match(/volume pvc-one is not Healthy \(phase Degraded\): a snapshot needs a Healthy volume/);
        expect(res.data.error).to.match(/^task healthy \(\d of \d\) failed/);
        expect(stack.fake.target.snapshotsOf('pvc-one')).to.deep.equal(['pvc-one_snap1_1000']);
      } finally {
        await stack.kube.patchStatus(ref, { status: { phase: 'Healthy' } });
      }
    });

    it('a volume create failing mid-flow rolls back what it created and names the task', async () => {
      const res = await api.post<{ error: string }>('/latest/volumes/', volumeBody('fail-vol'));
      expect(res.status).to.be.oneOf([500, 503]);
      expect(res.data.error).to.match(/^task healthy \(10 of 10\) failed: .*replica pool-b refused the volume/);
      expect(await cvExists('fail-vol')).to.equal(false);
      for (let i = 0; i < 100 && (await cvrsOf('fail-vol')).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await cvrsOf('fail-vol')).to.deep.equal([]);
    });

    it('a snapshot failing at the target rolls back nothing it did not make and names the task', async () => {
      stack.fake.target.failNext('POST', 500, 'replica quorum lost during quiesce');
      const res = await api.post<{ error: string }>('/latest/snapshots/', { metadata: { name: 'pvc-one_snap4_4000' }, spec: { casType: 'cstor', volumeName: 'pvc-one' } });
      expect(res.status).to.equal(503);
      expect(res.data.error).to.match(/^task snapshot \(\d of \d\) failed: .*replica quorum lost during quiesce/);
      expect(stack.fake.target.snapshotsOf('pvc-one')).to.deep.equal(['pvc-one_snap1_1000']);
    });
  });

  describe('templates at run time', () => {
    const healthyTask = { apiVersion: cas, kind: 'RunTask', namespace: ns, name: 'cstor-snapshot-create-healthy' };
    const cvRef = { apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: 'pvc-edit' };
    let original: unknown;
    const snapshotOf = (client: AxiosInstance, name: string): Promise<{ status: number; data: { error?: string } }> =>
      client.post('/latest/snapshots/', { metadata: { name }, spec: { casType: 'cstor', volumeName: 'pvc-edit' } });
    const setMessage = (message: string): Promise<KubeObject> => stack.kube.patch(healthyTask, { spec: { assert: { message } } });

    before(async () => {
      expect((await api.post('/latest/volumes/', volumeBody('pvc-edit', '1G'))).status).to.equal(200);
      await stack.kube.patchStatus(cvRef, { status: { phase: 'Degraded' } });
      original = ((await stack.kube.get(healthyTask))['spec'] as { assert: { message: unknown } }).assert.message;
    });
    after(async () => {
      await setMessage(String(original));
    });

    it('an edit of a RunTask through the API changes the very next request (--template-cache off, the default)', async () => {
      for (let i = 0; i < 10; i++) {
        await setMessage(`snapshots of {{ request.spec.volumeName }} paused (${i})`);
        const res = await snapshotOf(api, `pvc-edit_s_${i}`);
        expect(res.status).to.equal(409);
        expect(res.data.error).to.equal(`task healthy (3 of 4) failed: snapshots of pvc-edit paused (${i})`);
      }
    });

    it('--template-cache watch serves template reads from its cache; an edit reaches the requests after its watch event', async () => {
      const cached = await stack.startMapi(['--skip-install', '--template-cache', 'watch']);
      const client = axios.create({ baseURL: `http://${cached.addresses['api']}`, validateStatus: () => true, proxy: false });
      try {
        expect(await cached.waitForLog((e) => e.message === 'template cache')).to.include({ mode: 'watch', synced: true });
        await setMessage('paused by the first edit ({{ request.spec.volumeName }})');
        let res = await snapshotOf(client, 'pvc-edit_w_1');
        for (let i = 0; i < 100 && !String(res.data.error).endsWith('paused by the first edit (pvc-edit)'); i++) {
          await new Promise((r) => setTimeout(r, 20));
          res = await snapshotOf(client, 'pvc-edit_w_1');
        }
        expect(res.status).to.equal(409);
        expect(res.data.error).to.equal('task healthy (3 of 4) failed: paused by the first edit (pvc-edit)');
        const metrics = (await client.get<string>('/metrics', { responseType: 'text' })).data;
        expect(metrics).to.match(/mapi_watch_cache_reads_total\{kind="RunTask",result="hit"[^}]*\} [1-9]\d*/);
        expect(metrics).to.match(/mapi_watch_cache_reads_total\{kind="PersistentVolume",result="miss"[^}]*\} [1-9]\d*/);
        expect(metrics).to.match(/mapi_watch_cache_live\{kind="RunTask"[^}]*\} 1/);
        expect(metrics).not.to.match(/mapi_watch_cache_reads_total\{kind="RunTask",result="not_live"/);
      } finally {
        await cached.stop();
      }
    });
  });

  describe('operations', () => {
    it('serves /healthz and /metrics with mapi_operation_total_seconds by operation and outcome', async () => {
      const health = await api.get<string>('/healthz');
      expect(health.status).to.equal(200);
      const metrics = await api.get<string>('/metrics', { responseType: 'text' });
      expect(metrics.status).to.equal(200);
      expect(metrics.data).to.match(/mapi_operation_total_seconds_count\{[^}]*operation_name="volume_create"[^}]*operation_status="success"[^}]*\} \d+/);
      expect(metrics.data).to.match(/mapi_operation_total_seconds_count\{[^}]*operation_name="snapshot_create"[^}]*operation_status="failure"[^}]*\} \d+/);
      expect(metrics.data).to.match(/mapi_cas_operation_total_seconds_count\{[^}]*operation_name="cstor-snapshot-create-default"/);
    });

    it('logs every request with its outcome', async () => {
      const ok = await stack.mapi.waitForLog((e) => e.message === 'request' && e.method === 'POST' && e.path === '/latest/volumes/' && e.status === 200);
      expect(ok.ms).to.be.a('number');
      const refused = await stack.mapi.waitForLog((e) => e.message === 'request refused' && e.status === 404 && e.path === '/latest/volumes/pvc-nope');
      expect(refused.error).to.match(/pvc-nope/);
      expect(refused.code).to.equal('not_found');
      const failed = await stack.mapi.waitForLog((e) => e.message === 'request failed' && String(e.path).startsWith('/latest/snapshots'));
      expect(failed.error).to.match(/task snapshot/);
    });
  });
});
