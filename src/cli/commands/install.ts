/** `meshctl agent install` and `meshctl registry install`: one command, made for either unit. */
import { Command } from 'commander';
import { defaultDataDir } from '../../targets/settings.js';
import { withJson } from '../flags.js';
import { emit } from '../run.js';

interface InstallOpts {
  now?: boolean;
  unitDir: string;
  dataDir?: string;
  user: string;
  json?: boolean;
}

export function installCommand(kind: 'agent' | 'registry', user: { user: string; userHelp: string }): Command {
  return withJson(
    new Command('install')
      .description(`install and enable the systemd unit for the ${kind}`)
      .option('--now', 'start it now as well')
      .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
      .option('--data-dir <dir>', `${kind} data directory`)
      .option('--user <user>', user.userHelp, user.user),
  ).action(async (opts: InstallOpts) => {
    const { installService } = await import('../../systemd/cli-install.js');
    const { lines, ...result } = await installService(kind, {
      unitDir: opts.unitDir,
      user: opts.user,
      dataDir: opts.dataDir ?? defaultDataDir(kind),
      ...(opts.now ? { now: true } : {}),
    });
    emit(opts, result, () => lines);
  });
}
