import { Command } from 'commander';
import { registryClientFor, type RegistryFlags } from '../../targets/registry.js';
import { registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { printJson, printLines } from '../output.js';

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
    const client = await registryClientFor(registryFlags(opts));
    try {
      const res = await client.roots();
      if (opts.json) return printJson(res);
      if (opts.pem) return printLines(res.roots.map((r) => r.pem.trimEnd()));
      printLines([
        `trust domain: ${res.trustDomain}`,
        ...res.roots.flatMap((r, i) => [
          `root ${i + 1}:`,
          `  SHA-256 fingerprint  ${r.fingerprint}`,
          `  expires              ${r.notAfter}`,
        ]),
      ]);
    } finally {
      client.close();
    }
  });
  return cmd;
}
