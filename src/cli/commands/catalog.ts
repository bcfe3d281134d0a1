import { Command } from 'commander';
import { registryClientFor, type RegistryFlags } from '../../targets/registry.js';
import { parseName, registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { printJson, printTable } from '../output.js';
import { describeNodeAuthorization } from './node.js';

type Opts = RegistryFlags & { json?: boolean };

export function catalogCommand(): Command {
  const cmd = new Command('catalog').description('read the mesh catalog from the registry');

  withJson(withRegistryFlags(cmd.command('services').description('list services with healthy/total instances'))).action(
    async (opts: Opts) => {
      const client = await registryClientFor(registryFlags(opts));
      try {
        const res = await client.services();
        if (opts.json) return printJson(res);
        printTable(
          ['SERVICE', 'HEALTHY', 'PROTOCOL', 'TAGS'],
          res.services.map((s) => [s.name, `${s.healthy}/${s.instances}`, s.protocols.join(','), s.tags.join(',')]),
          'no services registered',
        );
      } finally {
        client.close();
      }
    },
  );

  withJson(withRegistryFlags(cmd.command('nodes').description('list nodes and their liveness'))).action(
    async (opts: Opts) => {
      const client = await registryClientFor(registryFlags(opts));
      try {
        const res = await client.nodes();
        if (opts.json) return printJson(res);
        printTable(
          ['NODE', 'ADDRESS', 'STATUS', 'SERVICES', 'LAST SEEN', 'MAY SERVE'],
          res.nodes.map((n) => [
            n.name,
            n.address,
            n.alive ? 'alive' : 'critical (lease expired)',
            String(n.services),
            n.lastSeen ?? '-',
            describeNodeAuthorization(n.authorization),
          ]),
          'no nodes have joined',
        );
      } finally {
        client.close();
      }
    },
  );

  withJson(
    withRegistryFlags(
      cmd
        .command('instances')
        .description('list the instances of one service with their health')
        .argument('<service>', 'service name', parseName('service name'))
        .option('--healthy', 'only instances that pass their checks on a live node'),
    ),
  ).action(async (service: string, opts: Opts & { healthy?: boolean }) => {
    const client = await registryClientFor(registryFlags(opts));
    try {
      const res = await client.instances(service, { healthyOnly: opts.healthy === true });
      if (opts.json) return printJson(res);
      printTable(
        ['ID', 'NODE', 'ADDRESS', 'PORT', 'MESH PORT', 'STATUS', 'WEIGHT', 'TAGS'],
        res.instances.map((i) => [
          i.id,
          i.node,
          i.address,
          String(i.port),
          i.meshPort === undefined ? '-' : String(i.meshPort),
          i.nodeAlive ? i.status : 'critical (node down)',
          String(i.weight),
          i.tags.join(','),
        ]),
        `no ${opts.healthy ? 'healthy ' : ''}instances of '${service}'`,
      );
    } finally {
      client.close();
    }
  });
  return cmd;
}
