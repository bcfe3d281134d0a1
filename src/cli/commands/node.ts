import { Command } from 'commander';
import { MeshError } from '../../errors/index.js';
import { registryClientFor, type RegistryFlags } from '../../targets/registry.js';
import { collectServicePattern, parseName, registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { printJson, printLines } from '../output.js';

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
    const client = await registryClientFor(registryFlags(opts));
    try {
      const n = await client.node(name);
      if (opts.json) return printJson({ node: n });
      printLines([
        `node          ${n.name} (${n.address})`,
        `status        ${n.alive ? 'alive' : 'not alive (lease expired)'}${n.lastSeen ? `, last seen ${n.lastSeen}` : ''}`,
        `may serve     ${describeNodeAuthorization(n.authorization)}`,
        `instances     ${n.instances.length === 0 ? '(none)' : n.instances.map((i) => (i.id === i.name ? i.name : `${i.id} (${i.name})`)).join(', ')}`,
        `certificates  ${n.certificates} issued and not expired`,
        `joined        ${n.joinedAt}${n.joinedWith ? ` with token ${n.joinedWith}` : ''}`,
      ]);
    } finally {
      client.close();
    }
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
      const client = await registryClientFor(registryFlags(opts));
      try {
        const res = await client.authorizeNode(name, {
          action,
          services: patterns,
          anyService: opts.anyService === true,
        });
        if (opts.json) return printJson(res);
        printLines([
          `Node ${name} may serve: ${describeNodeAuthorization(res.record.authorization)}`,
          ...(res.deregistered.length > 0 ? [`  deregistered: ${res.deregistered.join(', ')}`] : []),
          ...(res.revoked > 0 ? [`  revoked ${res.revoked} certificate${res.revoked === 1 ? '' : 's'}`] : []),
        ]);
      } finally {
        client.close();
      }
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
    const client = await registryClientFor(registryFlags(opts));
    try {
      const res = await client.removeNode(name);
      if (opts.json) return printJson(res);
      printLines([
        `Removed node ${name}: deregistered, ${res.revoked} certificate${res.revoked === 1 ? '' : 's'} revoked.`,
        'Its sidecar peers refuse the revoked certificates as soon as their snapshots update.',
      ]);
    } finally {
      client.close();
    }
  });
  return cmd;
}
