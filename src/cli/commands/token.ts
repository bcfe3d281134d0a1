import { Command } from 'commander';
import { registryClientFor, type RegistryFlags } from '../settings.js';
import { parseDurationFlag, registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { printJson, printLines, printTable } from '../output.js';

type Opts = RegistryFlags & { json?: boolean; description?: string; ttl?: number };

const ttlMs = parseDurationFlag({ example: '1h or 7d', minMs: 60_000, range: 'at least 1m' });
const parseTtl = (value: string): number => Math.round(ttlMs(value) / 1000);

export function tokenCommand(): Command {
  const cmd = new Command('token').description('manage join tokens (admin only)');

  withJson(
    withRegistryFlags(
      cmd
        .command('create')
        .description('make a join token for agents')
        .option('--description <text>', 'what the token is for', '')
        .option('--ttl <duration>', 'expire the token after this long (e.g. 24h)', parseTtl),
    ),
  ).action(async (opts: Opts) => {
    const client = await registryClientFor(registryFlags(opts));
    try {
      const res = await client.createToken(opts.description ?? '', opts.ttl);
      if (opts.json) return printJson(res);
      printLines([
        `Join token ${res.info.id}${res.info.expiresAt ? ` (expires ${res.info.expiresAt})` : ''}:`,
        `  ${res.token}`,
      ]);
    } finally {
      client.close();
    }
  });

  withJson(withRegistryFlags(cmd.command('list').description('list tokens (secrets are never shown again)'))).action(
    async (opts: Opts) => {
      const client = await registryClientFor(registryFlags(opts));
      try {
        const tokens = await client.tokens();
        if (opts.json) return printJson({ tokens });
        printTable(
          ['ID', 'KIND', 'STATE', 'CREATED', 'EXPIRES', 'DESCRIPTION'],
          tokens.map((t) => [
            t.id,
            t.kind,
            t.revoked ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) < Date.now() ? 'expired' : 'active',
            t.createdAt,
            t.expiresAt ?? '-',
            t.description,
          ]),
        );
      } finally {
        client.close();
      }
    },
  );

  withJson(
    withRegistryFlags(
      cmd
        .command('revoke')
        .description('revoke a token by id')
        .argument('<id>', 'token id (from `meshctl token list`)'),
    ),
  ).action(async (id: string, opts: Opts) => {
    const client = await registryClientFor(registryFlags(opts));
    try {
      const info = await client.revokeToken(id);
      if (opts.json) return printJson({ token: info });
      printLines([`Revoked token ${info.id} (${info.kind})`]);
    } finally {
      client.close();
    }
  });
  return cmd;
}
