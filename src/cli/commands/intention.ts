import { Command } from 'commander';
import type { RegistryFlags } from '../../targets/registry.js';
import { parseIntentionName, parseName, withJson, withRegistryFlags } from '../flags.js';
import { tableLines } from '../output.js';
import { emit, withRegistry } from '../run.js';

type Opts = RegistryFlags & { json?: boolean; description?: string };

/** `intention check`'s exit status for a denied pair (0 allowed; errors keep their own codes). */
export const DENIED_EXIT = 2;

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
      const res = await withRegistry(opts, (c) => c.putIntention(source, destination, action, opts.description ?? ''));
      emit(opts, res, () => [`${action === 'allow' ? 'Allowed' : 'Denied'}: ${source} -> ${destination}`]);
    });
  }

  withJson(withRegistryFlags(cmd.command('list').description('list intentions and the default'))).action(
    async (opts: Opts) => {
      const res = await withRegistry(opts, (c) => c.intentions());
      emit(opts, res, (r) => [
        ...tableLines(
          ['SOURCE', 'DESTINATION', 'ACTION', 'DESCRIPTION'],
          // An intention with L7 permissions lets the connection in; its permissions decide each request.
          r.intentions.map((i) => [
            i.source,
            i.destination,
            actionText(i.action, i.permissions?.length),
            i.description,
          ]),
          'no intentions',
        ),
        `default: ${r.defaultAction}`,
      ]);
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
    const res = await withRegistry(opts, (c) => c.deleteIntention(source, destination));
    emit(opts, res, () => [`Deleted: ${source} -> ${destination}`]);
  });

  withJson(
    withRegistryFlags(
      cmd
        .command('check')
        .description(
          'say whether SOURCE may connect to DESTINATION, and which intention decides (exit 0 allowed, 2 denied)',
        )
        .argument('<source>', 'source service', parseName('service name'))
        .argument('<destination>', 'destination service', parseName('service name')),
    ),
  ).action(async (source: string, destination: string, opts: Opts) => {
    const res = await withRegistry(opts, (c) => c.checkIntention(source, destination));
    // As `consul intention check`: exit 2 when denied, so scripts can test the answer.
    if (res.action === 'deny') process.exitCode = DENIED_EXIT;
    emit(opts, res, (r) => {
      const m = r.matched;
      const by = m ? `intention ${m.source} -> ${m.destination}` : 'the default policy';
      const l7 = m?.permissions === undefined ? '' : `; ${permissionsText(m.permissions)} decide each request`;
      return [`${r.action === 'allow' ? 'Allowed' : 'Denied'}: ${source} -> ${destination} (decided by ${by}${l7})`];
    });
  });
  return cmd;
}

function permissionsText(n: number): string {
  return `${n} L7 permission${n === 1 ? '' : 's'}`;
}

/** `allow`, `deny`, or `allow, 2 L7 permissions` for an intention whose permissions decide each request. */
function actionText(action: string, permissions: number | undefined): string {
  return permissions === undefined ? action : `${action}, ${permissionsText(permissions)}`;
}
