import { Command, Option } from 'commander';
import { MeshError } from '../../errors/index.js';
import type { AgentFlags } from '../../targets/agent.js';
import { collect, parseName, parsePort, parsePositiveInt, withAgentFlags, withJson } from '../flags.js';
import { emit, withAgent } from '../run.js';
import type { RegisterFlags } from '../../agent/flags-registration.js';
import type { AgentClient } from '../../agent/client.js';

type Opts = AgentFlags & RegisterFlags & { file?: string; json?: boolean; replace?: boolean };

export function registerCommand(): Command {
  const cmd = new Command('register').description("register services with this host's agent");
  cmd.option('-f, --file <path>', 'register the services defined in a YAML or JSON file');
  cmd.option('--replace', 'with -f: replace services already registered from the CLI with the same id');
  withJson(withAgentFlags(cmd));
  cmd.action(async (opts: Opts) => {
    if (!opts.file)
      throw new MeshError(
        'MESH_ERR_USAGE',
        'say what to register: `register service NAME --port P` or `register -f FILE`',
      );
    const { readDefinitionFile } = await import('../../agent/definitions/index.js');
    const def = await readDefinitionFile(opts.file);
    const replace = opts.replace === true;
    const { registered, ttl } = await withAgent(opts, async (c) => {
      // Every service is checked before any is registered, so a refused file changes nothing.
      for (const svc of def.services) await c.register(svc, { replace, dryRun: true });
      const results = [];
      for (const svc of def.services) results.push(await c.register(svc, { replace }));
      return { registered: results, ttl: opts.json ? new Map<string, string[]>() : await ttlChecks(c) };
    });
    emit(opts, { registered }, (r) => r.registered.flatMap((x) => registeredLines(x, ttl)));
  });

  withJson(
    withAgentFlags(
      cmd
        .command('service')
        .description('register one service on this host')
        .argument('<name>', 'service name', parseName('service name'))
        .requiredOption('--port <port>', 'port the service listens on', parsePort)
        .option('--id <id>', 'instance id, unique on this host (default: the name)', parseName('instance id'))
        .option('--address <addr>', "address the service is reached at (default: the node's address)")
        .option('--tag <tag>', 'tag (repeatable)', collect, [])
        .option('--meta <key=value>', 'metadata (repeatable)', collect, [])
        .option('--weight <n>', 'load-balancing weight, 1-1000', parsePositiveInt('weight', 1000))
        .addOption(new Option('--protocol <protocol>', 'traffic protocol').choices(['http', 'tcp']))
        .option('--check <spec>', "health check: URL, tcp://host:port, exec:'cmd' or ttl:30s (repeatable)", collect, [])
        .addOption(new Option('--interval <duration>', 'how often checks run').default('10s', '10s'))
        .addOption(new Option('--timeout <duration>', 'how long one check may take').default('2s', '2s'))
        .option('--success-before-passing <n>', 'consecutive successes before passing', parsePositiveInt('count', 100))
        .option(
          '--failures-before-critical <n>',
          'consecutive failures before critical',
          parsePositiveInt('count', 100),
        )
        .option(
          '--upstream <service:localport>',
          'an upstream this service calls via 127.0.0.1:LOCALPORT (repeatable)',
          collect,
          [],
        )
        .option(
          '--mesh-port <port>',
          "port of the sidecar's mTLS listener (default: a free one from 21000-21999)",
          parsePort,
        )
        .option('--no-proxy', 'do not run a sidecar proxy for this service'),
    ),
  ).action(async (name: string, _opts: Opts, command: Command) => {
    // --data-dir/--socket may be given before or after `service`.
    const opts = command.optsWithGlobals<Opts>();
    const { registrationFromFlags } = await import('../../agent/flags-registration.js');
    const reg = registrationFromFlags(name, opts);
    const { res, ttl } = await withAgent(opts, async (c) => {
      const r = await c.register(reg);
      return { res: r, ttl: opts.json ? new Map<string, string[]>() : await ttlChecks(c) };
    });
    emit(opts, res, (r) => registeredLines(r, ttl));
  });
  return cmd;
}

function registeredLine(r: { id: string; synced: boolean }): string {
  return r.synced
    ? `Registered service '${r.id}'.`
    : `Registered service '${r.id}' on this host; the registry is unreachable, it will be synced when it is back.`;
}

/** TTL check ids by service id: the service itself must report them, so the user needs the ids. */
async function ttlChecks(client: AgentClient): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const s of (await client.services()).services) {
    const ids = s.checks.filter((c) => c.kind === 'ttl').map((c) => c.checkId);
    if (ids.length > 0) out.set(s.id, ids);
  }
  return out;
}

function registeredLines(r: { id: string; synced: boolean }, ttl: Map<string, string[]>): string[] {
  return [
    registeredLine(r),
    ...(ttl.get(r.id) ?? []).map(
      (id) => `  TTL check '${id}': critical until reported with \`meshctl check pass ${id}\``,
    ),
  ];
}

export function deregisterCommand(): Command {
  const cmd = new Command('deregister').description("deregister services from this host's agent");
  withJson(
    withAgentFlags(
      cmd
        .command('service')
        .description('deregister one service of this host')
        .argument('<id>', 'service (instance) id', parseName('service id')),
    ),
  ).action(async (id: string, opts: AgentFlags & { json?: boolean }) => {
    const res = await withAgent(opts, (c) => c.deregister(id));
    emit(opts, res, (r) => [`Deregistered service '${r.id}'.`]);
  });
  return cmd;
}
