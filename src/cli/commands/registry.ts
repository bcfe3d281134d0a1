import { Command, Option } from 'commander';
import { defaultDataDir } from '../../targets/settings.js';
import { runDaemon } from '../daemon.js';
import { installCommand } from './install.js';

export function registryCommand(): Command {
  const cmd = new Command('registry').description('run and manage the control-plane registry');
  cmd
    .command('start')
    .description('run the registry in the foreground (what the systemd unit runs)')
    .option('--data-dir <dir>', 'registry data directory made by `meshctl init --server`')
    .addOption(
      new Option('--store <kind>', 'storage backend (default: from the config, sqlite)').choices([
        'sqlite',
        'memory',
        'etcd',
      ]),
    )
    .option('--bind <addr:port>', 'override the configured listen address')
    .action(async (opts: { dataDir?: string; store?: 'sqlite' | 'memory' | 'etcd'; bind?: string }) => {
      const { startRegistry } = await import('../../registry/main.js');
      await runDaemon({
        start: () =>
          startRegistry({
            dataDir: opts.dataDir ?? defaultDataDir('registry'),
            ...(opts.store ? { store: opts.store } : {}),
            ...(opts.bind ? { bind: opts.bind } : {}),
          }),
        announce: (reg) =>
          process.stderr.write(`meshctl registry listening on ${reg.url} (store: ${reg.store.kind})\n`),
        close: (reg) => reg.close(),
      });
    });
  cmd.addCommand(
    installCommand('registry', {
      user: 'meshctl',
      userHelp: 'user the registry runs as (must exist; its data directory is given to it)',
    }),
  );
  return cmd;
}
