/**
 * The change notifier on a real 3-member etcd, cut off while etcd compacts past it: when it
 * gets back its watch cannot resume (MESH_ERR_STORE_COMPACTED), so it resyncs once — waiters
 * answer and re-read, the watch starts again from the current revision — and then goes on
 * hearing changes. No error loop, and no change missed: whoever asks about the gap is told
 * something changed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeNotifier } from '../../src/registry/notifier.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faults.js';
import { ETCD_PORTS } from '../helpers/hosts.js';
import { eventually } from '../helpers/registry.js';

describe('change notifier on etcd, away while etcd compacted its history', () => {
  let dir = '';
  let etcd: EtcdCluster;
  const proxies: FaultProxy[] = [];
  const stores: Store[] = [];
  let notifier: ChangeNotifier | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-notifier-etcd-'));
    etcd = await startEtcdCluster({ basePort: ETCD_PORTS.notifierCompaction, dir: join(dir, 'etcd') });
    for (const e of etcd.endpoints) {
      const u = new URL(e);
      proxies.push(await startFaultProxy({ host: u.hostname, port: Number(u.port) }));
    }
  }, 60_000);

  afterAll(async () => {
    notifier?.stop();
    for (const s of stores) await s.close();
    for (const p of proxies) await p.close();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('resyncs once and keeps hearing changes', async () => {
    // The registry's store reaches etcd only through the proxies, so the test can cut it off.
    const behind = await openStore({
      kind: 'etcd',
      endpoints: proxies.map((p) => `http://127.0.0.1:${p.port}`),
      requestTimeoutMs: 2_000,
    });
    stores.push(behind);
    // Another registry, still connected, writing and compacting (history of 5 revisions).
    const other = await openStore({ kind: 'etcd', endpoints: etcd.endpoints, historyLimit: 5 });
    stores.push(other);
    const n = new ChangeNotifier(behind);
    notifier = n;
    await n.start();
    const start = n.revision;
    const waiting = n.wait(['services'], start, 120_000);

    for (const p of proxies) {
      p.setRefuseRate(1);
      p.cut();
    }
    let missed = 0;
    for (let i = 0; i < 30; i++) missed = (await other.put(`services/api/n1/i${i % 3}`, String(i))).revision;
    await eventually(async () => (await other.compactedRevision()) > start + 1, {
      what: 'etcd compacted past the notifier',
    });
    for (const p of proxies) p.setRefuseRate(0);

    // The waiter answers with a revision at least that of the change it never saw.
    expect(await waiting).toBeGreaterThanOrEqual(missed);
    expect(n.resyncs).toBe(1);
    // Asked about the gap, for any group, it says something changed: no change is lost.
    expect(await n.wait(['intentions'], start, 60_000)).toBeGreaterThanOrEqual(missed);
    // The new watch delivers what comes next, and the notifier did not resync again.
    const next = n.wait(['services'], n.revision, 60_000);
    const { revision } = await other.put('services/api/n1/after', 'x');
    expect(await next).toBe(revision);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(n.resyncs).toBe(1);
  }, 120_000);
});
