import { Command, Option } from 'commander';
import { formatDuration } from '../../util/duration.js';
import { MeshError } from '../../errors/index.js';
import { openSettings, defaultDataDir } from '../../targets/settings.js';
import { collect, durationOption, parseName, withJson, type DurationSpec } from '../flags.js';
import type { FirstTokens, RegistryInitResult } from '../../registry/bootstrap.js';
import { emit } from '../run.js';

export function initCommand(): Command {
  return withJson(
    new Command('init')
      .description('make a new mesh on this host (--server) or join this host to one (--join)')
      .option('--server', 'make the control plane here: CA, registry config, admin and join tokens')
      .option('--join <url>', 'join this host to the mesh whose registry is at URL (https://HOST:7443)')
      .option('--token <token>', 'with --join: a join token (from `meshctl init --server` or `meshctl token create`)')
      .option('--ca-fingerprint <sha256>', 'with --join: the CA fingerprint to pin (from `meshctl ca show`)')
      .option('--node-name <name>', "with --join: this node's name (default: the host name)", parseName('node name'))
      .option(
        '--socket <path>',
        "with --join: the agent's admin socket (default: DATA_DIR/agent.sock; /run/meshctl/agent.sock as root without --data-dir)",
      )
      .option(
        '--services-dir <dir>',
        'with --join: watched directory of service definitions (default: DATA_DIR/services.d; /etc/meshctl/services.d as root without --data-dir)',
      )
      .option('-y, --yes', 'with --join: trust the registry CA without a pinned fingerprint')
      .option(
        '--data-dir <dir>',
        'state directory (default: /var/lib/meshctl/{registry,agent} as root, else ~/.local/share/meshctl/...)',
      )
      .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh', 'mesh.local')
      .addOption(
        new Option('--default-intention <action>', 'what happens between services no intention names')
          .choices(['deny', 'allow'])
          .default('deny'),
      )
      .option('--bind <addr:port>', 'address the registry listens on', '0.0.0.0:7443')
      .option(
        '--advertise <host>',
        "address others reach this host at: the registry (--server) or this node's services (--join) (default: this host's first address)",
      )
      .option('--san <name>', 'extra DNS name or IP for the registry certificate (repeatable)', collect, [])
      .addOption(
        durationOption(
          '--lease-ttl <duration>',
          'with --server: how long a node counts as alive without a heartbeat (2s-1h)',
          LEASE_TTL,
        ),
      )
      .addOption(
        durationOption(
          '--leaf-ttl <duration>',
          'with --server: lifetime of service certificates; agents renew them at half-life (2m-1y)',
          LEAF_TTL,
        ),
      )
      .addOption(
        durationOption(
          '--node-cert-ttl <duration>',
          'with --server: lifetime of node certificates; agents renew them at half-life (2m-1y)',
          LEAF_TTL,
        ),
      )
      .addOption(
        new Option(
          '--store <kind>',
          'with --server: where the registry keeps the mesh (etcd: several registries share it)',
        )
          .choices(['sqlite', 'etcd'])
          .default('sqlite'),
      )
      .option('--etcd-endpoints <urls>', 'with --store etcd: the etcd client URLs, comma-separated', splitList)
      .option('--etcd-prefix <prefix>', 'with --store etcd: key prefix of this mesh in etcd', '/meshctl/')
      .option('--etcd-ca <file>', 'with --store etcd: CA of the etcd servers (https:// endpoints)')
      .option('--etcd-cert <file>', 'with --store etcd: client certificate for etcd (--client-cert-auth)')
      .option('--etcd-key <file>', 'with --store etcd: key of the client certificate')
      .option(
        '--mesh-key <file>',
        "with --store etcd: join the mesh already in etcd, using the first registry host's DATA_DIR/mesh.key",
      )
      .option('--force', 'replace an existing mesh in --data-dir (invalidates every certificate and token)')
      .option('--no-save', "do not save the registry address and admin token in this user's CLI settings"),
  ).action(async (opts: InitOpts) => {
    if (opts.server && opts.join) throw new MeshError('MESH_ERR_USAGE', 'choose one of --server and --join');
    if (opts.join) return initJoin(opts);
    return initServerCmd(opts);
  });
}

interface InitOpts {
  server?: boolean;
  join?: string;
  token?: string;
  caFingerprint?: string;
  nodeName?: string;
  socket?: string;
  servicesDir?: string;
  yes?: boolean;
  dataDir?: string;
  trustDomain: string;
  defaultIntention: 'allow' | 'deny';
  bind: string;
  advertise?: string;
  san: string[];
  force?: boolean;
  store: 'sqlite' | 'etcd';
  etcdEndpoints?: string[];
  etcdPrefix: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  meshKey?: string;
  leaseTtl: number;
  leafTtl: number;
  nodeCertTtl: number;
  save: boolean;
  json?: boolean;
}

/** What a registry's init takes from the flags, on sqlite and on etcd alike. */
function serverOptions(opts: InitOpts) {
  return {
    dataDir: opts.dataDir ?? defaultDataDir('registry'),
    trustDomain: opts.trustDomain,
    defaultIntention: opts.defaultIntention,
    bind: opts.bind,
    san: opts.san,
    leaseTtlSeconds: opts.leaseTtl,
    leafTtlSeconds: opts.leafTtl,
    nodeCertTtlSeconds: opts.nodeCertTtl,
    ...(opts.advertise ? { advertise: opts.advertise } : {}),
    ...(opts.force ? { force: true } : {}),
  };
}

async function initServerCmd(opts: InitOpts): Promise<void> {
  if (!opts.server) {
    throw new MeshError(
      'MESH_ERR_USAGE',
      'say what to make: --server for the control plane, or --join URL to join this host to one',
      {
        hint: 'meshctl init --server [--data-dir DIR]  |  meshctl init --join https://HOST:7443 --token TOKEN',
      },
    );
  }
  if (opts.store === 'etcd') return initEtcdServerCmd(opts);
  if (opts.etcdEndpoints || opts.meshKey) {
    throw new MeshError('MESH_ERR_USAGE', '--etcd-endpoints and --mesh-key go with --store etcd');
  }
  // Loaded on use: the CA code is heavy, and every other command should start fast.
  const { initServer } = await import('../../registry/bootstrap.js');
  const res = await initServer(serverOptions(opts));
  const localUrl = await saveLocalSettings(opts.save, res);
  emit(opts, { ...res, cliSettingsSaved: opts.save, localUrl }, () => [
    `Made a new mesh in ${res.dataDir}`,
    ...meshLines(res),
    '',
    ...tokenLines(res, opts.save),
    ...nextSteps(res),
  ]);
}

/** What an init on sqlite and one on etcd both print of the mesh's settings. */
function meshLines(res: RegistryInitResult): string[] {
  const lifetimes = [
    `node lease ${formatDuration(res.leaseTtlSeconds * 1000)}`,
    `service certificates ${formatDuration(res.leafTtlSeconds * 1000)}`,
    `node certificates ${formatDuration(res.nodeCertTtlSeconds * 1000)}`,
  ];
  return [
    `  trust domain       ${res.trustDomain}`,
    `  default intention  ${res.defaultIntention}`,
    `  registry           ${res.bind} (agents join at ${res.advertiseUrl})`,
    `  CA fingerprint     ${res.caFingerprint}`,
    `  lifetimes          ${lifetimes.join(', ')}`,
  ];
}

/** The tokens the host that made the mesh shows once; a registry joining a mesh in etcd made none. */
function tokenLines(res: Partial<FirstTokens>, saved: boolean): string[] {
  if (!res.adminToken || !res.joinToken) {
    return ["Tokens are the mesh's: use the admin token printed by the first registry host.", ''];
  }
  return [
    "Admin token (shown once; saved in this user's CLI settings" + (saved ? ')' : ' — not saved: --no-save)') + ':',
    `  ${res.adminToken}`,
    `Join token (one host, expires ${res.joinTokenExpiresAt}; the host may serve no services until you allow them):`,
    `  ${res.joinToken}`,
    '',
    'A node may serve only the services its join token names. Make a token for each kind of host:',
    "  meshctl token create --service api [--service 'batch-*'] [--uses 3] [--ttl 24h]",
    'or allow services on a joined node: meshctl node allow NODE api',
    '',
  ];
}

/** The numbered next steps; a registry on etcd has one more: the other registry hosts. */
function nextSteps(res: RegistryInitResult, otherRegistryCommand?: string): string[] {
  const steps: string[][] = [
    [
      `start the registry:   meshctl registry start --data-dir ${res.dataDir}`,
      '                           (or as a service: meshctl registry install --now)',
    ],
    ...(otherRegistryCommand
      ? [
          [
            'on each other registry host, copy the mesh key there (0600), then:',
            `                           ${otherRegistryCommand}`,
          ],
        ]
      : []),
    [
      `on every host:        meshctl init --join ${res.advertiseUrl} --token <join token> \\`,
      `                             --ca-fingerprint ${res.caFingerprint}`,
    ],
    ['check:                meshctl catalog nodes'],
  ];
  return ['Next steps:', ...steps.flatMap(([first, ...rest], i) => [`  ${i + 1}. ${first!}`, ...rest])];
}

async function initJoin(opts: InitOpts): Promise<void> {
  if (!opts.token)
    throw new MeshError('MESH_ERR_USAGE', '--join needs --token JOIN_TOKEN', {
      hint: 'Make one on the control plane with `meshctl token create`.',
    });
  const { joinMesh } = await import('../../agent/join.js');
  const res = await joinMesh({
    registryUrl: opts.join!,
    token: opts.token,
    dataDir: opts.dataDir ?? defaultDataDir('agent'),
    ...(opts.dataDir ? { dataDirGiven: true } : {}),
    ...(opts.caFingerprint ? { caFingerprint: opts.caFingerprint } : {}),
    ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
    ...(opts.advertise ? { advertise: opts.advertise } : {}),
    ...(opts.socket ? { socketPath: opts.socket } : {}),
    ...(opts.servicesDir ? { servicesDir: opts.servicesDir } : {}),
    ...(opts.yes ? { yes: true } : {}),
    ...(opts.force ? { force: true } : {}),
    ...(process.stdin.isTTY && !opts.json ? { confirm: askFingerprint } : {}),
  });
  emit(opts, res, () => [
    `Joined the mesh ${res.trustDomain} as node ${res.nodeName} (${res.advertise})`,
    `  registry        ${res.registry}`,
    `  CA fingerprint  ${res.caFingerprint}`,
    `  data dir        ${res.dataDir}`,
    '',
    'Next steps:',
    `  1. run the agent:       meshctl agent start --data-dir ${res.dataDir}`,
    '                          (or as a service: meshctl agent install --now)',
    '  2. register a service:  meshctl register service api --port 9000 --check http://127.0.0.1:9000/health',
    `                          or drop a YAML definition into ${res.servicesDir}`,
  ]);
}

const LEASE_TTL: DurationSpec = {
  example: '15s',
  minMs: 2000,
  maxMs: 3_600_000,
  range: '2s to 1h',
  defaultMs: 15_000,
  unit: 's',
};
/** The registry's floor: a leaf must outlive its backdating by a renewal interval. */
const LEAF_TTL: DurationSpec = {
  example: '24h',
  minMs: 120_000,
  maxMs: 31_536_000_000,
  range: '2m to 365d',
  defaultMs: 86_400_000,
  unit: 's',
};

async function askFingerprint(fingerprint: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `The registry's CA fingerprint is\n  ${fingerprint}\nCompare it with \`meshctl ca show\` on the control plane. Trust it? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

async function initEtcdServerCmd(opts: InitOpts): Promise<void> {
  if (!opts.etcdEndpoints || opts.etcdEndpoints.length === 0) {
    throw new MeshError('MESH_ERR_USAGE', '--store etcd needs --etcd-endpoints URL[,URL...]', {
      hint: 'e.g. --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379',
    });
  }
  const { initEtcdServer } = await import('../../registry/bootstrap-etcd.js');
  const res = await initEtcdServer({
    ...serverOptions(opts),
    etcd: {
      endpoints: opts.etcdEndpoints,
      prefix: opts.etcdPrefix,
      ...(opts.etcdCa ? { caFile: opts.etcdCa } : {}),
      ...(opts.etcdCert ? { certFile: opts.etcdCert } : {}),
      ...(opts.etcdKey ? { keyFile: opts.etcdKey } : {}),
    },
    ...(opts.meshKey ? { meshKeyFile: opts.meshKey } : {}),
  });
  const localUrl = await saveLocalSettings(opts.save, res);
  emit(opts, { ...res, cliSettingsSaved: opts.save, localUrl }, () => [
    res.joined
      ? `Added this host as a registry of mesh ${res.trustDomain} (found in etcd at ${res.etcdEndpoints.join(',')})`
      : `Made a new mesh in etcd at ${res.etcdEndpoints.join(',')} (this registry's files in ${res.dataDir})`,
    ...meshLines(res),
    `  mesh key           ${res.meshKeyPath} (seals the CA key in etcd; keep it secret, back it up)`,
    '',
    ...tokenLines(res, opts.save),
    ...nextSteps(res, res.otherRegistryCommand),
  ]);
}

/**
 * This host's CLI talks to its own registry over loopback (the certificate names 127.0.0.1): saved
 * unless --no-save, with the admin token when this init made one. Gives that URL.
 */
async function saveLocalSettings(
  save: boolean,
  res: { bind: string; caCertPath: string; adminToken?: string | undefined },
): Promise<string> {
  const { parseBind } = await import('../../registry/config.js');
  const { host, port } = parseBind(res.bind);
  const localUrl = `https://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`;
  if (save) {
    (await openSettings()).set({
      registry: localUrl,
      caFile: res.caCertPath,
      ...(res.adminToken ? { token: res.adminToken } : {}),
    });
  }
  return localUrl;
}
