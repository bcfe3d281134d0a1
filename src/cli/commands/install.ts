/** `meshctl agent install` and `meshctl registry install`: one command, made for either unit. */
import { Command, Option } from 'commander';
import { MeshError } from '../../errors/index.js';
import { defaultDataDir } from '../../targets/settings.js';
import { withJson } from '../flags.js';
import { emit } from '../run.js';

interface InstallOpts {
  now?: boolean;
  unitDir: string;
  dataDir?: string;
  user: string;
  store?: 'sqlite' | 'etcd';
  json?: boolean;
}

export function installCommand(kind: 'agent' | 'registry', user: { user: string; userHelp: string }): Command {
  const cmd = new Command('install')
    .description(`install and enable the systemd unit for the ${kind}`)
    .option('--now', 'start it now as well')
    .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
    .option('--data-dir <dir>', `${kind} data directory`)
    .option('--user <user>', user.userHelp, user.user);
  if (kind === 'registry') {
    cmd.addOption(
      new Option(
        '--store <kind>',
        'the store the data directory was initialised for (default: read from it); etcd orders the unit after a local etcd.service',
      ).choices(['sqlite', 'etcd']),
    );
  }
  return withJson(cmd).action(async (opts: InstallOpts) => {
    const { installService } = await import('../../systemd/cli-install.js');
    const dataDir = opts.dataDir ?? defaultDataDir(kind);
    const store = kind === 'registry' ? await installedStore(dataDir, opts.store) : undefined;
    const { lines, ...result } = await installService(kind, {
      unitDir: opts.unitDir,
      user: opts.user,
      dataDir,
      ...(opts.now ? { now: true } : {}),
      ...(store === 'etcd' ? { etcd: true } : {}),
    });
    emit(opts, store === undefined ? result : { ...result, store }, () => lines);
  });
}

/**
 * The store a registry's unit is for. The data directory says which one `init --server` set up;
 * a `--store` that disagrees with it is a mistake the unit would only show at its first start.
 * Without a configuration there yet (install before init) the unit is the sqlite one, unless
 * `--store etcd` asks for more than that directory can give.
 */
async function installedStore(dataDir: string, requested: 'sqlite' | 'etcd' | undefined): Promise<string> {
  const { loadRegistryConfig } = await import('../../registry/config.js');
  let configured: string | undefined;
  try {
    configured = (await loadRegistryConfig(dataDir)).config.store;
  } catch (e) {
    if (!(e instanceof MeshError && e.code === 'MESH_ERR_NOT_INITIALIZED')) throw e;
  }
  if (requested === undefined) return configured ?? 'sqlite';
  if (configured === undefined && requested === 'etcd') {
    throw new MeshError('MESH_ERR_NOT_INITIALIZED', `no registry configuration in ${dataDir}`, {
      hint: 'Run `meshctl init --server --store etcd --etcd-endpoints URL,... --data-dir DIR` first (docs/HA.md), then install.',
    });
  }
  if (configured !== undefined && configured !== requested) {
    throw new MeshError(
      'MESH_ERR_USAGE',
      `the registry in ${dataDir} was initialised for store ${configured}, not ${requested}`,
      {
        hint: `Drop --store (the unit follows the data directory), or use the data directory of the ${requested} registry.`,
      },
    );
  }
  return requested;
}
