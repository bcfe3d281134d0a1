import { Command, Option } from 'commander';
import { defaultDataDir } from '../../targets/settings.js';
import { runDaemon } from '../daemon.js';
import { printJson, printLines } from '../output.js';

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
  cmd
    .command('install')
    .description('install and enable the systemd unit for the registry')
    .option('--now', 'start it now as well')
    .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
    .option('--data-dir <dir>', 'registry data directory')
    .option('--user <user>', 'user the registry runs as (must own the data directory)', 'root')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: { now?: boolean; unitDir: string; dataDir?: string; user: string; json?: boolean }) => {
      const { installService } = await import('../../systemd/cli-install.js');
      const res = await installService('registry', { ...opts, dataDir: opts.dataDir ?? defaultDataDir('registry') });
      if (opts.json) return printJson(res);
      printLines(res.lines);
    });
  return cmd;
}
