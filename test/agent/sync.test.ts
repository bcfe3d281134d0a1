/**
 * The anti-entropy loop (agent/sync.ts) against a real registry (in-process, real TLS, sqlite
 * store, so it can be restarted), with a real node certificate and a real state file: what a full sync puts right,
 * what it leaves alone, and how it comes back after the registry goes away or forgets the node.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serviceRegistrationSchema, type ServiceRegistration } from '../../src/api/schemas.js';
import type { RegistryClient } from '../../src/api/registry-client.js';
import { agentPaths } from '../../src/agent/paths.js';
import { RegistryLink } from '../../src/agent/registry-link.js';
import { LocalState } from '../../src/agent/state.js';
import { RegistrySync, type CheckReport } from '../../src/agent/sync.js';
import { silentLogger } from '../../src/util/log.js';
import { eventually, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const NODE = 'sync-node';

let dir: string;
let reg: TestRegistry;
let node: RegistryClient;
let link: RegistryLink;
let state: LocalState;
let sync: RegistrySync | undefined;
/** Check states as this host's CheckManager would report them: `${instance}/${check}` → report. */
let checks: Map<string, CheckReport>;
/** Instances whose sidecar drains, as this host's ProxyManager would say. */
let draining: Set<string>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-sync-'));
  reg = await startTestRegistry({ store: 'sqlite', defaultIntention: 'allow' });
  await joinAs(NODE);
  state = new LocalState(join(dir, 'state.json'));
  await state.load();
  checks = new Map();
  draining = new Set();
});

afterEach(async () => {
  await sync?.stop();
  sync = undefined;
  link.close();
  await reg.close();
  await rm(dir, { recursive: true, force: true });
});

/** Joins the registry as `name` (optionally scoped) and writes its certificate where the link reads it. */
async function joinAs(name: string, scope: { services?: string[] } = {}): Promise<void> {
  const joined = await reg.joinNode(name, '127.0.0.1', scope);
  node = joined.client;
  const paths = agentPaths(dir);
  await mkdir(dirname(paths.nodeCert), { recursive: true });
  await writeFile(paths.nodeCert, joined.certPem);
  await writeFile(paths.nodeKey, joined.keyPem);
  await writeFile(paths.roots, reg.caPem);
  link?.close();
  link = new RegistryLink({ registries: [reg.url] }, paths);
  await link.load();
}

function makeSync(name = NODE, leaseTtlSeconds = 30, fullSyncIntervalMs?: number): RegistrySync {
  sync = new RegistrySync({
    ...(fullSyncIntervalMs ? { fullSyncIntervalMs } : {}),
    link,
    state,
    nodeName: name,
    advertise: '127.0.0.1',
    leaseTtlSeconds,
    checkState: (inst, check) => checks.get(`${inst}/${check}`),
    draining: (inst) => draining.has(inst),
    log: silentLogger(),
  });
  return sync;
}

function service(name: string, extra: Record<string, unknown> = {}): ServiceRegistration {
  return serviceRegistrationSchema.parse({ name, port: 9000, proxy: false, ...extra });
}

async function own(...regs: ServiceRegistration[]): Promise<void> {
  for (const r of regs) await state.upsert({ id: r.id ?? r.name, registration: r, source: { kind: 'cli' } });
}

async function remote(name = NODE) {
  return (await node.nodeInstances(name)).instances;
}

const TTL_CHECK = { id: 'api-ttl', kind: 'ttl', ttlMs: 60_000 };

describe('RegistrySync', () => {
  it('a full sync writes the node and every local instance, with the check states this host holds', async () => {
    await own(service('api', { checks: [TTL_CHECK] }), service('web', { port: 9001 }));
    checks.set('api/api-ttl', { status: 'passing', output: 'ok from the app' });
    expect(await makeSync().syncNow()).toBe(true);

    const instances = await remote();
    expect(instances.map((i) => i.id).sort()).toEqual(['api', 'web']);
    expect(instances.find((i) => i.id === 'api')!.checkStates['api-ttl']).toMatchObject({
      status: 'passing',
      output: 'ok from the app',
    });
    expect((await node.node(NODE)).address).toBe('127.0.0.1');
    expect(sync!.status()).toMatchObject({ registry: reg.url, reachable: true, consecutiveFailures: 0 });
    expect(sync!.status().lastSyncAt).toBeDefined();
  });

  it('reportDraining withdraws an instance at once, and a full sync puts the draining mark right both ways', async () => {
    await own(service('api'), service('web', { port: 9001 }));
    const s = makeSync();
    await s.syncNow();
    draining.add('api');
    expect(await s.reportDraining('api', true)).toBe(true);
    expect((await reg.admin.instances('api')).instances[0]).toMatchObject({ status: 'critical' });
    // The registry lost the mark (e.g. another registry took over): the next full sync puts it back.
    await node.setDraining(NODE, 'api', false);
    expect(await s.syncNow()).toBe(true);
    expect((await remote()).find((i) => i.id === 'api')!.drainingSince).toBeDefined();
    // A new sidecar serves: the full sync clears a mark the registry still has; web was never marked.
    draining.delete('api');
    expect(await s.syncNow()).toBe(true);
    const after = await remote();
    expect(after.find((i) => i.id === 'api')!.drainingSince).toBeUndefined();
    expect(after.find((i) => i.id === 'web')!.drainingSince).toBeUndefined();
  });

  it('never registers an instance twice, however often it syncs', async () => {
    await own(service('api'));
    const s = makeSync();
    for (let i = 0; i < 3; i++) expect(await s.syncNow()).toBe(true);
    expect((await remote()).map((i) => i.id)).toEqual(['api']);
  });

  it('puts back what the registry lost or has wrong, and removes what this host no longer owns', async () => {
    await own(service('api'), service('web', { port: 9001 }));
    const s = makeSync();
    await s.syncNow();
    // Someone else changed the registry behind the agent's back.
    await node.deregister(NODE, 'api');
    await node.register({ ...service('web'), id: 'web', port: 9999 });
    await node.register({ ...service('stray'), id: 'stray' });

    expect(await s.syncNow()).toBe(true);
    const instances = await remote();
    expect(instances.map((i) => i.id).sort()).toEqual(['api', 'web']);
    expect(instances.find((i) => i.id === 'web')!.port).toBe(9001);
  });

  it('pushes a check state that differs from the registry, and reportCheck pushes one change at once', async () => {
    await own(service('api', { checks: [TTL_CHECK] }));
    checks.set('api/api-ttl', { status: 'warning', output: 'slow' });
    const s = makeSync();
    await s.syncNow();
    expect((await remote())[0]!.checkStates['api-ttl']!.status).toBe('warning');

    await s.reportCheck('api', 'api-ttl', { status: 'critical', output: 'down' });
    expect((await remote())[0]!.checkStates['api-ttl']).toMatchObject({ status: 'critical', output: 'down' });

    // The registry was told something else; the next full sync restores what this host holds.
    await node.updateCheck(NODE, 'api', 'api-ttl', 'passing', 'not true');
    checks.set('api/api-ttl', { status: 'critical', output: 'down' });
    await s.syncNow();
    expect((await remote())[0]!.checkStates['api-ttl']!.status).toBe('critical');
  });

  it('a service this node may not serve is refused for that instance only; the rest is registered', async () => {
    await joinAs('scoped-node', { services: ['api'] });
    await own(service('api'), service('billing', { port: 9002 }));
    const s = makeSync('scoped-node');
    expect(await s.syncNow()).toBe(true);
    expect((await remote('scoped-node')).map((i) => i.id)).toEqual(['api']);
    expect(s.refusal('billing')).toMatch(/billing/);
    expect(s.refusal('api')).toBeUndefined();

    // Dropped locally: the refusal is forgotten with it.
    await state.remove('billing');
    await s.syncNow();
    expect(s.refusal('billing')).toBeUndefined();
  });

  it('an unreachable registry is counted and said; once it is back the loop syncs by itself', async () => {
    await own(service('api'));
    const s = makeSync(NODE, 2);
    s.start();
    await eventually(async () => (await remote()).length === 1, { what: 'first sync' });

    await reg.registry.close();
    expect(await s.syncNow()).toBe(false);
    expect(s.status()).toMatchObject({ reachable: false });
    expect(s.status().consecutiveFailures).toBeGreaterThan(0);
    expect(s.status().lastError).toBeDefined();

    // What changed here meanwhile reaches the registry when it is back, without a call from outside.
    await own(service('web', { port: 9001 }));
    await reg.restart();
    await eventually(async () => (await remote()).length === 2, { what: 'web registered by the loop itself' });
    await eventually(() => s.status().reachable && s.status().consecutiveFailures === 0, { what: 'reachable again' });
  });

  it('stop() ends the timers: nothing is written after it', async () => {
    await own(service('api'));
    // A full sync every ~200 ms: a live loop would put 'api' back well within the wait below.
    const s = makeSync(NODE, 2, 200);
    s.start();
    await eventually(async () => (await remote()).length === 1, { what: 'first sync' });
    await s.stop();
    await node.deregister(NODE, 'api');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await remote()).toEqual([]);
  });

  it('between full syncs the loop repairs the registry by itself', async () => {
    await own(service('api'));
    const s = makeSync(NODE, 30, 200);
    s.start();
    await eventually(async () => (await remote()).length === 1, { what: 'first sync' });
    await node.deregister(NODE, 'api');
    await eventually(async () => (await remote()).length === 1, { what: 'api put back by a timed full sync' });
  });
});
