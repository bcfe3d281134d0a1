/**
 * The one behaviour every store backend must show (etcd v3 semantics, see src/store/types.ts).
 * Backend-agnostic: it only uses the Store interface, so the etcd backend runs it unchanged.
 * Timing never decides a result: waits are bounded polls for a condition.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyValue, Store, WatchBatch, WatchOptions } from '../../src/store/index.js';

export interface StoreFactoryOptions {
  /** Revisions of history the store must keep for watch replay (older ones may be compacted). */
  readonly historyLimit?: number;
}

/** Makes a fresh, empty store. */
export type StoreFactory = (opts: StoreFactoryOptions) => Promise<Store>;

const WAIT_MS = 10_000;

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lets queued callbacks run (microtasks and one macrotask turn). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface Recording {
  readonly batches: WatchBatch[];
  readonly errors: Error[];
  cancel(): void;
  revisions(): number[];
  /** Waits until a batch at or after `revision` has arrived. */
  until(revision: number): Promise<void>;
}

export function record(store: Store, prefix: string, opts: Omit<WatchOptions, 'onError'> = {}): Recording {
  const batches: WatchBatch[] = [];
  const errors: Error[] = [];
  const watcher = store.watch(prefix, (b) => batches.push(b), { ...opts, onError: (e) => errors.push(e) });
  return {
    batches,
    errors,
    cancel: () => watcher.cancel(),
    revisions: () => batches.map((b) => b.revision),
    until: async (revision) => {
      await waitFor(`a watch batch at revision ${revision}`, () => batches.some((b) => b.revision >= revision));
    },
  };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const keysOf = (kvs: readonly KeyValue[]): string[] => kvs.map((kv) => kv.key);

export function describeStoreConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, () => {
    const opened: Store[] = [];
    const make = async (opts: StoreFactoryOptions = {}): Promise<Store> => {
      const s = await factory(opts);
      opened.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    describe('keys and revisions', () => {
      it('starts empty at revision 1', async () => {
        const s = await make();
        expect(await s.revision()).toBe(1);
        expect(await s.get('missing')).toBeUndefined();
        expect(await s.range('')).toEqual({ kvs: [], revision: 1 });
      });

      it('put creates and updates a key with create/mod revision and version', async () => {
        const s = await make();
        expect(await s.put('a', '1')).toEqual({ revision: 2 });
        expect(await s.get('a')).toEqual({
          key: 'a',
          value: '1',
          createRevision: 2,
          modRevision: 2,
          version: 1,
          lease: 0,
        });
        expect(await s.put('a', '2')).toEqual({ revision: 3 });
        expect(await s.get('a')).toEqual({
          key: 'a',
          value: '2',
          createRevision: 2,
          modRevision: 3,
          version: 2,
          lease: 0,
        });
        // Writing the same value again is still a write.
        expect(await s.put('a', '2')).toEqual({ revision: 4 });
        expect((await s.get('a'))?.version).toBe(3);
        expect(await s.revision()).toBe(4);
      });

      it('delete removes a key; deleting a missing key changes nothing', async () => {
        const s = await make();
        await s.put('a', '1');
        await s.put('a', '2');
        expect(await s.delete('a')).toEqual({ revision: 4, deleted: 1 });
        expect(await s.get('a')).toBeUndefined();
        expect(await s.delete('a')).toEqual({ revision: 4, deleted: 0 });
        expect(await s.delete('never')).toEqual({ revision: 4, deleted: 0 });
        expect(await s.revision()).toBe(4);
      });

      it('a recreated key starts a new life: version 1, createRevision of the recreation', async () => {
        const s = await make();
        await s.put('a', '1');
        await s.put('a', '2');
        await s.delete('a');
        const { revision } = await s.put('a', '3');
        expect(await s.get('a')).toEqual({
          key: 'a',
          value: '3',
          createRevision: revision,
          modRevision: revision,
          version: 1,
          lease: 0,
        });
      });

      it('stores any string value, including empty, non-ASCII and large ones', async () => {
        const s = await make();
        const big = 'x'.repeat(200_000);
        const odd = 'naïve ✓ \u{1F600} \u0000 "quoted" \n line';
        await s.put('empty', '');
        await s.put('odd', odd);
        await s.put('big', big);
        expect((await s.get('empty'))?.value).toBe('');
        expect((await s.get('odd'))?.value).toBe(odd);
        expect((await s.get('big'))?.value).toBe(big);
      });

      it('refuses an empty key or one with a lone surrogate, changing nothing', async () => {
        const s = await make();
        await expect(s.put('', 'v')).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        await expect(s.put('bad\uD800', 'v')).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        await expect(s.put('k', 'bad\uDC00')).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        await expect(s.get('')).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        expect(await s.revision()).toBe(1);
      });
    });

    describe('range', () => {
      it('returns exactly the keys with the prefix, in UTF-8 byte order, at the current revision', async () => {
        const s = await make();
        const inside = ['p/b', 'p/a', 'p/a/1', 'p/\uFFFD', 'p/\u{1F600}', 'p/\u0000', 'p/', 'p/\u00e9'];
        const outside = ['p', 'o/z', 'q/a', 'P/a', 'p.a'];
        for (const k of [...inside, ...outside]) await s.put(k, `v:${k}`);
        const r = await s.range('p/');
        expect(keysOf(r.kvs)).toEqual([...inside].sort(byteOrder));
        expect(r.kvs.every((kv) => kv.value === `v:${kv.key}`)).toBe(true);
        expect(r.revision).toBe(await s.revision());
        expect(keysOf((await s.range('')).kvs)).toEqual([...inside, ...outside].sort(byteOrder));
      });

      it('treats LIKE wildcards and the highest code point literally', async () => {
        const s = await make();
        for (const k of ['a%b', 'axb', 'a_c', 'abc', 'A%b', 'm\u{10FFFF}', 'm\u{10FFFF}x', 'n', 'm\u{10FFFE}'])
          await s.put(k, '1');
        expect(keysOf((await s.range('a%')).kvs)).toEqual(['a%b']);
        expect(keysOf((await s.range('a_')).kvs)).toEqual(['a_c']);
        expect(keysOf((await s.range('m\u{10FFFF}')).kvs)).toEqual(['m\u{10FFFF}', 'm\u{10FFFF}x']);
        expect(keysOf((await s.range('m')).kvs)).toEqual(['m\u{10FFFE}', 'm\u{10FFFF}', 'm\u{10FFFF}x']);
        expect((await s.range('zzz')).kvs).toEqual([]);
      });

      it('deletePrefix removes exactly the prefix in one revision', async () => {
        const s = await make();
        for (const k of ['d/1', 'd/2', 'd/3/x', 'd', 'e/1']) await s.put(k, '1');
        const before = await s.revision();
        expect(await s.deletePrefix('d/')).toEqual({ revision: before + 1, deleted: 3 });
        expect(keysOf((await s.range('')).kvs)).toEqual(['d', 'e/1']);
        expect(await s.deletePrefix('d/')).toEqual({ revision: before + 1, deleted: 0 });
        expect(await s.revision()).toBe(before + 1);
      });
    });

    describe('txn', () => {
      it('compare-and-swap on modRevision: success branch when it holds, failure branch when stale', async () => {
        const s = await make();
        const { revision: r1 } = await s.put('cfg', 'v1');
        const cas = {
          compare: [{ key: 'cfg', target: 'modRevision' as const, op: '=' as const, value: r1 }],
          success: [{ type: 'put' as const, key: 'cfg', value: 'v2' }],
          failure: [{ type: 'get' as const, key: 'cfg' }],
        };
        const ok = await s.txn(cas);
        expect(ok.succeeded).toBe(true);
        expect(ok.revision).toBe(r1 + 1);
        expect(ok.results).toEqual([
          { type: 'put', prev: { key: 'cfg', value: 'v1', createRevision: r1, modRevision: r1, version: 1, lease: 0 } },
        ]);
        const stale = await s.txn(cas);
        expect(stale.succeeded).toBe(false);
        expect(stale.revision).toBe(r1 + 1);
        expect(stale.results).toEqual([
          {
            type: 'get',
            kv: { key: 'cfg', value: 'v2', createRevision: r1, modRevision: r1 + 1, version: 2, lease: 0 },
          },
        ]);
        expect(await s.revision()).toBe(r1 + 1);
      });

      it('create-if-absent with createRevision = 0 or exists = false', async () => {
        const s = await make();
        const create = (key: string, how: 'createRevision' | 'exists') =>
          s.txn({
            compare: [
              how === 'exists'
                ? { key, target: 'exists', value: false }
                : { key, target: 'createRevision', op: '=', value: 0 },
            ],
            success: [{ type: 'put', key, value: 'mine' }],
            failure: [{ type: 'get', key }],
          });
        for (const how of ['createRevision', 'exists'] as const) {
          const key = `lock/${how}`;
          const first = await create(key, how);
          expect(first.succeeded).toBe(true);
          expect(first.results).toEqual([{ type: 'put' }]);
          const second = await create(key, how);
          expect(second.succeeded).toBe(false);
          expect(second.revision).toBe(first.revision);
          expect(second.results[0]).toMatchObject({ type: 'get', kv: { key, value: 'mine', version: 1 } });
        }
      });

      it('evaluates value, version and exists compares as etcd does (a missing key fails value compares)', async () => {
        const s = await make();
        await s.put('k', 'a');
        await s.put('k', 'b');
        const check = async (compare: Parameters<Store['txn']>[0]['compare']) =>
          (await s.txn({ compare, success: [] })).succeeded;
        expect(await check([{ key: 'k', target: 'value', op: '=', value: 'b' }])).toBe(true);
        expect(await check([{ key: 'k', target: 'value', op: '!=', value: 'b' }])).toBe(false);
        expect(await check([{ key: 'k', target: 'version', op: '>', value: 1 }])).toBe(true);
        expect(await check([{ key: 'k', target: 'version', op: '<', value: 2 }])).toBe(false);
        expect(await check([{ key: 'k', target: 'version', op: '!=', value: 3 }])).toBe(true);
        expect(await check([{ key: 'k', target: 'createRevision', op: '<', value: 3 }])).toBe(true);
        expect(await check([{ key: 'k', target: 'exists', value: true }])).toBe(true);
        expect(await check([{ key: 'nope', target: 'exists', value: true }])).toBe(false);
        expect(await check([{ key: 'nope', target: 'version', op: '=', value: 0 }])).toBe(true);
        expect(await check([{ key: 'nope', target: 'modRevision', op: '<', value: 1 }])).toBe(true);
        expect(await check([{ key: 'nope', target: 'value', op: '=', value: '' }])).toBe(false);
        expect(await check([{ key: 'nope', target: 'value', op: '!=', value: 'x' }])).toBe(false);
        // All compares must hold.
        expect(
          await check([
            { key: 'k', target: 'value', op: '=', value: 'b' },
            { key: 'nope', target: 'exists', value: true },
          ]),
        ).toBe(false);
        expect(await check([])).toBe(true);
      });

      it('applies all ops of the branch in order, in one revision, with a result per op', async () => {
        const s = await make();
        await s.put('t/old', 'x');
        await s.put('t/gone/1', 'x');
        await s.put('t/gone/2', 'x');
        const before = await s.revision();
        const r = await s.txn({
          compare: [],
          success: [
            { type: 'put', key: 't/a', value: '1' },
            { type: 'put', key: 't/old', value: 'y' },
            { type: 'delete', key: 't/missing' },
            { type: 'deletePrefix', prefix: 't/gone/' },
            { type: 'get', key: 't/a' },
            { type: 'range', prefix: 't/' },
          ],
        });
        const rev = before + 1;
        expect(r.succeeded).toBe(true);
        expect(r.revision).toBe(rev);
        expect(r.results).toEqual([
          { type: 'put' },
          {
            type: 'put',
            prev: {
              key: 't/old',
              value: 'x',
              createRevision: before - 2,
              modRevision: before - 2,
              version: 1,
              lease: 0,
            },
          },
          { type: 'delete', deleted: 0 },
          { type: 'delete', deleted: 2 },
          { type: 'get', kv: { key: 't/a', value: '1', createRevision: rev, modRevision: rev, version: 1, lease: 0 } },
          {
            type: 'range',
            kvs: [
              { key: 't/a', value: '1', createRevision: rev, modRevision: rev, version: 1, lease: 0 },
              { key: 't/old', value: 'y', createRevision: before - 2, modRevision: rev, version: 2, lease: 0 },
            ],
          },
        ]);
        expect(await s.revision()).toBe(rev);
      });

      it('a txn that only reads, or whose branch changes nothing, keeps the revision', async () => {
        const s = await make();
        await s.put('k', 'v');
        const rev = await s.revision();
        const r = await s.txn({
          compare: [],
          success: [
            { type: 'get', key: 'k' },
            { type: 'range', prefix: '' },
            { type: 'delete', key: 'nope' },
          ],
        });
        expect(r.revision).toBe(rev);
        expect(await s.revision()).toBe(rev);
        const f = await s.txn({
          compare: [{ key: 'k', target: 'value', op: '=', value: 'other' }],
          success: [{ type: 'put', key: 'k', value: 'w' }],
        });
        expect(f).toEqual({ succeeded: false, revision: rev, results: [] });
        expect((await s.get('k'))?.value).toBe('v');
      });

      it('is all-or-nothing: an op that fails leaves every earlier op unapplied', async () => {
        const s = await make();
        await s.put('keep', '1');
        const rev = await s.revision();
        await expect(
          s.txn({
            compare: [],
            success: [
              { type: 'put', key: 'a', value: '1' },
              { type: 'delete', key: 'keep' },
              { type: 'put', key: 'b', value: '2', lease: 987654 },
            ],
          }),
        ).rejects.toMatchObject({ code: 'MESH_ERR_LEASE_NOT_FOUND' });
        expect(await s.revision()).toBe(rev);
        expect(await s.get('a')).toBeUndefined();
        expect((await s.get('keep'))?.value).toBe('1');
      });

      it('refuses a branch that writes one key twice, as etcd does', async () => {
        const s = await make();
        await expect(
          s.txn({
            compare: [],
            success: [
              { type: 'put', key: 'k', value: '1' },
              { type: 'put', key: 'k', value: '2' },
            ],
          }),
        ).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        await expect(
          s.txn({
            compare: [],
            success: [
              { type: 'deletePrefix', prefix: 'a/' },
              { type: 'put', key: 'a/x', value: '2' },
            ],
          }),
        ).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        // Checked in the branch not taken too, so a bad txn is bad whichever way it goes.
        await expect(
          s.txn({
            compare: [],
            success: [],
            failure: [
              { type: 'put', key: 'k', value: '1' },
              { type: 'delete', key: 'k' },
            ],
          }),
        ).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        expect(await s.revision()).toBe(1);
      });
    });

    describe('watch', () => {
      it('delivers live changes under the prefix, one batch per revision, with prevKv', async () => {
        const s = await make();
        const w = record(s, 'w/');
        const r1 = (await s.put('w/a', '1')).revision;
        await s.put('x/b', '1');
        const r3 = (
          await s.txn({
            compare: [],
            success: [
              { type: 'put', key: 'w/b', value: '1' },
              { type: 'put', key: 'w/c', value: '1' },
              { type: 'put', key: 'x/c', value: '1' },
            ],
          })
        ).revision;
        const r4 = (await s.put('w/a', '2')).revision;
        const r5 = (await s.delete('w/a')).revision;
        await w.until(r5);
        expect(w.batches).toEqual([
          {
            revision: r1,
            events: [
              {
                type: 'put',
                kv: { key: 'w/a', value: '1', createRevision: r1, modRevision: r1, version: 1, lease: 0 },
              },
            ],
          },
          {
            revision: r3,
            events: [
              {
                type: 'put',
                kv: { key: 'w/b', value: '1', createRevision: r3, modRevision: r3, version: 1, lease: 0 },
              },
              {
                type: 'put',
                kv: { key: 'w/c', value: '1', createRevision: r3, modRevision: r3, version: 1, lease: 0 },
              },
            ],
          },
          {
            revision: r4,
            events: [
              {
                type: 'put',
                kv: { key: 'w/a', value: '2', createRevision: r1, modRevision: r4, version: 2, lease: 0 },
                prevKv: { key: 'w/a', value: '1', createRevision: r1, modRevision: r1, version: 1, lease: 0 },
              },
            ],
          },
          {
            revision: r5,
            events: [
              {
                type: 'delete',
                kv: expect.objectContaining({ key: 'w/a', value: '', modRevision: r5 }),
                prevKv: { key: 'w/a', value: '2', createRevision: r1, modRevision: r4, version: 2, lease: 0 },
              },
            ],
          },
        ]);
        expect(w.errors).toEqual([]);
      });

      it('an empty prefix watches everything; deletePrefix is one batch', async () => {
        const s = await make();
        const w = record(s, '');
        await s.put('a/1', '1');
        await s.put('b/1', '1');
        await s.put('a/2', '1');
        const { revision } = await s.deletePrefix('a/');
        await w.until(revision);
        expect(w.revisions()).toEqual([2, 3, 4, 5]);
        expect(w.batches[3]?.events.map((e) => [e.type, e.kv.key])).toEqual([
          ['delete', 'a/1'],
          ['delete', 'a/2'],
        ]);
      });

      it('replays history from a revision, then goes live, without gaps or repeats', async () => {
        const s = await make();
        for (let i = 0; i < 6; i++) await s.put(`h/${i}`, String(i));
        const w = record(s, 'h/', { fromRevision: 3 });
        await w.until(7);
        expect(w.revisions()).toEqual([3, 4, 5, 6, 7]);
        expect(w.batches[0]?.events[0]?.kv).toMatchObject({ key: 'h/1', value: '1', modRevision: 3 });
        await s.put('h/x', 'live');
        await w.until(8);
        expect(w.revisions()).toEqual([3, 4, 5, 6, 7, 8]);
        // Replay filters by prefix as live delivery does.
        await s.put('other', '1');
        const all = record(s, 'h/', { fromRevision: 1 });
        await all.until(8);
        await s.put('h/y', '1');
        await all.until(10);
        expect(all.revisions()).toEqual([2, 3, 4, 5, 6, 7, 8, 10]);
      });

      it('a watch from a future revision waits for it', async () => {
        const s = await make();
        const w = record(s, '', { fromRevision: 4 });
        for (let i = 0; i < 4; i++) await s.put(`f/${i}`, '1');
        await w.until(5);
        expect(w.revisions()).toEqual([4, 5]);
      });

      it('starting a replaying watch while writes stream in neither skips nor repeats a revision', async () => {
        const s = await make();
        const total = 150;
        const writer = (async () => {
          for (let i = 0; i < total; i++) await s.put(`race/${i}`, String(i));
        })();
        await waitFor('some writes', async () => (await s.revision()) >= 40);
        const watchers = [record(s, 'race/', { fromRevision: 10 }), record(s, 'race/', { fromRevision: 2 })];
        await writer;
        const last = await s.revision();
        for (const w of watchers) await w.until(last);
        expect(watchers[0]?.revisions()).toEqual(range(10, last));
        expect(watchers[1]?.revisions()).toEqual(range(2, last));
        for (const w of watchers)
          expect(w.batches.every((b) => b.events.length === 1 && b.events[0]?.kv.modRevision === b.revision)).toBe(
            true,
          );
      });

      it('cancel stops delivery at once, even of batches already due', async () => {
        const s = await make();
        const seen: number[] = [];
        // From an explicit revision: a watch "from now" starts whenever the backend has set it
        // up (an etcd stream, later under load), and could miss the writes below altogether.
        const from = (await s.revision()) + 1;
        const watcher = s.watch(
          'c/',
          (b) => {
            seen.push(b.revision);
            watcher.cancel();
          },
          { fromRevision: from },
        );
        const sentinel = record(s, 'c/', { fromRevision: from });
        await Promise.all([s.put('c/1', '1'), s.put('c/2', '1'), s.put('c/3', '1')]);
        const last = await s.revision();
        await sentinel.until(last);
        // Its own stream may be set up later than the sentinel's (etcd under load): wait for its
        // first batch, then give the other two every chance to arrive.
        await waitFor('the first batch of the cancelling watcher', () => seen.length > 0);
        await settle();
        expect(seen).toEqual([from]);
        sentinel.cancel();
        await s.put('c/4', '1');
        await settle();
        expect(sentinel.revisions()).toEqual(range(from, last));
      });

      it('a throwing or re-entrant callback breaks neither the store nor other watchers', async () => {
        const s = await make();
        let thrown = 0;
        s.watch('t/', () => {
          thrown += 1;
          throw new Error('watcher bug');
        });
        // A callback may write to the store it watches.
        s.watch('t/', (b) => {
          for (const e of b.events) if (e.type === 'put') void s.put(`mirror/${e.kv.key}`, e.kv.value);
        });
        const good = record(s, '');
        await s.put('t/1', 'a');
        await s.put('t/2', 'b');
        await waitFor('mirrored keys', async () => (await s.range('mirror/')).kvs.length === 2);
        expect(thrown).toBe(2);
        const last = await s.revision();
        await good.until(last);
        expect(good.revisions()).toEqual(range(2, last));
        expect((await s.get('mirror/t/2'))?.value).toBe('b');
      });

      it('fails a watch from a compacted revision with MESH_ERR_STORE_COMPACTED and delivers nothing', async () => {
        const s = await make({ historyLimit: 5 });
        for (let i = 0; i < 20; i++) await s.put(`k/${i % 3}`, String(i));
        const current = await s.revision();
        const compacted = await s.compactedRevision();
        expect(compacted).toBeGreaterThan(1);
        expect(compacted).toBeLessThanOrEqual(current - 4);
        const old = record(s, 'k/', { fromRevision: compacted - 1 });
        await waitFor('the compacted error', () => old.errors.length > 0);
        expect(old.errors).toHaveLength(1);
        expect(old.errors[0]).toMatchObject({ code: 'MESH_ERR_STORE_COMPACTED' });
        // The oldest kept revision is still replayable.
        const kept = record(s, 'k/', { fromRevision: compacted });
        await kept.until(current);
        expect(kept.revisions()).toEqual(range(compacted, current));
        await s.put('k/late', '1');
        await kept.until(current + 1);
        await settle();
        expect(old.batches).toEqual([]);
        expect(old.errors).toHaveLength(1);
      });

      it('refuses a bad fromRevision', async () => {
        const s = await make();
        expect(() => s.watch('', () => {}, { fromRevision: 0 })).toThrow(
          expect.objectContaining({ code: 'MESH_ERR_INVALID_ARGUMENT' }),
        );
        expect(() => s.watch('', () => {}, { fromRevision: 1.5 })).toThrow(
          expect.objectContaining({ code: 'MESH_ERR_INVALID_ARGUMENT' }),
        );
      });
    });

    describe('leases', () => {
      it('grants unique positive ids and reports time to live', async () => {
        const s = await make();
        const a = await s.grantLease(30);
        const b = await s.grantLease(60);
        expect(a.ttl).toBe(30);
        expect(b.ttl).toBe(60);
        expect(Number.isSafeInteger(a.id) && a.id > 0).toBe(true);
        expect(b.id).not.toBe(a.id);
        const ttl = await s.leaseTimeToLive(a.id);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(30);
        expect(await s.leaseTimeToLive(a.id + b.id + 1000)).toBeUndefined();
        // Granting a lease is not a key change.
        expect(await s.revision()).toBe(1);
      });

      it('refuses a TTL that is not a whole number of seconds >= 1', async () => {
        const s = await make();
        for (const ttl of [0, -1, 1.5, Number.NaN]) {
          await expect(s.grantLease(ttl)).rejects.toMatchObject({ code: 'MESH_ERR_INVALID_ARGUMENT' });
        }
      });

      it('put with an unknown lease fails and changes nothing', async () => {
        const s = await make();
        await expect(s.put('k', 'v', { lease: 424242 })).rejects.toMatchObject({ code: 'MESH_ERR_LEASE_NOT_FOUND' });
        expect(await s.get('k')).toBeUndefined();
        expect(await s.revision()).toBe(1);
      });

      it('expiry deletes the lease and all its keys in one revision, seen by watchers', async () => {
        const s = await make();
        const lease = await s.grantLease(1);
        await s.put('svc/a', '1', { lease: lease.id });
        await s.put('svc/b', '1', { lease: lease.id });
        await s.put('svc/c', 'no lease');
        expect((await s.get('svc/a'))?.lease).toBe(lease.id);
        const before = await s.revision();
        const w = record(s, 'svc/');
        await waitFor('the lease to expire', async () => (await s.get('svc/a')) === undefined);
        await w.until(before + 1);
        expect(await s.revision()).toBe(before + 1);
        expect(w.batches).toHaveLength(1);
        expect(w.batches[0]?.revision).toBe(before + 1);
        expect(w.batches[0]?.events.map((e) => [e.type, e.kv.key]).sort()).toEqual([
          ['delete', 'svc/a'],
          ['delete', 'svc/b'],
        ]);
        expect(w.batches[0]?.events.every((e) => e.prevKv?.lease === lease.id)).toBe(true);
        expect(await s.get('svc/b')).toBeUndefined();
        expect((await s.get('svc/c'))?.value).toBe('no lease');
        expect(await s.leaseTimeToLive(lease.id)).toBeUndefined();
        await expect(s.keepAlive(lease.id)).rejects.toMatchObject({ code: 'MESH_ERR_LEASE_NOT_FOUND' });
        await expect(s.put('svc/d', '1', { lease: lease.id })).rejects.toMatchObject({
          code: 'MESH_ERR_LEASE_NOT_FOUND',
        });
      });

      it('keepAlive keeps the lease and its keys past the original TTL', async () => {
        const s = await make();
        const lease = await s.grantLease(2);
        await s.put('ka/k', '1', { lease: lease.id });
        const until = Date.now() + 3_000;
        while (Date.now() < until) {
          expect(await s.keepAlive(lease.id)).toEqual({ id: lease.id, ttl: 2 });
          await sleep(200);
        }
        expect((await s.get('ka/k'))?.value).toBe('1');
        expect(await s.leaseTimeToLive(lease.id)).toBeGreaterThan(0);
        // Left alone, it expires.
        await waitFor('the lease to expire', async () => (await s.get('ka/k')) === undefined);
        expect(await s.leaseTimeToLive(lease.id)).toBeUndefined();
      });

      it('revoke deletes the keys in one revision; an unknown lease fails', async () => {
        const s = await make();
        const lease = await s.grantLease(60);
        const empty = await s.grantLease(60);
        await s.put('r/1', '1', { lease: lease.id });
        await s.put('r/2', '1', { lease: lease.id });
        await s.put('r/3', '1', { lease: lease.id });
        // A put without the lease detaches the key from it.
        await s.put('r/3', '2');
        const before = await s.revision();
        const w = record(s, 'r/');
        await s.revokeLease(lease.id);
        expect(await s.revision()).toBe(before + 1);
        await w.until(before + 1);
        expect(w.batches[0]?.events.map((e) => e.kv.key).sort()).toEqual(['r/1', 'r/2']);
        expect(keysOf((await s.range('r/')).kvs)).toEqual(['r/3']);
        expect(await s.leaseTimeToLive(lease.id)).toBeUndefined();
        await expect(s.revokeLease(lease.id)).rejects.toMatchObject({ code: 'MESH_ERR_LEASE_NOT_FOUND' });
        await expect(s.keepAlive(lease.id)).rejects.toMatchObject({ code: 'MESH_ERR_LEASE_NOT_FOUND' });
        // Revoking a lease with no keys changes no key, so the revision stays.
        await s.revokeLease(empty.id);
        expect(await s.revision()).toBe(before + 1);
        const fresh = await s.grantLease(60);
        expect([lease.id, empty.id]).not.toContain(fresh.id);
      });
    });

    describe('close', () => {
      it('rejects every call after close with MESH_ERR_STORE and ends watches', async () => {
        const s = await make();
        const w = record(s, '');
        const lease = await s.grantLease(60);
        await s.put('k', 'v');
        await w.until(2);
        await s.close();
        await s.close();
        const calls: Array<() => Promise<unknown>> = [
          () => s.get('k'),
          () => s.range(''),
          () => s.put('k', 'v'),
          () => s.delete('k'),
          () => s.deletePrefix(''),
          () => s.txn({ compare: [], success: [] }),
          () => s.revision(),
          () => s.compactedRevision(),
          () => s.grantLease(5),
          () => s.keepAlive(lease.id),
          () => s.revokeLease(lease.id),
          () => s.leaseTimeToLive(lease.id),
        ];
        for (const call of calls) await expect(call()).rejects.toMatchObject({ code: 'MESH_ERR_STORE' });
        const late = record(s, '', { fromRevision: 1 });
        await waitFor('the closed error', () => late.errors.length > 0);
        expect(late.errors[0]).toMatchObject({ code: 'MESH_ERR_STORE' });
        expect(late.batches).toEqual([]);
        expect(w.revisions()).toEqual([2]);
      });
    });
  });
}
