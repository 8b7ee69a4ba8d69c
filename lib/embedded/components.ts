// The process list of the embedded system: which `cstor` subcommands run, in which start stage,
// with which flags and environment, which listeners each must announce before the next stage
// starts, and the design's fixed port of each listener (used when free).
//
//   stage 0  kube-lite                       (api; 6443)
//   stage 1  pool-1..3, target               (pools: replica + mgmt, any port; target: iscsi 3260, mgmt 9500)
//   stage 2  mapi                            (api; 5656)
//   stage 3  volume-provisioner, snapshot-controller, snapshot-provisioner (metrics, any port)
//
// Flags are computed at every (re)start from the context, so a restarted child gets the current
// addresses and its own pinned ports. Only flags the subcommand's --help names are passed.

export const openebsNamespace = 'openebs';

export interface ComponentContext {
  dataDir: string;
  host: string;
  kubeconfig: string;
  namespace: string;
  /** The port to listen on for one of this component's listeners (pinned once announced). */
  port(component: string, listener: string): number;
  /** What another component announced ("host:port"), if it did. */
  address(component: string, listener: string): string | undefined;
}

export interface ComponentDef {
  name: string;
  subcommand: string;
  stage: number;
  /** Listeners to wait for before the next stage starts. */
  listeners: readonly string[];
  /** Listener → the design's fixed port (tried when free). */
  defaultPorts: Readonly<Record<string, number>>;
  /** Without it the system cannot work: a missing subcommand fails `cstor up`. */
  essential: boolean;
  /** [flag, value] pairs; a flag the subcommand does not know is dropped. */
  flags(ctx: ComponentContext): Array<[string, string]>;
}

export const poolNames = ['pool-1', 'pool-2', 'pool-3'] as const;

const hp = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

function mapiUrl(ctx: ComponentContext): string | undefined {
  const a = ctx.address('mapi', 'api');
  return a ? `http://${a}` : undefined;
}

const controllerFlags = (name: string) => (ctx: ComponentContext): Array<[string, string]> => {
  const flags: Array<[string, string]> = [
    ['--kubeconfig', ctx.kubeconfig],
    ['--namespace', ctx.namespace],
    ['--metrics', hp(ctx.host, ctx.port(name, 'metrics'))],
    // One replica of each runs here, restarted only after it exited: a stable leader identity lets
    // the restarted process take its own Lease back at once instead of waiting for it to expire.
    ['--identity', `embedded-${name}`],
  ];
  const mapi = mapiUrl(ctx);
  if (mapi) flags.push(['--mapi-addr', mapi]);
  return flags;
};

export const embeddedComponents: readonly ComponentDef[] = [
  {
    name: 'kube-lite',
    subcommand: 'kube-lite',
    stage: 0,
    listeners: ['api'],
    defaultPorts: { api: 6443 },
    essential: true,
    flags: (ctx) => [
      ['--listen', hp(ctx.host, ctx.port('kube-lite', 'api'))],
      ['--data-dir', `${ctx.dataDir}/kube-lite`],
    ],
  },
  ...poolNames.map(
    (pool): ComponentDef => ({
      name: pool,
      subcommand: 'pool',
      stage: 1,
      listeners: ['replica', 'mgmt'],
      defaultPorts: {},
      essential: true,
      flags: (ctx) => [
        ['--name', pool],
        ['--data-dir', `${ctx.dataDir}/pools/${pool}`],
        ['--listen', hp(ctx.host, ctx.port(pool, 'replica'))],
        ['--mgmt', hp(ctx.host, ctx.port(pool, 'mgmt'))],
        ['--advertise', ctx.host],
        ['--kubeconfig', ctx.kubeconfig],
        ['--namespace', ctx.namespace],
      ],
    }),
  ),
  {
    name: 'target',
    subcommand: 'target',
    stage: 1,
    listeners: ['iscsi', 'mgmt'],
    defaultPorts: { iscsi: 3260, mgmt: 9500 },
    essential: true,
    flags: (ctx) => [
      ['--iscsi', hp(ctx.host, ctx.port('target', 'iscsi'))],
      ['--mgmt', hp(ctx.host, ctx.port('target', 'mgmt'))],
      ['--data-dir', `${ctx.dataDir}/target`],
      ['--target-id', 'embedded-target'],
      ['--advertise', ctx.host],
      ['--kubeconfig', ctx.kubeconfig],
      ['--namespace', ctx.namespace],
    ],
  },
  {
    name: 'mapi',
    subcommand: 'mapi',
    stage: 2,
    listeners: ['api'],
    defaultPorts: { api: 5656 },
    essential: true,
    flags: (ctx) => {
      const flags: Array<[string, string]> = [
        ['--listen', hp(ctx.host, ctx.port('mapi', 'api'))],
        ['--kubeconfig', ctx.kubeconfig],
        ['--namespace', ctx.namespace],
      ];
      const portal = ctx.address('target', 'iscsi');
      const mgmt = ctx.address('target', 'mgmt');
      if (portal) flags.push(['--target-portal', portal], ['--target-ip', ctx.host]);
      if (mgmt) flags.push(['--target-mgmt', mgmt]);
      return flags;
    },
  },
  { name: 'volume-provisioner', subcommand: 'volume-provisioner', stage: 3, listeners: [], defaultPorts: {}, essential: false, flags: controllerFlags('volume-provisioner') },
  { name: 'snapshot-controller', subcommand: 'snapshot-controller', stage: 3, listeners: [], defaultPorts: {}, essential: false, flags: controllerFlags('snapshot-controller') },
  { name: 'snapshot-provisioner', subcommand: 'snapshot-provisioner', stage: 3, listeners: [], defaultPorts: {}, essential: false, flags: controllerFlags('snapshot-provisioner') },
];

/** The environment every child gets (the same names the deploy/ manifests set). */
export function componentEnv(ctx: ComponentContext, base: NodeJS.ProcessEnv, nodeName: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, KUBECONFIG: ctx.kubeconfig, OPENEBS_NAMESPACE: ctx.namespace, NODE_NAME: nodeName, POD_IP: ctx.host };
  const mapi = mapiUrl(ctx);
  if (mapi) env.MAPI_ADDR = mapi;
  const portal = ctx.address('target', 'iscsi');
  const mgmt = ctx.address('target', 'mgmt');
  if (portal) {
    env.TARGET_PORTAL = portal;
    env.TARGET_IP = ctx.host;
  }
  if (mgmt) env.TARGET_MGMT_ADDR = mgmt;
  return env;
}

/** argv for `cstor <subcommand>`, keeping only flags the subcommand knows (when known). */
export function componentArgs(def: ComponentDef, ctx: ComponentContext, knownFlags: ReadonlySet<string> | null): string[] {
  const args = [def.subcommand];
  for (const [flag, value] of def.flags(ctx)) {
    if (knownFlags && !knownFlags.has(flag)) continue;
    args.push(flag, value);
  }
  return args;
}
