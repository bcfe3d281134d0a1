/**
 * Config entries in the store, on each backend (memory, sqlite, a real 3-member etcd):
 * apply all or nothing, validation by meaning naming the document, field and reason, no-op
 * re-applies, dry runs, deletes refused while referenced, and a history record per change.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configEntrySchema, type ConfigEntry } from '../../src/api/config-entries.js';
import { ConfigEntries, type ApplyDocument } from '../../src/registry/config-entries.js';
import { Intentions } from '../../src/registry/intentions.js';
import { MeshError } from '../../src/errors/index.js';
import { EtcdStore, MemoryStore, SqliteStore, type Store } from '../../src/store/index.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { ETCD_PORTS } from '../helpers/hosts.js';

const docs = (...raw: unknown[]): ApplyDocument[] =>
  raw.map((r, i) => {
    const entry = configEntrySchema.parse(r) as ConfigEntry;
    return { entry, label: `document ${i + 1} (${entry.kind} ${entry.name})` };
  });

const resolver = {
  kind: 'service-resolver',
  name: 'api',
  default_subset: 'v1',
  subsets: { v1: { filter: 'Service.Meta.version == v1' }, v2: { filter: 'Service.Meta.version == v2' } },
};
const splitter = {
  kind: 'service-splitter',
  name: 'api',
  splits: [
    { weight: 90, service_subset: 'v1' },
    { weight: 10, service_subset: 'v2' },
  ],
};
const router = {
  kind: 'service-router',
  name: 'api',
  routes: [
    { match: { http: { header: [{ name: 'x-canary', exact: '1' }] } }, destination: { service_subset: 'v2' } },
    { match: { http: { path_prefix: '/v2/' } }, destination: { service_subset: 'v2', prefix_rewrite: '/' } },
  ],
};

async function refusal(p: Promise<unknown>): Promise<MeshError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof MeshError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

let dir = '';
let cluster: EtcdCluster | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-config-entries-'));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const backends: Array<[string, () => Promise<Store>]> = [
  ['memory', async () => new MemoryStore()],
  ['sqlite', async () => SqliteStore.open({ path: join(dir, `s-${Math.random()}.db`) })],
  [
    'etcd',
    async () => {
      cluster ??= await startEtcdCluster({ basePort: ETCD_PORTS.configEntries, dir: join(dir, 'etcd') });
      const s = await EtcdStore.open({
        endpoints: cluster.endpoints,
        prefix: `/t${Math.random().toString(36).slice(2)}/`,
      });
      return s;
    },
  ],
];

describe.each(backends)('config entries on the %s store', (_name, open) => {
  let store: Store;
  let cfg: ConfigEntries;
  beforeAll(async () => {
    store = await open();
    cfg = new ConfigEntries(store);
  });
  afterAll(async () => {
    await store.close();
  });

  it('applies several documents in one revision, and re-applying them writes nothing', async () => {
    const before = await store.revision();
    const res = await cfg.apply(docs(resolver, splitter, router), { dryRun: false, who: 'admin token t1' });
    expect(res.changes.map((c) => c.op)).toEqual(['create', 'create', 'create']);
    expect(res.revision).toBe(before + 1);
    const again = await cfg.apply(docs(resolver, splitter, router), { dryRun: false, who: 'admin token t1' });
    expect(again.changes.map((c) => c.op)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(again.revision).toBe(res.revision);
    expect(await store.revision()).toBe(res.revision);
    const live = await cfg.list();
    expect(live.entries.map((e) => `${e.entry.kind}/${e.entry.name}`)).toEqual([
      'service-resolver/api',
      'service-router/api',
      'service-splitter/api',
    ]);
  });

  it('a dry run answers the diff and changes nothing', async () => {
    const before = await store.revision();
    const res = await cfg.apply(
      docs({
        ...splitter,
        splits: [
          { weight: 70, service_subset: 'v1' },
          { weight: 30, service_subset: 'v2' },
        ],
      }),
      { dryRun: true, who: 'admin token t1' },
    );
    expect(res.changes).toEqual([{ kind: 'service-splitter', name: 'api', op: 'update' }]);
    expect(res.diff).toContain('-  - weight: 90');
    expect(res.diff).toContain('+  - weight: 70');
    expect(await store.revision()).toBe(before);
    expect(((await cfg.get('service-splitter', 'api')).entry.entry as typeof splitter).splits[0]!.weight).toBe(90);
  });

  it('one bad document among good ones changes nothing and is named with its field and reason', async () => {
    const before = await store.revision();
    const e = await refusal(
      cfg.apply(
        docs(
          { kind: 'service-defaults', name: 'web', protocol: 'http' },
          {
            ...splitter,
            splits: [
              { weight: 60.5, service_subset: 'v1' },
              { weight: 39, service_subset: 'v3' },
            ],
          },
        ),
        { dryRun: false, who: 'admin token t1' },
      ),
    );
    expect(e.code).toBe('MESH_ERR_INVALID_CONFIG');
    expect(e.message).toContain('document 2 (service-splitter api): splits: weights sum to 99.50, not 100');
    expect(e.message).toContain(
      'document 2 (service-splitter api): splits.1.service_subset: subset "v3" is not defined by service-resolver api (it defines: v1, v2)',
    );
    expect(await store.revision()).toBe(before);
    await expect(cfg.get('service-defaults', 'web')).rejects.toThrow(/no config entry/);
  });

  it('refuses weights with more than two decimals, bad regexes, filters that do not parse, and cycles', async () => {
    const cases: Array<[unknown[], RegExp]> = [
      [
        [
          {
            ...splitter,
            splits: [
              { weight: 33.333, service_subset: 'v1' },
              { weight: 66.667, service_subset: 'v2' },
            ],
          },
        ],
        /splits\.0\.weight: 33\.333 has more than two decimals/,
      ],
      [
        [{ kind: 'service-router', name: 'api', routes: [{ match: { http: { path_regex: '/(a' } } }] }],
        /routes\.0\.match\.http\.path_regex: does not compile as an RE2 regular expression \(error parsing regexp: missing closing \)/,
      ],
      [
        [{ kind: 'service-router', name: 'api', routes: [{ match: { http: { path_regex: '(a+)+\\1' } } }] }],
        /does not compile as an RE2 regular expression/,
      ],
      [
        [{ ...resolver, subsets: { v1: { filter: 'Service.Meta.version = v1' } }, default_subset: 'v1' }],
        /subsets\.v1\.filter: does not parse at column 22: expected "==" or "!=" after Service\.Meta\.version, found "="/,
      ],
      [[{ ...resolver, default_subset: 'v9' }], /default_subset: subset "v9" is not in subsets/],
      [
        [
          { kind: 'service-splitter', name: 'a', splits: [{ weight: 100, service: 'b' }] },
          {
            kind: 'service-splitter',
            name: 'b',
            splits: [
              { weight: 50, service: 'a' },
              { weight: 50, service: 'c' },
            ],
          },
        ],
        /splitters form a cycle: service-splitter a -> service-splitter b -> service-splitter a/,
      ],
      [
        [
          { kind: 'service-defaults', name: 'db', protocol: 'tcp' },
          { kind: 'service-router', name: 'db', routes: [] },
        ],
        /service-router works on HTTP requests, but service-defaults db says protocol tcp/,
      ],
    ];
    const before = await store.revision();
    for (const [raw, re] of cases) {
      const e = await refusal(cfg.apply(docs(...raw), { dryRun: false, who: 'admin token t1' }));
      expect(e.code, String(re)).toBe('MESH_ERR_INVALID_CONFIG');
      expect(e.message).toMatch(re);
    }
    expect(await store.revision()).toBe(before);
  });

  it('refuses to delete an entry another one references, and deletes it once nothing does', async () => {
    const e = await refusal(cfg.delete('service-resolver', 'api', 'admin token t1'));
    expect(e.code).toBe('MESH_ERR_CONFIG_IN_USE');
    expect(e.message).toMatch(/^service-resolver api is in use: /);
    expect(e.message).toMatch(
      /service-splitter\/api splits\.0\.service_subset: subset "v1" needs a service-resolver api/,
    );
    expect(e.message).toMatch(/service-router\/api routes\.0\.destination\.service_subset/);
    await cfg.delete('service-router', 'api', 'admin token t1');
    await cfg.delete('service-splitter', 'api', 'admin token t1');
    await cfg.delete('service-resolver', 'api', 'admin token t1');
    expect((await cfg.list()).entries).toEqual([]);
    expect((await refusal(cfg.delete('service-resolver', 'api', 'x'))).code).toBe('MESH_ERR_NOT_FOUND');
  });

  it('service-intentions are the intention records: the intention commands and apply edit the same objects', async () => {
    await cfg.setIntention('web', 'api', 'allow', 'web calls api', 'admin token t1');
    const e = (await cfg.get('service-intentions', 'api')).entry.entry;
    expect(e).toEqual({
      kind: 'service-intentions',
      name: 'api',
      sources: [{ name: 'web', action: 'allow', description: 'web calls api' }],
    });
    await cfg.apply(
      docs({
        kind: 'service-intentions',
        name: 'api',
        sources: [
          { name: 'web', permissions: [{ action: 'allow', http: { path_prefix: '/api/', methods: ['GET'] } }] },
          { name: 'batch', action: 'deny' },
        ],
      }),
      { dryRun: false, who: 'node web-1' },
    );
    const list = await new Intentions(store).list();
    expect(list.intentions.map((i) => [i.source, i.destination, i.action])).toEqual([
      ['batch', 'api', 'deny'],
      ['web', 'api', 'allow'],
    ]);
    expect((list.intentions[1] as { permissions?: unknown }).permissions).toEqual([
      { action: 'allow', http: { path_prefix: '/api/', methods: ['GET'] } },
    ]);
    await cfg.removeIntention('batch', 'api', 'admin token t1');
    await cfg.removeIntention('web', 'api', 'admin token t1');
    expect((await cfg.list('service-intentions')).entries).toEqual([]);
  });

  it('keeps a history record per change with revision, time and who', async () => {
    const h = await cfg.history();
    const lines = h.changes.map((c) => `${c.op} ${c.kind}/${c.name} by ${c.who}: ${c.summary}`);
    expect(lines).toEqual([
      'create service-resolver/api by admin token t1: subsets v1, v2, default v1',
      'create service-splitter/api by admin token t1: 90% v1, 10% v2',
      'create service-router/api by admin token t1: 2 routes',
      'delete service-router/api by admin token t1: ',
      'delete service-splitter/api by admin token t1: ',
      'delete service-resolver/api by admin token t1: ',
      'create service-intentions/api by admin token t1: web allow',
      'update service-intentions/api by node web-1: batch deny, web L7 (1 permission)',
      'update service-intentions/api by admin token t1: web L7 (1 permission)',
      'delete service-intentions/api by admin token t1: ',
    ]);
    const revs = h.changes.map((c) => c.revision);
    expect([...revs].sort((a, b) => a - b)).toEqual(revs);
    expect(revs[0]).toBe(revs[1]); // one apply, one revision
    expect(h.changes.every((c) => !Number.isNaN(Date.parse(c.time)))).toBe(true);
    const one = await cfg.history('service-splitter', 'api');
    expect(one.changes.map((c) => c.op)).toEqual(['create', 'delete']);
  });
});
