/**
 * Traffic policy as files: `meshctl apply -f`, `get config`, `delete config` and `config history`
 * (config entries, docs/POLICY.md). The registry validates and applies; these commands read the
 * files, send every document in one request (all or nothing) and print what changed.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { text } from 'node:stream/consumers';
import { CONFIG_KINDS, isConfigKind, type ConfigKind } from '../../api/config-kinds.js';
import { entryYaml, summarize } from '../../api/config-summary.js';
import type { ConfigEntry } from '../../api/config-entries.js';
import { MeshError } from '../../errors/index.js';
import { registryClientFor, type RegistryFlags } from '../../targets/registry.js';
import { parseIntentionName, registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { printJson, printLines, printTable } from '../output.js';
import { readConfigDocuments } from '../config-files.js';

type Opts = RegistryFlags & { json?: boolean };

function parseKind(value: string): ConfigKind {
  if (!isConfigKind(value))
    throw new InvalidArgumentError(`'${value}' is not a config kind: use one of ${CONFIG_KINDS.join(', ')}.`);
  return value;
}

async function withClient<T>(
  opts: Opts,
  fn: (c: Awaited<ReturnType<typeof registryClientFor>>) => Promise<T>,
): Promise<T> {
  const client = await registryClientFor(registryFlags(opts));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

const PAST: Record<string, string> = {
  create: 'created',
  update: 'updated',
  delete: 'deleted',
  unchanged: 'unchanged',
};

export function applyCommand(): Command {
  return withJson(
    withRegistryFlags(
      new Command('apply')
        .description('apply config entries from YAML or JSON files, all or nothing (docs/POLICY.md)')
        .requiredOption(
          '-f, --file <path>',
          'a file, a directory of *.yaml/*.yml/*.json files, or - for standard input',
        )
        .option('--dry-run', 'validate against the live state and print the diff; change nothing'),
    ),
  ).action(async (opts: Opts & { file: string; dryRun?: boolean }) => {
    const docs = await readConfigDocuments(opts.file, () => text(process.stdin));
    await withClient(opts, async (client) => {
      const res = await client.applyConfig(
        docs.map((d) => d.raw),
        docs.map((d) => d.label),
        opts.dryRun === true,
      );
      if (opts.json) return printJson(res);
      const lines: string[] = [];
      if (res.dryRun && res.diff) lines.push(...res.diff.trimEnd().split('\n'));
      for (const c of res.changes)
        lines.push(
          res.dryRun && c.op !== 'unchanged'
            ? `${c.kind}/${c.name} would be ${PAST[c.op]}`
            : `${c.kind}/${c.name} ${PAST[c.op]}`,
        );
      const changed = res.changes.some((c) => c.op !== 'unchanged');
      lines.push(
        res.dryRun
          ? `dry run: nothing changed (revision ${res.revision})`
          : changed
            ? `applied at revision ${res.revision}`
            : `nothing to change (revision ${res.revision})`,
      );
      printLines(lines);
    });
  });
}

export function getCommand(): Command {
  const cmd = new Command('get').description('print what is live in the registry');
  withJson(
    withRegistryFlags(
      cmd
        .command('config')
        .description('print config entries: all, of one KIND, or one (re-applying -o yaml|json output changes nothing)')
        .argument('[kind]', `one of ${CONFIG_KINDS.join(', ')}`, parseKind)
        .argument('[name]', 'entry name (a service name, or * for service-intentions)', parseIntentionName)
        .addOption(
          new Option('-o, --output <format>', 'yaml or json: the entries as files (default: a table)').choices([
            'yaml',
            'json',
          ]),
        ),
    ),
  ).action(
    async (kind: ConfigKind | undefined, name: string | undefined, opts: Opts & { output?: 'yaml' | 'json' }) => {
      await withClient(opts, async (client) => {
        const res = await client.configEntries({ ...(kind ? { kind } : {}), ...(name ? { name } : {}) });
        if (name && res.entries.length === 0)
          throw new MeshError('MESH_ERR_NOT_FOUND', `no config entry ${kind} ${name}`, {
            hint: 'List what is live with `meshctl get config`.',
          });
        if (opts.json) return printJson(res);
        const entries: ConfigEntry[] = res.entries.map((e) => e.entry);
        if (opts.output === 'json') return printJson({ revision: res.revision, entries });
        if (opts.output === 'yaml') {
          process.stdout.write(entries.map(entryYaml).join('---\n'));
          return;
        }
        printTable(
          ['KIND', 'NAME', 'REVISION', 'SUMMARY'],
          res.entries.map((e) => [e.entry.kind, e.entry.name, String(e.modRevision), summarize(e.entry)]),
          'no config entries',
        );
      });
    },
  );
  return cmd;
}

export function deleteCommand(): Command {
  const cmd = new Command('delete').description('delete something from the registry');
  withJson(
    withRegistryFlags(
      cmd
        .command('config')
        .description('delete one config entry (refused while another entry references it)')
        .argument('<kind>', `one of ${CONFIG_KINDS.join(', ')}`, parseKind)
        .argument('<name>', 'entry name', parseIntentionName),
    ),
  ).action(async (kind: ConfigKind, name: string, opts: Opts) => {
    await withClient(opts, async (client) => {
      const res = await client.deleteConfig(kind, name);
      if (opts.json) return printJson(res);
      printLines([`${kind}/${name} deleted at revision ${res.revision}`]);
    });
  });
  return cmd;
}

export function configCommand(): Command {
  const cmd = new Command('config').description(
    'config entries: their history (apply, get and delete are top-level commands)',
  );
  withJson(
    withRegistryFlags(
      cmd
        .command('history')
        .description('every change to config entries, oldest first: revision, time, who, what')
        .argument('[kind]', `one of ${CONFIG_KINDS.join(', ')}`, parseKind)
        .argument('[name]', 'entry name', parseIntentionName),
    ),
  ).action(async (kind: ConfigKind | undefined, name: string | undefined, opts: Opts) => {
    if (kind && !name) throw new MeshError('MESH_ERR_USAGE', 'config history takes KIND and NAME together, or neither');
    await withClient(opts, async (client) => {
      const res = await client.configHistory({ ...(kind ? { kind } : {}), ...(name ? { name } : {}) });
      if (opts.json) return printJson(res);
      printTable(
        ['REVISION', 'TIME', 'WHO', 'CHANGE', 'ENTRY', 'SUMMARY'],
        res.changes.map((c) => [String(c.revision), c.time, c.who, c.op, `${c.kind}/${c.name}`, c.summary]),
        'no config changes',
      );
    });
  });
  return cmd;
}
