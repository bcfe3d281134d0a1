/**
 * Revocation records leave once their certificates expire (src/registry/revocations.ts): the
 * list sidecars get holds only serials that still need refusing, and pruning drops the store
 * records too, so the list stays as small as short-lived certificates allow.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Revocations } from '../../src/registry/revocations.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';

const HOUR = 3_600_000;
let store: Store;
let revocations: Revocations;

beforeEach(async () => {
  store = await openStore({ kind: 'memory' });
  revocations = new Revocations(store);
  await revocations.start();
});
afterEach(async () => {
  revocations.stop();
  await store.close();
});

async function issue(node: string, serial: string, notAfterMs: number, kind: 'node' | 'leaf' = 'leaf') {
  await revocations.recordIssued({
    serial,
    node,
    kind,
    ...(kind === 'leaf' ? { service: 'web' } : {}),
    notAfter: new Date(notAfterMs).toISOString(),
  });
}

describe('revocation records expire with their certificates', () => {
  it('lists a revoked serial until its certificate expires, then prunes it (and expired issued records)', async () => {
    const now = Date.now();
    await issue('nodex', 'AA01', now + HOUR);
    await issue('nodex', 'AA02', now + 2 * HOUR, 'node');
    await issue('nodey', 'BB01', now + HOUR);
    expect(await revocations.revokeIssued('nodex', 'removed')).toEqual(['AA01', 'AA02']);
    expect((await revocations.list()).revoked.map((r) => r.serial)).toEqual(['AA01', 'AA02']);
    expect(revocations.has('AA01')).toBe(true);

    // Nothing has expired yet: nothing goes.
    expect(await revocations.pruneExpired(new Date(now))).toBe(0);

    // An hour and a bit later AA01 and nodey's BB01 have expired; AA02 still needs refusing.
    const later = new Date(now + HOUR + 60_000);
    expect(await revocations.pruneExpired(later)).toBe(2);
    expect((await store.range('revoked/')).kvs.map((kv) => kv.key)).toEqual(['revoked/AA02']);
    expect((await store.range('issued/')).kvs).toEqual([]);
    expect(revocations.has('AA02', later.getTime())).toBe(true);
    expect(revocations.has('AA01', later.getTime())).toBe(false);

    // The prune is a store write: blocking queries on revoked/ wake and get the shorter list.
    const rev = await store.revision();
    expect(await revocations.pruneExpired(new Date(now + 3 * HOUR))).toBe(1);
    expect(await store.revision()).toBeGreaterThan(rev);
    expect((await store.range('revoked/')).kvs).toEqual([]);
  });
});
