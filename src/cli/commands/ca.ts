import { Command } from 'commander';
import type { RegistryFlags } from '../../targets/registry.js';
import { withJson, withRegistryFlags } from '../flags.js';
import { emit, withRegistry } from '../run.js';

type Opts = RegistryFlags & { json?: boolean; pem?: boolean };

export function caCommand(): Command {
  const cmd = new Command('ca').description('the mesh certificate authority');
  withJson(
    withRegistryFlags(
      cmd
        .command('show')
        .description('show the CA roots and their fingerprints')
        .option('--pem', 'print the root certificates as PEM'),
    ),
  ).action(async (opts: Opts) => {
    const res = await withRegistry(opts, (c) => c.roots());
    emit(opts, res, (r) =>
      opts.pem
        ? r.roots.map((root) => root.pem.trimEnd())
        : [
            `trust domain: ${r.trustDomain}`,
            ...r.roots.flatMap((root, i) => [
              `root ${i + 1}:`,
              `  SHA-256 fingerprint  ${root.fingerprint}`,
              `  expires              ${root.notAfter}`,
            ]),
          ],
    );
  });
  return cmd;
}
