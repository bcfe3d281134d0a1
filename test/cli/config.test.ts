/**
 * `meshctl apply -f`, `get config`, `delete config` and `config history` as an operator uses
 * them, against a real registry process. Text output is pinned by golden files
 * (test/cli/testdata/config/*.golden; UPDATE_GOLDEN=1 rewrites them), with revisions, times
 * and token ids replaced by placeholders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startCliRegistry, stopAllDaemons, type CliResult } from '../helpers/cli.js';

const GOLDEN = new URL('./testdata/config/', import.meta.url);

function normalize(s: string): string {
  // Same-width placeholders keep the tables aligned as printed.
  return s
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, 'YYYY-MM-DDTHH:MM:SS.mmmZ')
    .replace(/admin token [0-9a-f]{16}/g, 'admin token xxxxxxxxxxxxxxxx')
    .replace(/revision \d+/g, 'revision N')
    .replace(/(^| {2})(\d+)(?= {2})/gm, (_m, pre: string, n: string) => pre + 'N'.padEnd(n.length));
}

async function golden(name: string, r: CliResult): Promise<void> {
  const got = normalize(r.stdout);
  const file = new URL(`${name}.golden`, GOLDEN);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    await mkdir(GOLDEN, { recursive: true });
    await writeFile(file, got);
  }
  expect(got).toBe(await readFile(file, 'utf8'));
}

const FILE_A = `kind: service-resolver
name: api
default_subset: v1
subsets:
  v1: { filter: 'Service.Meta.version == v1' }
  v2: { filter: 'Service.Meta.version == v2' }
---
kind: service-splitter
name: api
splits:
  - { weight: 90, service_subset: v1 }
  - { weight: 10, service_subset: v2 }
---
kind: service-router
name: api
routes:
  - match: { http: { header: [{ name: x-canary, exact: "1" }] } }
    destination: { service_subset: v2 }
  - match: { http: { path_prefix: /v2/ } }
    destination: { service_subset: v2, prefix_rewrite: / }
`;

describe('meshctl apply / get config / delete config / config history (real registry)', () => {
  let dir: string;
  let env: Record<string, string>;
  const cli = (args: string[], input?: string) => runCli(args, env, input === undefined ? {} : { input });
  const ok = async (args: string[], input?: string) => {
    const r = await cli(args, input);
    expect(r.exitCode, `meshctl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const revision = async () =>
    (JSON.parse((await ok(['get', 'config', '--json'])).stdout) as { revision: number }).revision;

  beforeAll(async () => {
    ({ dir, env } = await startCliRegistry('meshctl-configcli-'));
    await writeFile(join(dir, 'api.yaml'), FILE_A);
  });
  afterAll(async () => {
    await stopAllDaemons();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a multi-document file and lists what is live', async () => {
    await golden('apply', await ok(['apply', '-f', join(dir, 'api.yaml')]));
    await golden('get', await ok(['get', 'config']));
    await golden('get-one-yaml', await ok(['get', 'config', 'service-splitter', 'api', '-o', 'yaml']));
  });

  it('--dry-run prints a diff and changes nothing (the revision is unchanged)', async () => {
    const before = await revision();
    const changed = FILE_A.replace('weight: 90', 'weight: 70').replace('weight: 10', 'weight: 30');
    const r = await ok(['apply', '-f', '-', '--dry-run'], changed);
    await golden('apply-dry-run', r);
    expect(await revision()).toBe(before);
    const json = JSON.parse((await ok(['apply', '-f', '-', '--dry-run', '--json'], changed)).stdout) as {
      dryRun: boolean;
      revision: number;
      changes: unknown[];
    };
    expect(json.dryRun).toBe(true);
    expect(json.revision).toBe(before);
    expect(json.changes).toContainEqual({ kind: 'service-splitter', name: 'api', op: 'update' });
    expect(await revision()).toBe(before);
  });

  it('a file with one bad document among good ones changes nothing and names the bad one', async () => {
    const before = await revision();
    await writeFile(
      join(dir, 'bad.yaml'),
      `kind: service-defaults\nname: web\nprotocol: http\n---\nkind: service-splitter\nname: api\nsplits:\n  - { weight: 90, service_subset: v1 }\n  - { weight: 20, service_subset: v2 }\n`,
    );
    const r = await cli(['apply', '-f', join(dir, 'bad.yaml')]);
    expect(r.exitCode).toBe(65);
    expect(r.stderr).toContain(
      `${join(dir, 'bad.yaml')} document 2 (service-splitter api): splits: weights sum to 110.00, not 100`,
    );
    expect(r.stderr).toContain('MESH_ERR_INVALID_CONFIG');
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(await revision()).toBe(before);
    expect((await cli(['get', 'config', 'service-defaults', 'web'])).exitCode).toBe(66);
    const schema = await cli(
      ['apply', '-f', '-'],
      'kind: service-router\nname: api\nroutes:\n  - match: { http: { path_prefx: /x } }\n',
    );
    expect(schema.exitCode).toBe(65);
    expect(schema.stderr).toContain('stdin (service-router api): routes.0.match.http: Unrecognized key: "path_prefx"');
    const yamlErr = await cli(['apply', '-f', '-'], 'kind: service-router\nname: [api\n');
    expect(yamlErr.exitCode).toBe(65);
    expect(yamlErr.stderr).toMatch(/stdin:\d+:\d+: Flow sequence/);
    const kind = await cli(['apply', '-f', '-'], 'kind: service-gateway\nname: api\n');
    expect(kind.stderr).toContain('stdin (service-gateway api): kind: unknown kind "service-gateway"');
    expect(await revision()).toBe(before);
  });

  it('get config -o yaml | apply -f - is a no-op, and so is -o json and --json', async () => {
    const before = await revision();
    const yaml = (await ok(['get', 'config', '-o', 'yaml'])).stdout;
    await golden('reapply-yaml', await ok(['apply', '-f', '-'], yaml));
    const json = (await ok(['get', 'config', '-o', 'json'])).stdout;
    expect((await ok(['apply', '-f', '-'], json)).stdout).toMatch(/nothing to change/);
    const api = (await ok(['get', 'config', '--json'])).stdout;
    expect((await ok(['apply', '-f', '-'], api)).stdout).toMatch(/nothing to change/);
    expect(await revision()).toBe(before);
  });

  it('applies a directory in name order, and JSON files', async () => {
    const d = join(dir, 'policy');
    await mkdir(d);
    await writeFile(join(d, '10-defaults.yaml'), 'kind: service-defaults\nname: api\nprotocol: http\n');
    await writeFile(
      join(d, '20-intentions.json'),
      JSON.stringify({ kind: 'service-intentions', name: 'api', sources: [{ name: 'web', action: 'allow' }] }),
    );
    await writeFile(join(d, 'README.txt'), 'not a config file');
    await golden('apply-dir', await ok(['apply', '-f', d]));
    // The intention commands see (and edit) the same object.
    expect((await ok(['intention', 'list'])).stdout).toMatch(/web +api +allow/);
    await ok(['intention', 'deny', 'batch', 'api']);
    expect((await ok(['get', 'config', 'service-intentions', 'api', '-o', 'yaml'])).stdout).toBe(
      'kind: service-intentions\nname: api\nsources:\n  - name: batch\n    action: deny\n  - name: web\n    action: allow',
    );
  });

  it('delete config is refused while referenced, then works', async () => {
    const r = await cli(['delete', 'config', 'service-resolver', 'api']);
    expect(r.exitCode).toBe(65);
    expect(r.stderr).toContain('MESH_ERR_CONFIG_IN_USE');
    expect(r.stderr).toContain(
      'service-resolver api is in use: service-router/api routes.0.destination.service_subset',
    );
    await golden('delete', await ok(['delete', 'config', 'service-router', 'api']));
    const bad = await cli(['delete', 'config', 'service-gateway', 'api']);
    expect(bad.exitCode).toBe(64);
    expect(bad.stderr).toContain("'service-gateway' is not a config kind");
  });

  it('config history lists every change with revision, time and who', async () => {
    await golden('history', await ok(['config', 'history']));
    const one = JSON.parse((await ok(['config', 'history', 'service-splitter', 'api', '--json'])).stdout) as {
      changes: Array<{ op: string; who: string; summary: string }>;
    };
    expect(one.changes.map((c) => `${c.op} ${c.summary}`)).toEqual(['create 90% v1, 10% v2']);
    expect(one.changes[0]!.who).toMatch(/^admin token [0-9a-f]{16}$/);
  });

  it('every example in docs/POLICY.md applies, and each kind has one', async () => {
    const doc = await readFile(new URL('../../docs/POLICY.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const kinds = new Set(blocks.map((b) => /^kind: (\S+)/m.exec(b)?.[1]));
    expect([...kinds].sort()).toEqual([
      'service-defaults',
      'service-intentions',
      'service-resolver',
      'service-router',
      'service-splitter',
    ]);
    const r = await ok(['apply', '-f', '-'], blocks.join('---\n'));
    expect(r.stdout).toMatch(/applied at revision \d+/);
    const again = await ok(['apply', '-f', '-'], blocks.join('---\n'));
    expect(again.stdout).toMatch(/nothing to change/);
  });
});
