// Table-driven cases for the PV binder over an in-process store: objects in → objects out.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger.ts';
import { Operations } from '../api/operations.ts';
import { ResourceRegistry } from '../resources/registry.ts';
import { Store } from '../store/store.ts';
import type { KubeObject } from '../store/types.ts';
import { NamespaceController } from './namespace.ts';
import { PvBinder } from './pv-binder.ts';

interface Case {
  name: string;
  classes: KubeObject[];
  pvs: KubeObject[];
  claims: KubeObject[];
  /** claim name → expected [phase, volumeName, storage-provisioner annotation]. */
  want: Record<string, [string, string | undefined, string | undefined]>;
}

const sc = (name: string, provisioner: string, extra: Record<string, unknown> = {}): KubeObject => ({ metadata: { name }, provisioner, ...extra });
const pv = (name: string, size: string, cls: string, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name },
  spec: { capacity: { storage: size }, accessModes: ['ReadWriteOnce'], storageClassName: cls, hostPath: { path: '/x' }, ...extra },
});
const pvc = (name: string, size: string, cls: string | undefined, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name, namespace: 'default' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, ...(cls !== undefined ? { storageClassName: cls } : {}), ...extra },
});

const cases: Case[] = [
  { name: 'external provisioner class, no PV: annotated, Pending', classes: [sc('ext', 'example.com/ext')], pvs: [], claims: [pvc('c', '1Gi', 'ext')], want: { c: ['Pending', undefined, 'example.com/ext'] } },
  { name: 'no-provisioner class: not annotated', classes: [sc('local', 'kubernetes.io/no-provisioner')], pvs: [], claims: [pvc('c', '1Gi', 'local')], want: { c: ['Pending', undefined, undefined] } },
  { name: 'WaitForFirstConsumer: not annotated', classes: [sc('wffc', 'example.com/ext', { volumeBindingMode: 'WaitForFirstConsumer' })], pvs: [], claims: [pvc('c', '1Gi', 'wffc')], want: { c: ['Pending', undefined, undefined] } },
  { name: 'too small PV: not bound', classes: [], pvs: [pv('p', '1Gi', 'x')], claims: [pvc('c', '2Gi', 'x')], want: { c: ['Pending', undefined, undefined] } },
  { name: 'other class PV: not bound', classes: [], pvs: [pv('p', '5Gi', 'y')], claims: [pvc('c', '2Gi', 'x')], want: { c: ['Pending', undefined, undefined] } },
  { name: 'matching PV: bound', classes: [], pvs: [pv('p', '5Gi', 'x')], claims: [pvc('c', '5G', 'x')], want: { c: ['Bound', 'p', undefined] } },
  { name: 'default class applied at create', classes: [sc('def', 'example.com/def', { metadata: { name: 'def', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } })], pvs: [], claims: [pvc('c', '1Gi', undefined)], want: { c: ['Pending', undefined, 'example.com/def'] } },
  { name: 'claim pre-bound by volumeName', classes: [], pvs: [pv('p', '5Gi', '')], claims: [pvc('c', '1Gi', '', { volumeName: 'p' })], want: { c: ['Bound', 'p', undefined] } },
  { name: 'claim naming a missing PV: Pending', classes: [], pvs: [], claims: [pvc('c', '1Gi', '', { volumeName: 'nope' })], want: { c: ['Pending', 'nope', undefined] } },
  { name: 'PV pre-bound to another claim is not taken', classes: [], pvs: [pv('p', '5Gi', 'x', { claimRef: { namespace: 'default', name: 'other' } })], claims: [pvc('c', '1Gi', 'x')], want: { c: ['Pending', undefined, undefined] } },
];

describe('kube-lite PV binder (in process)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-lite-binder-'));
      const store = await Store.open({ dataDir, logger: silentLogger() });
      const registry = new ResourceRegistry();
      const ops = new Operations(store, registry, silentLogger());
      await new NamespaceController(ops, silentLogger()).ensureInitial();
      const binder = new PvBinder(ops, silentLogger());
      const info = (k: string) => registry.byResKey(k)!;
      for (const o of c.classes) await ops.create(info('storage.k8s.io/storageclasses'), undefined, o);
      for (const o of c.pvs) await ops.create(info('/persistentvolumes'), undefined, o);
      for (const o of c.claims) await ops.create(info('/persistentvolumeclaims'), 'default', o);
      binder.start();
      const deadline = Date.now() + 3000;
      const got = (): Record<string, [string, string | undefined, string | undefined]> =>
        Object.fromEntries(
          store.list('/persistentvolumeclaims').map((o) => {
            const spec = o.spec as { volumeName?: string };
            const status = o.status as { phase?: string };
            return [o.metadata.name ?? '', [status.phase ?? '', spec.volumeName, o.metadata.annotations?.['volume.kubernetes.io/storage-provisioner']]];
          }),
        );
      while (Date.now() < deadline && JSON.stringify(got()) !== JSON.stringify(c.want)) await new Promise((r) => setTimeout(r, 20));
      await binder.stop();
      expect(got()).to.deep.equal(c.want);
      for (const o of store.list('/persistentvolumes')) {
        const bound = Object.values(c.want).some(([, vn]) => vn === o.metadata.name) && Object.values(got()).some(([ph, vn]) => ph === 'Bound' && vn === o.metadata.name);
        if (bound) expect((o.status as { phase: string }).phase).to.equal('Bound');
      }
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });
  }
});
