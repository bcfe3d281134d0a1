import { Command } from 'commander';
import { MeshError } from '../../errors/index.js';
import type { TokenInfo } from '../../api/schemas.js';
import type { RegistryFlags } from '../../targets/registry.js';
import {
  collectServicePattern,
  durationOption,
  parseName,
  parsePositiveInt,
  withJson,
  withRegistryFlags,
} from '../flags.js';
import { tableLines } from '../output.js';
import { emit, withRegistry } from '../run.js';

type Opts = RegistryFlags & {
  json?: boolean;
  description?: string;
  ttl?: number;
  service?: string[];
  anyService?: boolean;
  uses?: number;
  admin?: boolean;
  replaceNode?: string;
};

/** What a join token lets a node serve, as every listing shows it: an any-service token says so loudly. */
export function tokenScope(t: TokenInfo): string {
  if (t.kind === 'admin') return '(admin: everything)';
  if (t.anyService) return 'ANY SERVICE (--any-service)';
  return t.services && t.services.length > 0 ? t.services.join(',') : '(none yet: meshctl node allow)';
}

function tokenState(t: TokenInfo): string {
  if (t.revoked) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) < Date.now()) return 'expired';
  if (t.maxUses !== undefined && (t.uses ?? 0) >= t.maxUses) return 'used up';
  return 'active';
}

export function tokenCommand(): Command {
  const cmd = new Command('token').description('manage join and admin tokens (admin only)');

  withJson(
    withRegistryFlags(
      cmd
        .command('create')
        .description('make a join token for agents (scoped to the services they may serve), or an admin token')
        .option(
          '--service <name|pattern>',
          "a service a node joining with it may serve, e.g. api or 'batch-*' (repeatable)",
          collectServicePattern,
          [],
        )
        .option('--any-service', 'let a node joining with it serve any service name (not recommended)')
        .option(
          '--uses <n>',
          'how many nodes may join with it (default: unlimited until it expires)',
          parsePositiveInt('number of uses', 100_000),
        )
        .option(
          '--replace-node <node>',
          "let it take the name of this node if that node is dead (the old node's certificates are revoked)",
          parseName('node name'),
        )
        .option('--admin', 'make an admin token instead (full access; never expires unless --ttl)')
        .option('--description <text>', 'what the token is for', '')
        .addOption(
          durationOption('--ttl <duration>', 'expire the token after this long (join tokens: default 24h)', {
            example: '1h or 7d',
            minMs: 60_000,
            range: 'at least 1m',
            unit: 's',
          }),
        ),
    ),
  ).action(async (opts: Opts) => {
    const services = opts.service ?? [];
    if (opts.admin && (services.length > 0 || opts.anyService || opts.uses !== undefined || opts.replaceNode))
      throw new MeshError('MESH_ERR_USAGE', '--admin takes none of --service, --any-service, --uses, --replace-node');
    if (opts.anyService && services.length > 0)
      throw new MeshError('MESH_ERR_USAGE', 'choose --service NAME or --any-service, not both');
    const res = await withRegistry(opts, (c) =>
      c.createToken(opts.description ?? '', opts.ttl, {
        kind: opts.admin ? 'admin' : 'join',
        services,
        ...(opts.anyService ? { anyService: true } : {}),
        ...(opts.uses !== undefined ? { uses: opts.uses } : {}),
        ...(opts.replaceNode ? { replaceNode: opts.replaceNode } : {}),
      }),
    );
    emit(opts, res, ({ token, info: t }) => {
      const limits = [
        t.expiresAt ? `expires ${t.expiresAt}` : 'never expires',
        ...(t.maxUses !== undefined ? [`${t.maxUses} use${t.maxUses === 1 ? '' : 's'}`] : []),
      ].join(', ');
      return [
        `${t.kind === 'admin' ? 'Admin' : 'Join'} token ${t.id} (${limits}):`,
        `  ${token}`,
        ...(t.kind === 'join' ? [`  may serve: ${tokenScope(t)}`] : []),
        ...(t.replaceNode ? [`  may take the name of dead node '${t.replaceNode}'`] : []),
        ...(t.anyService
          ? ['warning: a node joining with this token may get a certificate for any service name.']
          : []),
      ];
    });
  });

  withJson(withRegistryFlags(cmd.command('list').description('list tokens (secrets are never shown again)'))).action(
    async (opts: Opts) => {
      const tokens = await withRegistry(opts, (c) => c.tokens());
      emit(opts, { tokens }, (r) =>
        tableLines(
          ['ID', 'KIND', 'STATE', 'USES', 'EXPIRES', 'MAY SERVE', 'DESCRIPTION'],
          r.tokens.map((t) => [
            t.id,
            t.kind,
            tokenState(t),
            t.maxUses !== undefined ? `${t.uses ?? 0}/${t.maxUses}` : '-',
            t.expiresAt ?? '-',
            tokenScope(t),
            t.description,
          ]),
        ),
      );
    },
  );

  withJson(
    withRegistryFlags(
      cmd
        .command('revoke')
        .description('revoke a token by id (the last admin token cannot be revoked)')
        .argument('<id>', 'token id (from `meshctl token list`)'),
    ),
  ).action(async (id: string, opts: Opts) => {
    const token = await withRegistry(opts, (c) => c.revokeToken(id));
    emit(opts, { token }, (r) => [`Revoked token ${r.token.id} (${r.token.kind})`]);
  });
  return cmd;
}
