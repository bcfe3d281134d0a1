import { Command, Option } from 'commander';
import { defaultDataDir } from '../../targets/settings.js';
import { runDaemon } from '../daemon.js';
import { withJson } from '../flags.js';
import { emit } from '../run.js';
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
  withJson(
    cmd
      .command('admin-token')
      .description(
        "make a new admin token from the registry host's own files (recovery when no admin token is left; run as root or the registry's user)",
      )
      .option('--data-dir <dir>', 'registry data directory made by `meshctl init --server`')
      .option('--description <text>', 'what the token is for (shown by `meshctl token list`)'),
  ).action(async (opts: { dataDir?: string; description?: string; json?: boolean }) => {
    const { recoverAdminToken } = await import('../../registry/recovery.js');
    const dataDir = opts.dataDir ?? defaultDataDir('registry');
    const made = await recoverAdminToken({ dataDir, ...(opts.description ? { description: opts.description } : {}) });
    emit(opts, { token: made.token, info: made.info }, () => [
      `New admin token ${made.info.id}, made from the files in ${dataDir} (the audit log says so):`,
      `  ${made.token}`,
      'It is shown only now. Use it with --token or MESHCTL_TOKEN; revoke a lost one with `meshctl token revoke ID`.',
    ]);
  });

  cmd.addCommand(
    installCommand('registry', {
      user: 'meshctl',
      userHelp: 'user the registry runs as (must exist; its data directory is given to it)',
    }),
  );
  return cmd;
}
