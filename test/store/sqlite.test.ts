import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type WatchBatch } from '../../src/store/index.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { describeStoreConformance, record, sleep, waitFor } from './conformance.js';
import { transpileForChild } from './transpile.js';

let dir = '';
let n = 0;
const freshPath = (): string => join(dir, `store-${++n}.db`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-sqlite-test-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describeStoreConformance('sqlite', (opts) => SqliteStore.open({ path: freshPath(), ...opts }));

describe('sqlite store', () => {
  const opened: Store[] = [];
  const open = async (path: string, historyLimit?: number): Promise<Store> => {
    const s = await openStore(
      historyLimit === undefined ? { kind: 'sqlite', path } : { kind: 'sqlite', path, historyLimit },
    );
    opened.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  it('is what openStore gives for kind sqlite: one private WAL file', async () => {
    const path = freshPath();
    const s = await open(path);
    expect(s.kind).toBe('sqlite');
    await s.put('k', 'v');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    // Bytes 18 and 19 of an SQLite header are 2 when the file is in WAL mode.
    const header = await readFile(path);
    expect([header[18], header[19]]).toEqual([2, 2]);
  });

  it('keeps keys, revision, leases and watch history across close and reopen', async () => {
    const path = freshPath();
    const a = await open(path);
    const all = record(a, '');
    const lease = await a.grantLease(60);
    await a.put('svc/a', '1', { lease: lease.id });
    await a.put('svc/b', '1');
    await a.txn({
      compare: [],
      success: [
        { type: 'put', key: 'svc/b', value: '2' },
        { type: 'put', key: 'cfg', value: 'x' },
      ],
    });
    await a.delete('cfg');
    const rev = await a.revision();
    await all.until(rev);
    const kvs = (await a.range('')).kvs;
    await a.close();

    const b = await open(path);
    expect(await b.revision()).toBe(rev);
    expect((await b.range('')).kvs).toEqual(kvs);
    expect((await b.get('svc/a'))?.lease).toBe(lease.id);
    expect(await b.leaseTimeToLive(lease.id)).toBeGreaterThan(0);
    const replay = record(b, '', { fromRevision: 1 });
    await replay.until(rev);
    expect(replay.batches).toEqual(all.batches);
    // The next write carries on from the stored revision.
    expect(await b.put('after', '1')).toEqual({ revision: rev + 1 });
    // And the reopened lease still owns its keys.
    await b.revokeLease(lease.id);
    expect(await b.get('svc/a')).toBeUndefined();
  });

  it('gives leases a fresh full TTL on reopen, then expires them as usual', async () => {
    const path = freshPath();
    const a = await open(path);
    const lease = await a.grantLease(2);
    await a.put('node/n1', 'up', { lease: lease.id });
    await a.close();
    // Down for longer than the TTL: the holder gets a full TTL to reconnect.
    await sleep(2_500);
    const b = await open(path);
    expect(await b.leaseTimeToLive(lease.id)).toBeGreaterThan(0);
    expect((await b.get('node/n1'))?.value).toBe('up');
    const before = await b.revision();
    const w = record(b, 'node/');
    await waitFor('the lease to expire after reopen', async () => (await b.get('node/n1')) === undefined);
    await w.until(before + 1);
    expect(w.batches.map((x: WatchBatch) => x.events.map((e) => [e.type, e.kv.key]))).toEqual([
      [['delete', 'node/n1']],
    ]);
  });

  it('never reuses a lease id, even after revoke and reopen', async () => {
    const path = freshPath();
    const a = await open(path);
    const ids = [(await a.grantLease(60)).id, (await a.grantLease(60)).id];
    await a.revokeLease(ids[1] as number);
    await a.close();
    const b = await open(path);
    const next = await b.grantLease(60);
    expect(next.id).toBeGreaterThan(Math.max(...ids));
  });

  it('keeps compaction across reopen, and a larger limit does not bring history back', async () => {
    const path = freshPath();
    const a = await open(path, 3);
    for (let i = 0; i < 10; i++) await a.put('k', String(i));
    const compacted = await a.compactedRevision();
    expect(compacted).toBe(9);
    await a.close();
    const b = await open(path, 100);
    expect(await b.compactedRevision()).toBe(compacted);
    const old = record(b, '', { fromRevision: compacted - 1 });
    await waitFor('the compacted error', () => old.errors.length > 0);
    expect(old.errors[0]).toMatchObject({ code: 'MESH_ERR_STORE_COMPACTED' });
    const kept = record(b, '', { fromRevision: compacted });
    await kept.until(11);
    expect(kept.revisions()).toEqual([9, 10, 11]);
  });

  it('refuses a second opener of the same file while it is open', async () => {
    const path = freshPath();
    const a = await open(path);
    await a.put('k', 'v');
    await expect(SqliteStore.open({ path, busyTimeoutMs: 50 })).rejects.toMatchObject({
      code: 'MESH_ERR_STORE',
      message: expect.stringContaining('in use'),
    });
    await a.close();
    const b = await open(path);
    expect((await b.get('k'))?.value).toBe('v');
  });

  it('refuses files that are not a meshctl store, and a missing directory, leaving them alone', async () => {
    const junk = freshPath();
    await writeFile(junk, 'this is not a database, it is a text file with enough bytes to have a header '.repeat(10));
    const junkBefore = await readFile(junk);
    await expect(open(junk)).rejects.toMatchObject({ code: 'MESH_ERR_STORE' });
    expect(await readFile(junk)).toEqual(junkBefore);

    const foreign = freshPath();
    const db = new Database(foreign);
    db.exec('CREATE TABLE kv (x INTEGER)');
    db.close();
    const foreignBefore = await readFile(foreign);
    await expect(open(foreign)).rejects.toMatchObject({
      code: 'MESH_ERR_STORE',
      message: expect.stringContaining('other program'),
    });
    expect(await readFile(foreign)).toEqual(foreignBefore);

    await expect(open(join(dir, 'no-such-dir', 'store.db'))).rejects.toMatchObject({
      code: 'MESH_ERR_STORE',
      message: expect.stringContaining('directory'),
    });
  });

  describe('a write acknowledged before kill -9 survives', () => {
    let childDir = '';
    let storeModule = '';
    beforeAll(async () => {
      childDir = await mkdtemp(join(tmpdir(), 'meshctl-store-child-'));
      storeModule = await transpileForChild('src/store/index.ts', childDir);
    });
    afterAll(async () => {
      if (childDir) await rm(childDir, { recursive: true, force: true });
    });

    it('every put the child saw acknowledged is there after SIGKILL', async () => {
      const path = freshPath();
      const script = join(childDir, 'writer.mjs');
      await writeFile(
        script,
        `
        import { openStore } from ${JSON.stringify(storeModule)};
        const store = await openStore({ kind: 'sqlite', path: process.argv[2] });
        const lease = await store.grantLease(3600);
        process.stdout.write('lease ' + lease.id + '\\n');
        // Bounded, so an orphaned child ends by itself.
        for (let i = 0; i < 100000; i++) {
          const { revision } = await store.put('k/' + i, 'v' + i, i % 2 ? { lease: lease.id } : {});
          process.stdout.write('ack ' + i + ' ' + revision + '\\n');
        }
      `,
      );
      const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const acks = (): string[] => out.split('\n').filter((l) => l.startsWith('ack '));
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
        child.on('error', rej);
        child.on('close', (code, signal) => res({ code, signal }));
      });
      try {
        await waitFor('200 acknowledged puts', () => acks().length >= 200 || child.exitCode !== null, 20_000);
      } finally {
        child.kill('SIGKILL');
      }
      const { signal } = await exited;
      expect(err).toBe('');
      expect(signal).toBe('SIGKILL');

      const leaseId = Number(/^lease (\d+)$/m.exec(out)?.[1]);
      const acked = acks().map((l) => l.split(' ').map(Number) as [number, number, number]);
      expect(acked.length).toBeGreaterThanOrEqual(200);
      const s = await open(path);
      for (const [, i, revision] of acked) {
        expect(await s.get(`k/${i}`)).toEqual({
          key: `k/${i}`,
          value: `v${i}`,
          createRevision: revision,
          modRevision: revision,
          version: 1,
          lease: i % 2 ? leaseId : 0,
        });
      }
      expect(await s.revision()).toBeGreaterThanOrEqual((acked[acked.length - 1] as [number, number, number])[2]);
      expect(await s.leaseTimeToLive(leaseId)).toBeGreaterThan(0);
    });
  });
});
