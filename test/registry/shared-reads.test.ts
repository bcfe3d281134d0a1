/**
 * The watchers one change wakes share one store read and one body; a request never gets an
 * answer read before it arrived, nor one read before the registry knew the revision it needs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedReads } from '../../src/registry/shared-reads.js';
import type { RegistryClient } from '../../src/api/registry-client.js';
import { eventually, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

/** A read the test finishes by hand, counting how often it ran. */
function manualRead(revision: number) {
  let calls = 0;
  const finish: Array<() => void> = [];
  const read = () => {
    calls += 1;
    return new Promise<{ revision: number; calls: number }>((resolve) =>
      finish.push(() => resolve({ revision, calls })),
    );
  };
  return { read, calls: () => calls, finishAll: () => finish.splice(0).forEach((f) => f()) };
}

describe('SharedReads', () => {
  it('serves requests that arrived before a read started from that one read and one body', async () => {
    const s = new SharedReads();
    const r = manualRead(7);
    const arrivals = [s.arrival(), s.arrival(), s.arrival()];
    const answers = arrivals.map((a) => s.read('k', a, 7, 7, r.read));
    r.finishAll();
    const got = await Promise.all(answers);
    expect(r.calls()).toBe(1);
    expect(got.every((g) => g === got[0])).toBe(true);
    expect(JSON.parse(got[0]!.body.toString())).toEqual({ revision: 7, calls: 1 });
    expect(s).toMatchObject({ started: 1, joined: 2 });
  });

  it('does not give a request an answer whose read started before the request arrived', async () => {
    const s = new SharedReads();
    const r = manualRead(7);
    const early = s.read('k', s.arrival(), 7, 0, r.read);
    // This request arrives while that read is in flight (e.g. right after its own write).
    const late = s.read('k', s.arrival(), 7, 0, r.read);
    r.finishAll();
    await Promise.all([early, late]);
    expect(r.calls()).toBe(2);
  });

  it('does not share a read that started before the registry knew the revision a woken watcher needs', async () => {
    const s = new SharedReads();
    const r = manualRead(9);
    const a = s.arrival();
    const b = s.arrival();
    const before = s.read('k', a, 8, 8, r.read);
    const woken = s.read('k', b, 9, 9, r.read);
    r.finishAll();
    await Promise.all([before, woken]);
    expect(r.calls()).toBe(2);
  });

  it('keeps different queries apart, and starts afresh once a read is done', async () => {
    const s = new SharedReads();
    const r = manualRead(3);
    const a = s.arrival();
    const x = s.read('x', a, 3, 3, r.read);
    const y = s.read('y', a, 3, 3, r.read);
    r.finishAll();
    await Promise.all([x, y]);
    expect(r.calls()).toBe(2);
    const z = s.read('x', a, 3, 3, r.read);
    r.finishAll();
    await z;
    expect(r.calls()).toBe(3);
  });

  it('gives every sharer the error of a failed read, and the next read starts anew', async () => {
    const s = new SharedReads();
    const a = s.arrival();
    const fail = () => Promise.reject(new Error('store down'));
    await expect(Promise.all([s.read('k', a, 1, 1, fail), s.read('k', a, 1, 1, fail)])).rejects.toThrow('store down');
    const ok = await s.read('k', a, 1, 1, () => Promise.resolve({ revision: 1 }));
    expect(ok.revision).toBe(1);
  });
});

describe('blocking queries woken by one change (real registry)', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answer every watcher with the change, each with the index header of that answer', async () => {
    const { client } = await t.joinNode('watch-node');
    const first = await t.admin.instances('api');
    const watchers = Array.from({ length: 40 }, () => t.admin.instances('api', { index: first.revision, wait: '30s' }));
    const plain = Array.from({ length: 5 }, () => t.admin.services({ index: first.revision, wait: '30s' }));
    const { revision } = await client.register({ name: 'api', port: 9100 });
    const got = await Promise.all(watchers);
    for (const g of got) {
      expect(g.revision).toBeGreaterThanOrEqual(revision);
      expect(g.instances.map((i) => i.name)).toEqual(['api']);
    }
    for (const g of await Promise.all(plain)) expect(g.services.map((s) => s.name)).toContain('api');
    // A read right after a write sees it, whatever reads are in flight.
    await expectFreshReadAfterWrite(client);
  });

  it('wakes 200 watchers of one query with one store read between them, not one each', async () => {
    const { client } = await t.joinNode('fanout-node');
    const first = await t.admin.instances('web');
    const n = 200;
    const watchers = Array.from({ length: n }, () => t.admin.instances('web', { index: first.revision, wait: '30s' }));
    await eventually(async () => (await t.admin.status()).blockingQueries >= n, { what: `${n} held queries` });
    // The real store, counted: every catalog read and every write goes through txn().
    const store = t.registry.store;
    const txn = store.txn.bind(store);
    let txns = 0;
    store.txn = (req) => {
      txns += 1;
      return txn(req);
    };
    try {
      await client.register({ name: 'web', port: 9200 });
      const got = await Promise.all(watchers);
      expect(got.every((g) => g.instances.some((i) => i.name === 'web'))).toBe(true);
    } finally {
      store.txn = txn;
    }
    // The registration's own writes and reads, and one shared read for the 200 (a second one
    // at most, for a watcher woken while the first was finishing): far from one per watcher.
    expect(txns).toBeLessThan(12);
  });

  async function expectFreshReadAfterWrite(client: RegistryClient) {
    const again = await client.register({ name: 'api', id: 'api-2', port: 9101 });
    const after = await t.admin.instances('api');
    expect(after.revision).toBeGreaterThanOrEqual(again.revision);
    expect(after.instances.map((i) => i.id).sort()).toEqual(['api', 'api-2']);
  }
});
