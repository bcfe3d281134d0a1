import { Command } from 'commander';
import { registryClientFor, type RegistryFlags } from '../../targets/registry.js';
import { parseIntentionName, parseName, registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { printJson, printLines, printTable } from '../output.js';

type Opts = RegistryFlags & { json?: boolean; description?: string };

export function intentionCommand(): Command {
  const cmd = new Command('intention').description('allow or deny traffic from one service to another');

  for (const action of ['allow', 'deny'] as const) {
    withJson(
      withRegistryFlags(
        cmd
          .command(action)
          .description(`${action} connections from SOURCE to DESTINATION (service names or *)`)
          .argument('<source>', 'source service or *', parseIntentionName)
          .argument('<destination>', 'destination service or *', parseIntentionName)
          .option('--description <text>', 'why this intention exists', ''),
      ),
    ).action(async (source: string, destination: string, opts: Opts) => {
      const client = await registryClientFor(registryFlags(opts));
      try {
        const res = await client.putIntention(source, destination, action, opts.description ?? '');
        if (opts.json) return printJson(res);
        printLines([`${action === 'allow' ? 'Allowed' : 'Denied'}: ${source} -> ${destination}`]);
      } finally {
        client.close();
      }
    });
  }

  withJson(withRegistryFlags(cmd.command('list').description('list intentions and the default'))).action(
    async (opts: Opts) => {
      const client = await registryClientFor(registryFlags(opts));
      try {
        const res = await client.intentions();
        if (opts.json) return printJson(res);
        printTable(
          ['SOURCE', 'DESTINATION', 'ACTION', 'DESCRIPTION'],
          res.intentions.map((i) => [i.source, i.destination, i.action, i.description]),
          'no intentions',
        );
        printLines([`default: ${res.defaultAction}`]);
      } finally {
        client.close();
      }
    },
  );

  withJson(
    withRegistryFlags(
      cmd
        .command('delete')
        .description('delete the intention from SOURCE to DESTINATION')
        .argument('<source>', 'source service or *', parseIntentionName)
        .argument('<destination>', 'destination service or *', parseIntentionName),
    ),
  ).action(async (source: string, destination: string, opts: Opts) => {
    const client = await registryClientFor(registryFlags(opts));
    try {
      const res = await client.deleteIntention(source, destination);
      if (opts.json) return printJson(res);
      printLines([`Deleted: ${source} -> ${destination}`]);
    } finally {
      client.close();
    }
  });

  withJson(
    withRegistryFlags(
      cmd
        .command('check')
        .description('say whether SOURCE may connect to DESTINATION, and which intention decides')
        .argument('<source>', 'source service', parseName('service name'))
        .argument('<destination>', 'destination service', parseName('service name')),
    ),
  ).action(async (source: string, destination: string, opts: Opts) => {
    const client = await registryClientFor(registryFlags(opts));
    try {
      const res = await client.checkIntention(source, destination);
      if (opts.json) return printJson(res);
      const by = res.matched ? `intention ${res.matched.source} -> ${res.matched.destination}` : 'the default policy';
      printLines([`${res.action === 'allow' ? 'Allowed' : 'Denied'}: ${source} -> ${destination} (decided by ${by})`]);
    } finally {
      client.close();
    }
  });
  return cmd;
}
