/**
 * The agent's blocking-query loops (agent/proxies/watch.ts) against a real registry: what the
 * proxies need (healthy instances of upstreams, intentions, revoked leaf serials, config
 * entries) arrives on change, a change that does not matter to a proxy does not wake it, and
 * the last answer is kept while the registry is away (proxies fail static).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../../../src/api/registry-client.js';
import { CatalogWatch } from '../../../src/agent/proxies/watch.js';
import { agentPaths } from '../../../src/agent/paths.js';
import { RegistryLink } from '../../../src/agent/registry-link.js';
import { createKeyAndCsr, serviceId } from '../../../src/ca/index.js';
import { normalizeSerial } from '../../../src/ca/serial.js';
import { silentLogger } from '../../../src/util/log.js';
import { eventually, startTestRegistry, type TestRegistry } from '../../helpers/registry.js';

let dir: string;
let reg: TestRegistry;
let node: RegistryClient;
let link: RegistryLink;
let watch: CatalogWatch;
let changes: number;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-watch-'));
  reg = await startTestRegistry({ store: 'sqlite' });
  const joined = await reg.joinNode('watch-node');
  node = joined.client;
  await node.updateNode('watch-node', '127.0.0.1');
  // A node without a live lease serves nothing: its instances are not healthy.
  await node.heartbeat('watch-node', 600);
  const paths = agentPaths(dir);
  await mkdir(dirname(paths.nodeCert), { recursive: true });
  await writeFile(paths.nodeCert, joined.certPem);
  await writeFile(paths.nodeKey, joined.keyPem);
  await writeFile(paths.roots, reg.caPem);
  link = new RegistryLink({ registries: [reg.url] }, paths);
  await link.load();
  changes = 0;
  watch = new CatalogWatch(link, silentLogger(), () => (changes += 1), 5);
});

afterEach(async () => {
  watch.stop();
  link.close();
  await reg.close();
  await rm(dir, { recursive: true, force: true });
});

/** Waits until every loop has answered once, and returns the change count then. */
async function started(services: string[] = []): Promise<number> {
  watch.start();
  watch.setServices(new Set(services));
  await eventually(
    () =>
      watch.intentionsView() !== undefined &&
      watch.revokedSerials() !== undefined &&
      watch.configEntries() !== undefined &&
      services.every((s) => watch.instancesOf(s) !== undefined),
    { what: 'first answers' },
  );
  return changes;
}

const TTL = { id: 'ttl', kind: 'ttl', ttlMs: 60_000 };

describe('CatalogWatch', () => {
  it('nothing is known before the registry answered; then the first answers are there', async () => {
    expect(watch.intentionsView()).toBeUndefined();
    expect(watch.revokedSerials()).toBeUndefined();
    expect(watch.configEntries()).toBeUndefined();
    expect(watch.instancesOf('api')).toBeUndefined();
    await started(['api']);
    expect(watch.intentionsView()).toEqual({ defaultAction: 'deny', intentions: [] });
    expect(watch.revokedSerials()).toEqual([]);
    expect(watch.configEntries()).toEqual([]);
    expect(watch.instancesOf('api')).toEqual([]);
  });

  it('a healthy instance of a watched upstream arrives, and leaves when it turns critical', async () => {
    await started(['api']);
    await node.register({ name: 'api', id: 'api-1', port: 9000, checks: [TTL] });
    await node.updateCheck('watch-node', 'api-1', 'ttl', 'passing');
    await eventually(() => watch.instancesOf('api')?.length === 1, { what: 'api-1 healthy' });
    expect(watch.instancesOf('api')![0]).toMatchObject({ id: 'api-1', node: 'watch-node', port: 9000 });

    await node.updateCheck('watch-node', 'api-1', 'ttl', 'critical', 'down');
    await eventually(() => watch.instancesOf('api')?.length === 0, { what: 'api-1 gone from the healthy list' });
  });

  it('a check output that changes nothing a proxy uses does not wake the proxies', async () => {
    await started(['api']);
    await node.register({ name: 'api', id: 'api-1', port: 9000, checks: [TTL] });
    await node.updateCheck('watch-node', 'api-1', 'ttl', 'passing', 'ok 1');
    await eventually(() => watch.instancesOf('api')?.length === 1, { what: 'api-1 healthy' });
    const before = changes;
    await node.updateCheck('watch-node', 'api-1', 'ttl', 'passing', 'ok 2');
    // The marker: a change that matters, made after the one that does not, is the only wake-up.
    await node.register({ name: 'api', id: 'api-2', port: 9001 });
    await eventually(() => watch.instancesOf('api')?.length === 2, { what: 'api-2' });
    expect(changes - before).toBe(1);
  });

  it('intentions, revoked leaves and config entries each arrive on change', async () => {
    const first = await started();
    await reg.admin.putIntention('web', 'api', 'allow');
    await eventually(() => watch.intentionsView()?.intentions.length === 1, { what: 'the intention' });
    expect(watch.intentionsView()!.intentions[0]).toEqual({ source: 'web', destination: 'api', action: 'allow' });

    // A leaf this node got for a service it serves, then the node removed: the leaf is revoked.
    await node.register({ name: 'web', port: 8080 });
    const { csrPem } = await createKeyAndCsr({ spiffeId: serviceId(reg.init.trustDomain, 'web') });
    const leaf = await node.sign('web', csrPem);
    await reg.admin.removeNode('watch-node');
    await eventually(() => watch.revokedSerials()?.includes(normalizeSerial(leaf.serial)), {
      what: 'the revoked leaf serial',
    });
    // Node certificates are no proxy's business: leaves only.
    expect(watch.revokedSerials()).toEqual([normalizeSerial(leaf.serial)]);
    expect(changes).toBeGreaterThanOrEqual(first + 2);
  });

  it('config entries arrive, service-intentions aside (they come as intentions)', async () => {
    await started();
    await reg.admin.applyConfig([{ kind: 'service-defaults', name: 'api', protocol: 'http' }], ['test'], false);
    await eventually(() => watch.configEntries()?.length === 1, { what: 'the config entry' });
    expect(watch.configEntries()![0]).toMatchObject({ kind: 'service-defaults', name: 'api' });
  });

  it('an upstream no longer watched is forgotten; one watched again is asked afresh', async () => {
    await started(['api', 'db']);
    watch.setServices(new Set(['db']));
    expect(watch.instancesOf('api')).toBeUndefined();
    expect(watch.instancesOf('db')).toEqual([]);
    watch.setServices(new Set(['api', 'db']));
    await eventually(() => watch.instancesOf('api') !== undefined, { what: 'api asked again' });
  });

  it('while the registry is away the last answer is kept; changes made there arrive once it is back', async () => {
    await started(['api']);
    await node.register({ name: 'api', id: 'api-1', port: 9000 });
    await eventually(() => watch.instancesOf('api')?.length === 1, { what: 'api-1' });

    await reg.registry.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(watch.instancesOf('api')).toHaveLength(1);
    expect(watch.intentionsView()).toBeDefined();

    await reg.restart();
    await reg.admin.putIntention('web', 'api', 'allow');
    await eventually(() => watch.intentionsView()?.intentions.length === 1, {
      what: 'the intention made after the restart',
      timeoutMs: 30_000,
    });
    expect(watch.instancesOf('api')).toHaveLength(1);
  });

  it('after stop() nothing more is heard', async () => {
    await started(['api']);
    watch.stop();
    const before = changes;
    await reg.admin.putIntention('web', 'api', 'allow');
    await node.register({ name: 'api', id: 'api-1', port: 9000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(changes).toBe(before);
    expect(watch.intentionsView()!.intentions).toEqual([]);
  });
});
