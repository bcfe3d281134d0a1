import { Command } from 'commander';
import type { RegistryFlags } from '../../targets/registry.js';
import { parseName, withJson, withRegistryFlags } from '../flags.js';
import { tableLines } from '../output.js';
import { emit, withRegistry } from '../run.js';
import { describeNodeAuthorization } from './node.js';

type Opts = RegistryFlags & { json?: boolean };

export function catalogCommand(): Command {
  const cmd = new Command('catalog').description('read the mesh catalog from the registry');

  withJson(withRegistryFlags(cmd.command('services').description('list services with healthy/total instances'))).action(
    async (opts: Opts) => {
      const res = await withRegistry(opts, (c) => c.services());
      emit(opts, res, (r) =>
        tableLines(
          ['SERVICE', 'HEALTHY', 'PROTOCOL', 'TAGS'],
          r.services.map((s) => [s.name, `${s.healthy}/${s.instances}`, s.protocols.join(','), s.tags.join(',')]),
          'no services registered',
        ),
      );
    },
  );

  withJson(withRegistryFlags(cmd.command('nodes').description('list nodes and their liveness'))).action(
    async (opts: Opts) => {
      const res = await withRegistry(opts, (c) => c.nodes());
      emit(opts, res, (r) =>
        tableLines(
          ['NODE', 'ADDRESS', 'STATUS', 'SERVICES', 'LAST SEEN', 'MAY SERVE'],
          r.nodes.map((n) => [
            n.name,
            n.address,
            n.alive ? 'alive' : 'critical (lease expired)',
            String(n.services),
            n.lastSeen ?? '-',
            describeNodeAuthorization(n.authorization),
          ]),
          'no nodes have joined',
        ),
      );
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
    const res = await withRegistry(opts, (c) => c.instances(service, { healthyOnly: opts.healthy === true }));
    emit(opts, res, (r) =>
      tableLines(
        ['ID', 'NODE', 'ADDRESS', 'PORT', 'MESH PORT', 'STATUS', 'WEIGHT', 'TAGS'],
        r.instances.map((i) => [
          i.id,
          i.node,
          i.address,
          String(i.port),
          i.meshPort === undefined ? '-' : String(i.meshPort),
          !i.nodeAlive ? 'critical (node down)' : i.drainingSince !== undefined ? 'critical (draining)' : i.status,
          String(i.weight),
          i.tags.join(','),
        ]),
        `no ${opts.healthy ? 'healthy ' : ''}instances of '${service}'`,
      ),
    );
  });
  return cmd;
}
