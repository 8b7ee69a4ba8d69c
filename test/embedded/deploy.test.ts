// deploy/ for a real cluster, checked statically (no cluster here): every manifest parses; every
// workload runs `cstor <subcommand>` with flags that subcommand declares, the pod env, /healthz
// probes, resources and a non-root, drop-ALL security context; every ServiceAccount has a
// least-privilege ClusterRole bound; the StorageClasses are as DESIGN.md §3 says. And the
// Dockerfile: Docker cannot run on this machine, so it is parsed (stages, USER, ENTRYPOINT).
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../support/daemon.ts';
import { loadManifests, type Manifest } from '../../lib/embedded/manifests.ts';
import { probeSubcommand } from '../../lib/embedded/probe.ts';
import { isJsonObject, type Json, type JsonObject } from '../../lib/embedded/three-way-patch.ts';

const deployDir = path.join(repoRoot, 'deploy');
const cstorBin = path.join(repoRoot, 'bin', 'cstor.js');

const obj = (v: Json | undefined): JsonObject => (isJsonObject(v) ? v : {});
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

describe('deploy/ manifests (static checks)', () => {
  let manifests: Manifest[];
  before(async () => {
    manifests = await loadManifests(deployDir);
  });
  const ofKind = (kind: string): JsonObject[] => manifests.filter((m) => m.object.kind === kind).map((m) => m.object);
  const named = (kind: string, name: string): JsonObject | undefined => ofKind(kind).find((o) => obj(o.metadata).name === name);

  it('has the namespace, every workload, their Services, the config and both StorageClasses', () => {
    expect(named('Namespace', 'openebs')).to.not.equal(undefined);
    expect(ofKind('Deployment').map((d) => obj(d.metadata).name)).to.have.members(['maya-apiserver', 'snapshot-operator', 'volume-provisioner']);
    expect(ofKind('DaemonSet').map((d) => obj(d.metadata).name)).to.have.members(['cstor-target', 'cstor-pool']);
    const svc = named('Service', 'maya-apiserver-service')!;
    expect(arr(obj(svc.spec).ports).map((p) => obj(p).port)).to.deep.equal([5656]);
    expect(obj(obj(svc.spec).selector)).to.deep.equal({ app: 'maya-apiserver' });
    expect(ofKind('CustomResourceDefinition').length).to.be.at.least(7);
    expect(ofKind('CASTemplate').length).to.be.at.least(9);
    for (const m of manifests) {
      const ns = obj(m.object.metadata).namespace;
      if (ns !== undefined) expect(ns, `${m.file} ${m.object.kind}`).to.equal('openebs');
    }
  });

  it('StorageClasses: openebs-cstor-default (3 replicas, Delete) and openebs-snapshot-promoter', () => {
    const cstor = named('StorageClass', 'openebs-cstor-default')!;
    expect(cstor.provisioner).to.equal('openebs.io/provisioner-iscsi');
    expect(cstor.reclaimPolicy).to.equal('Delete');
    expect(obj(cstor.parameters).replicaCount).to.equal('3');
    expect(String(obj(obj(cstor.metadata).annotations)['cas.openebs.io/config'])).to.match(/name: ReplicaCount\s+value: "3"/);
    const promoter = named('StorageClass', 'openebs-snapshot-promoter')!;
    expect(promoter.provisioner).to.equal('volumesnapshot.external-storage.k8s.io/snapshot-promoter');
    expect(promoter.reclaimPolicy).to.equal('Delete');
  });

  it('every container runs a cstor subcommand with flags it declares, the pod env, probes, resources and a locked-down security context', () => {
    const workloads = [...ofKind('Deployment'), ...ofKind('DaemonSet')];
    const seen: string[] = [];
    for (const w of workloads) {
      const name = String(obj(w.metadata).name);
      const pod = obj(obj(obj(w.spec).template).spec);
      const podSc = obj(pod.securityContext);
      expect(podSc.runAsNonRoot, name).to.equal(true);
      expect(podSc.runAsUser, name).to.equal(1000);
      expect(pod.serviceAccountName, name).to.be.a('string');
      expect(named('ServiceAccount', String(pod.serviceAccountName)), `${name}: its ServiceAccount`).to.not.equal(undefined);
      for (const c of arr(pod.containers).map(obj)) {
        const where = `${name}/${String(c.name)}`;
        expect(c.image, where).to.equal('cstor-snapshots:0.1.0');
        expect(c.command, `${where}: the image's entrypoint runs cstor`).to.equal(undefined);
        const args = arr(c.args).map(String);
        const sub = args[0]!;
        seen.push(sub);
        const info = probeSubcommand(cstorBin, sub);
        if (info.exists && info.flags) {
          for (const flag of args.filter((a) => a.startsWith('--'))) expect(info.flags.has(flag), `${where}: cstor ${sub} declares ${flag}`).to.equal(true);
        } else {
          expect(sub, `${where}: only the snapshot-provisioner may be unfinished`).to.equal('snapshot-provisioner');
        }
        const env = arr(c.env).map(obj);
        const envNamed = (n: string): JsonObject | undefined => env.find((e) => e.name === n);
        expect(obj(obj(envNamed('OPENEBS_NAMESPACE')?.valueFrom).fieldRef).fieldPath, where).to.equal('metadata.namespace');
        expect(obj(obj(envNamed('NODE_NAME')?.valueFrom).fieldRef).fieldPath, where).to.equal('spec.nodeName');
        expect(obj(obj(envNamed('POD_IP')?.valueFrom).fieldRef).fieldPath, where).to.equal('status.podIP');
        for (const probe of ['readinessProbe', 'livenessProbe']) expect(obj(obj(c[probe]).httpGet).path, `${where} ${probe}`).to.equal('/healthz');
        const probePort = obj(obj(c.readinessProbe).httpGet).port;
        expect(arr(c.ports).map((p) => obj(p).name), `${where}: the probe's port is declared`).to.include(probePort);
        expect(obj(obj(c.resources).requests), where).to.have.keys('cpu', 'memory');
        expect(obj(obj(c.resources).limits), where).to.have.property('memory');
        const sc = obj(c.securityContext);
        expect(sc.allowPrivilegeEscalation, where).to.equal(false);
        expect(sc.readOnlyRootFilesystem, where).to.equal(true);
        expect(obj(sc.capabilities).drop, where).to.deep.equal(['ALL']);
        expect(sc.privileged, where).to.equal(undefined);
        expect(arr(c.volumeMounts).map((v) => obj(v).mountPath), `${where}: a writable /tmp`).to.include('/tmp');
      }
    }
    expect(seen).to.have.members(['mapi', 'snapshot-controller', 'snapshot-provisioner', 'volume-provisioner', 'target', 'pool']);
  });

  it('the target is on the host network (iSCSI 3260, mgmt 9500); the pool keeps its data on a hostPath, owned by an init step with CAP_CHOWN only', () => {
    const target = obj(obj(obj(named('DaemonSet', 'cstor-target')!.spec).template).spec);
    expect(target.hostNetwork).to.equal(true);
    const tports = arr(obj(arr(target.containers)[0]).ports).map((p) => obj(p).containerPort);
    expect(tports).to.have.members([3260, 9500]);
    const pool = obj(obj(obj(named('DaemonSet', 'cstor-pool')!.spec).template).spec);
    const volumes = arr(pool.volumes).map(obj);
    expect(obj(volumes.find((v) => v.name === 'data')?.hostPath).path).to.equal('/var/openebs/cstor-pool');
    const poolArgs = arr(obj(arr(pool.containers)[0]).args).map(String);
    expect(poolArgs.slice(poolArgs.indexOf('--data-dir'), poolArgs.indexOf('--data-dir') + 2)).to.deep.equal(['--data-dir', '/var/openebs/cstor-pool']);
    expect(poolArgs).to.include('--listen').and.to.include('0.0.0.0:3232');
    const init = obj(arr(pool.initContainers)[0]);
    expect(arr(init.command).map(String)).to.deep.equal(['chown', '1000:1000', '/var/openebs/cstor-pool']);
    expect(obj(obj(init.securityContext).capabilities)).to.deep.equal({ drop: ['ALL'], add: ['CHOWN'] });
    expect(obj(init.securityContext).allowPrivilegeEscalation).to.equal(false);
  });

  it('RBAC: one ServiceAccount per workload, each bound to ClusterRoles with no wildcards and only the rights its component needs', () => {
    const roles = new Map(ofKind('ClusterRole').map((r) => [String(obj(r.metadata).name), arr(r.rules).map(obj)]));
    const bindings = ofKind('ClusterRoleBinding');
    const rolesOf = (sa: string): string[] =>
      bindings.filter((b) => arr(b.subjects).some((s) => obj(s).name === sa && obj(s).namespace === 'openebs')).map((b) => String(obj(b.roleRef).name));
    for (const rules of roles.values()) {
      for (const rule of rules) {
        for (const key of ['apiGroups', 'resources', 'verbs']) expect(arr(rule[key]).map(String), JSON.stringify(rule)).to.not.include('*');
      }
    }
    const can = (sa: string, group: string, resource: string, verb: string): boolean =>
      rolesOf(sa).some((r) => (roles.get(r) ?? []).some((rule) => arr(rule.apiGroups).includes(group) && arr(rule.resources).includes(resource) && arr(rule.verbs).includes(verb)));
    expect(rolesOf('snapshot-operator')).to.have.members(['cstor-snapshot-controller', 'cstor-snapshot-promoter']);
    // m-apiserver
    expect(can('maya-apiserver', 'openebs.io', 'cstorvolumes', 'create')).to.equal(true);
    expect(can('maya-apiserver', 'openebs.io', 'runtasks', 'get')).to.equal(true);
    expect(can('maya-apiserver', '', 'persistentvolumes', 'get')).to.equal(true);
    expect(can('maya-apiserver', '', 'persistentvolumes', 'create')).to.equal(false);
    // snapshot-controller
    expect(can('snapshot-operator', 'volumesnapshot.external-storage.k8s.io', 'volumesnapshots/status', 'patch')).to.equal(true);
    expect(can('snapshot-operator', 'volumesnapshot.external-storage.k8s.io', 'volumesnapshotdatas', 'create')).to.equal(true);
    expect(can('snapshot-operator', 'coordination.k8s.io', 'leases', 'update')).to.equal(true);
    expect(can('snapshot-operator', 'apiextensions.k8s.io', 'customresourcedefinitions', 'create')).to.equal(true);
    // provisioners
    for (const sa of ['volume-provisioner', 'snapshot-operator']) {
      expect(can(sa, '', 'persistentvolumes', 'create'), sa).to.equal(true);
      expect(can(sa, '', 'persistentvolumeclaims', 'patch'), sa).to.equal(true);
      expect(can(sa, 'storage.k8s.io', 'storageclasses', 'get'), sa).to.equal(true);
      expect(can(sa, '', 'services', 'get'), sa).to.equal(true);
      expect(can(sa, '', 'events', 'create'), sa).to.equal(true);
    }
    expect(can('volume-provisioner', 'openebs.io', 'cstorvolumes', 'create')).to.equal(false);
    // pool and target
    expect(can('cstor-pool', 'openebs.io', 'cstorvolumereplicas/finalizers', 'update')).to.equal(true);
    expect(can('cstor-pool', 'openebs.io', 'cstorvolumereplicas/status', 'patch')).to.equal(true);
    expect(can('cstor-pool', 'openebs.io', 'cstorvolumereplicas', 'create')).to.equal(false);
    expect(can('cstor-pool', '', 'persistentvolumes', 'get')).to.equal(false);
    expect(can('cstor-target', 'openebs.io', 'cstorvolumes/status', 'patch')).to.equal(true);
    expect(can('cstor-target', 'openebs.io', 'cstorvolumereplicas', 'list')).to.equal(true);
    expect(can('cstor-target', 'openebs.io', 'cstorvolumereplicas', 'delete')).to.equal(false);
    for (const sa of ofKind('ServiceAccount').map((s) => String(obj(s.metadata).name))) expect(rolesOf(sa).length, sa).to.be.at.least(1);
  });
});

interface DockerInstruction {
  op: string;
  args: string;
  line: number;
}

/** A Dockerfile's instructions (comments dropped, backslash continuations joined). */
function parseDockerfile(text: string): DockerInstruction[] {
  const out: DockerInstruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const start = i + 1;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!.trim();
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start}: not an instruction: ${line}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
  }
  return out;
}

describe('Dockerfile (parsed: Docker cannot run on this machine)', () => {
  const text = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
  const ins = parseDockerfile(text);
  const known = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'WORKDIR', 'ENV', 'ARG', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'LABEL', 'HEALTHCHECK', 'VOLUME', 'STOPSIGNAL', 'SHELL', 'ONBUILD']);

  it('uses only known instructions, multi-stage FROM node:20-bookworm-slim', () => {
    for (const i of ins) expect(known.has(i.op), `line ${i.line}: ${i.op}`).to.equal(true);
    const froms = ins.filter((i) => i.op === 'FROM');
    expect(froms.map((f) => f.args.split(/\s+AS\s+/i)[1])).to.deep.equal(['build', 'prod-deps', 'runtime']);
    const arg = ins.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(arg?.args).to.equal('NODE_IMAGE=node:20-bookworm-slim');
    for (const f of froms) expect(f.args.startsWith('${NODE_IMAGE}')).to.equal(true);
  });

  it('builds with npm ci (and npm run build when tsconfig.build.json exists); the runtime stage copies only from earlier stages', () => {
    const stageOf = (i: DockerInstruction): string => {
      const froms = ins.filter((f) => f.op === 'FROM' && f.line <= i.line);
      return froms[froms.length - 1]!.args.split(/\s+AS\s+/i)[1]!;
    };
    const runs = ins.filter((i) => i.op === 'RUN');
    expect(runs.some((r) => stageOf(r) === 'build' && r.args.includes('npm ci'))).to.equal(true);
    expect(runs.some((r) => stageOf(r) === 'build' && r.args.includes('[ -f tsconfig.build.json ]') && r.args.includes('npm run build'))).to.equal(true);
    expect(runs.some((r) => stageOf(r) === 'prod-deps' && r.args.includes('npm ci --omit=dev') && r.args.includes('tsx@'))).to.equal(true);
    const runtimeCopies = ins.filter((i) => i.op === 'COPY' && stageOf(i) === 'runtime');
    expect(runtimeCopies.length).to.be.greaterThan(5);
    for (const c of runtimeCopies) expect(c.args, `line ${c.line}`).to.match(/^--from=(build|prod-deps)\b/);
    const copied = runtimeCopies.map((c) => c.args.split(/\s+/).slice(-2)[0]!.replace('/src/', ''));
    for (const dir of ['bin', 'lib', 'kube-lite', 'cstor-pool', 'cstor-target', 'maya-apiserver', 'snapshot-controller', 'volume-provisioner', 'deploy', 'node_modules']) {
      expect(copied, dir).to.include(dir);
    }
  });

  it('runs as the non-root node user with ENTRYPOINT ["node","bin/cstor.js"]', () => {
    const runtimeStart = ins.findIndex((i) => i.op === 'FROM' && /AS runtime$/i.test(i.args));
    const runtime = ins.slice(runtimeStart);
    const users = runtime.filter((i) => i.op === 'USER');
    expect(users.map((u) => u.args)).to.deep.equal(['node']);
    const entry = runtime.filter((i) => i.op === 'ENTRYPOINT');
    expect(entry.length).to.equal(1);
    expect(JSON.parse(entry[0]!.args)).to.deep.equal(['node', 'bin/cstor.js']);
    // nothing runs as root after USER
    const userIdx = runtime.indexOf(users[0]!);
    expect(runtime.slice(userIdx).filter((i) => i.op === 'RUN')).to.deep.equal([]);
  });

  it('.dockerignore keeps local state, tests and node_modules out of the context', () => {
    const ignore = fs.readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['.git', 'node_modules', '.cstor', '**/*.test.ts', 'test']) expect(ignore, p).to.include(p);
  });
});
