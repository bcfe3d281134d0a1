import { Command } from 'commander';
import { MeshError } from '../../errors/index.js';
import type { RegistryFlags } from '../../targets/registry.js';
import { collectServicePattern, parseName, withJson, withRegistryFlags } from '../flags.js';
import { emit, withRegistry } from '../run.js';

type Opts = RegistryFlags & { json?: boolean; anyService?: boolean };

/** A node's authorization as every listing shows it: any-service is flagged. */
export function describeNodeAuthorization(a: { services: string[]; anyService: boolean } | undefined): string {
  if (a?.anyService) return 'ANY SERVICE (--any-service)';
  return a && a.services.length > 0 ? a.services.join(', ') : '(none)';
}

function collectPatterns(args: string[]): string[] {
  return args.reduce<string[]>((acc, a) => collectServicePattern(a, acc), []);
}

export function nodeCommand(): Command {
  const cmd = new Command('node').description(
    "see and change a node's service authorization, or remove it (admin only)",
  );

  withJson(
    withRegistryFlags(
      cmd
        .command('show')
        .description('show a node: address, liveness, the services it may serve and the ones it runs')
        .argument('<node>', 'node name', parseName('node name')),
    ),
  ).action(async (name: string, opts: Opts) => {
    const node = await withRegistry(opts, (c) => c.node(name));
    emit(opts, { node }, ({ node: n }) => [
      `node          ${n.name} (${n.address})`,
      `status        ${n.alive ? 'alive' : 'not alive (lease expired)'}${n.lastSeen ? `, last seen ${n.lastSeen}` : ''}`,
      `may serve     ${describeNodeAuthorization(n.authorization)}`,
      `instances     ${n.instances.length === 0 ? '(none)' : n.instances.map((i) => (i.id === i.name ? i.name : `${i.id} (${i.name})`)).join(', ')}`,
      `certificates  ${n.certificates} issued and not expired`,
      `joined        ${n.joinedAt}${n.joinedWith ? ` with token ${n.joinedWith}` : ''}`,
    ]);
  });

  for (const action of ['allow', 'deny'] as const) {
    withJson(
      withRegistryFlags(
        cmd
          .command(action)
          .description(
            action === 'allow'
              ? 'let a node register, and get certificates for, these services'
              : 'take services away from a node: its instances of them are deregistered and their certificates revoked',
          )
          .argument('<node>', 'node name', parseName('node name'))
          .argument('[services...]', "service names or patterns, e.g. api 'batch-*'")
          .option('--any-service', action === 'allow' ? 'any service name (not recommended)' : 'the any-service grant'),
      ),
    ).action(async (name: string, services: string[], opts: Opts) => {
      const patterns = collectPatterns(services);
      if (patterns.length === 0 && !opts.anyService)
        throw new MeshError('MESH_ERR_USAGE', `name the services to ${action}, or pass --any-service`, {
          hint: `meshctl node ${action} ${name} api`,
        });
      const res = await withRegistry(opts, (c) =>
        c.authorizeNode(name, { action, services: patterns, anyService: opts.anyService === true }),
      );
      emit(opts, res, (r) => [
        `Node ${name} may serve: ${describeNodeAuthorization(r.record.authorization)}`,
        ...(r.deregistered.length > 0 ? [`  deregistered: ${r.deregistered.join(', ')}`] : []),
        ...(r.revoked > 0 ? [`  revoked ${r.revoked} certificate${r.revoked === 1 ? '' : 's'}`] : []),
      ]);
    });
  }

  withJson(
    withRegistryFlags(
      cmd
        .command('remove')
        .description('remove a node: deregister it and revoke its node and service certificates')
        .argument('<node>', 'node name', parseName('node name')),
    ),
  ).action(async (name: string, opts: Opts) => {
    const res = await withRegistry(opts, (c) => c.removeNode(name));
    emit(opts, res, (r) => [
      `Removed node ${name}: deregistered, ${r.revoked} certificate${r.revoked === 1 ? '' : 's'} revoked.`,
      'Its sidecar peers refuse the revoked certificates as soon as their snapshots update.',
    ]);
  });
  return cmd;
}
