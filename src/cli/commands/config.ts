/**
 * Traffic policy as files: `meshctl apply -f`, `get config`, `delete config` and `config history`
 * (config entries, docs/POLICY.md). The registry validates and applies; these commands read the
 * files, send every document in one request (all or nothing) and print what changed.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { text } from 'node:stream/consumers';
import { CONFIG_KINDS, isConfigKind, type ConfigKind } from '../../api/config-kinds.js';
// The yaml library (≈ 2 MB of RSS) loads only for the commands that read or print YAML, not with
// every command of the CLI (a sidecar proxy is `meshctl proxy run`, docs/BENCHMARKS.md "RSS").
import type { ConfigEntry } from '../../api/config-entries.js';
import { MeshError } from '../../errors/index.js';
import type { RegistryFlags } from '../../targets/registry.js';
import { parseIntentionName, withJson, withRegistryFlags } from '../flags.js';
import { printJson, tableLines } from '../output.js';
import { emit, withRegistry } from '../run.js';

type Opts = RegistryFlags & { json?: boolean };

function parseKind(value: string): ConfigKind {
  if (!isConfigKind(value))
    throw new InvalidArgumentError(`'${value}' is not a config kind: use one of ${CONFIG_KINDS.join(', ')}.`);
  return value;
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
    const { readConfigDocuments } = await import('../config-files.js');
    const docs = await readConfigDocuments(opts.file, () => text(process.stdin));
    const res = await withRegistry(opts, (c) =>
      c.applyConfig(
        docs.map((d) => d.raw),
        docs.map((d) => d.label),
        opts.dryRun === true,
      ),
    );
    emit(opts, res, (r) => {
      const lines: string[] = [];
      if (r.dryRun && r.diff) lines.push(...r.diff.trimEnd().split('\n'));
      for (const c of r.changes)
        lines.push(
          r.dryRun && c.op !== 'unchanged'
            ? `${c.kind}/${c.name} would be ${PAST[c.op]}`
            : `${c.kind}/${c.name} ${PAST[c.op]}`,
        );
      const changed = r.changes.some((c) => c.op !== 'unchanged');
      lines.push(
        r.dryRun
          ? `dry run: nothing changed (revision ${r.revision})`
          : changed
            ? `applied at revision ${r.revision}`
            : `nothing to change (revision ${r.revision})`,
      );
      return lines;
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
      const res = await withRegistry(opts, (c) =>
        c.configEntries({ ...(kind ? { kind } : {}), ...(name ? { name } : {}) }),
      );
      if (name && res.entries.length === 0)
        throw new MeshError('MESH_ERR_NOT_FOUND', `no config entry ${kind} ${name}`, {
          hint: 'List what is live with `meshctl get config`.',
        });
      const entries: ConfigEntry[] = res.entries.map((e) => e.entry);
      const { summarize } = await import('../../api/config-summary.js');
      // -o prints the entries as files (re-appliable); --json the API's answer with revisions.
      if (!opts.json && opts.output === 'json') return printJson({ revision: res.revision, entries });
      if (!opts.json && opts.output === 'yaml') {
        const { entryYaml } = await import('../../api/config-yaml.js');
        process.stdout.write(entries.map(entryYaml).join('---\n'));
        return;
      }
      emit(opts, res, (r) =>
        tableLines(
          ['KIND', 'NAME', 'REVISION', 'SUMMARY'],
          r.entries.map((e) => [e.entry.kind, e.entry.name, String(e.modRevision), summarize(e.entry)]),
          'no config entries',
        ),
      );
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
    const res = await withRegistry(opts, (c) => c.deleteConfig(kind, name));
    emit(opts, res, (r) => [`${kind}/${name} deleted at revision ${r.revision}`]);
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
    const res = await withRegistry(opts, (c) =>
      c.configHistory({ ...(kind ? { kind } : {}), ...(name ? { name } : {}) }),
    );
    emit(opts, res, (r) =>
      tableLines(
        ['REVISION', 'TIME', 'WHO', 'CHANGE', 'ENTRY', 'SUMMARY'],
        r.changes.map((c) => [String(c.revision), c.time, c.who, c.op, `${c.kind}/${c.name}`, c.summary]),
        'no config changes',
      ),
    );
  });
  return cmd;
}
