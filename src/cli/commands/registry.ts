import { Command, Option } from 'commander';
import { startRegistry } from '../../registry/main.js';
import { defaultDataDir } from '../settings.js';
import { runUntilSignal } from '../daemon.js';

export function registryCommand(): Command {
  const cmd = new Command('registry').description('run and manage the control-plane registry');
  cmd
    .command('start')
    .description('run the registry in the foreground (what the systemd unit runs)')
    .option('--data-dir <dir>', 'registry data directory made by `meshctl init --server`')
    .addOption(new Option('--store <kind>', 'storage backend (default: from the config, sqlite)').choices(['sqlite', 'memory']))
    .option('--bind <addr:port>', 'override the configured listen address')
    .action(async (opts: { dataDir?: string; store?: 'sqlite' | 'memory'; bind?: string }) => {
      const reg = await startRegistry({
        dataDir: opts.dataDir ?? defaultDataDir('registry'),
        ...(opts.store ? { store: opts.store } : {}),
        ...(opts.bind ? { bind: opts.bind } : {}),
      });
      process.stderr.write(`meshctl registry listening on ${reg.url} (store: ${reg.store.kind})\n`);
      await runUntilSignal(() => reg.close());
    });
  return cmd;
}
