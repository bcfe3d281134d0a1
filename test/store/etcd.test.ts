/**
 * The etcd backend against a real 3-member etcd (Debian `etcd-server`): the conformance suite
 * every backend passes, each test on a fresh cluster (the suite starts from revision 1), then
 * what only a cluster can show: a member killed under a watch, compaction while a watcher was
 * away, no quorum, TLS with client certificates.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../src/store/etcd.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { ETCD_PORTS } from '../helpers/hosts.js';
import { describeStoreConformance, record, waitFor } from './conformance.js';

let dir = '';
let n = 0;
const clusters: EtcdCluster[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-etcd-test-'));
});
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cluster(): Promise<EtcdCluster> {
  const c = await startEtcdCluster({ basePort: ETCD_PORTS.store, dir: join(dir, `cluster-${++n}`) });
  clusters.push(c);
  return c;
}

describeStoreConformance('etcd', async (opts) => {
  const c = await cluster();
  return EtcdStore.open({ endpoints: c.endpoints, ...opts });
});

describe('etcd store', () => {
  const opened: Store[] = [];
  const open = async (c: EtcdCluster, extra: { historyLimit?: number; requestTimeoutMs?: number } = {}) => {
    const s = await openStore({ kind: 'etcd', endpoints: c.endpoints, ...extra });
    opened.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  it('is what openStore gives for kind etcd, its keys under /meshctl/ in etcd', async () => {
    const c = await cluster();
    const s = await open(c);
    expect(s.kind).toBe('etcd');
    await s.put('svc/a', '1');
    const other = await openStore({ kind: 'etcd', endpoints: c.endpoints, prefix: '/other/' });
    opened.push(other);
    expect((await other.range('')).kvs).toEqual([]);
    await other.put('svc/a', '2');
    expect((await s.get('svc/a'))?.value).toBe('1');
  });

  it('a watch lives through the kill of the member it streams from, missing and repeating nothing', async () => {
    const c = await cluster();
    // One endpoint per store, so we know which member carries the watch.
    const watching = await openStore({ kind: 'etcd', endpoints: [c.endpoints[0] as string, c.endpoints[1] as string] });
    const writer = await openStore({ kind: 'etcd', endpoints: [c.endpoints[2] as string] });
    opened.push(watching, writer);
    const w = record(watching, 'k/', { fromRevision: 1 });
    // A write in flight when the leader dies may fail either way (its answer is lost): as the
    // registry's callers do, put again; a put of the same value is harmless.
    const put = async (i: number): Promise<void> => {
      for (;;) {
        try {
          await writer.put(`k/${i}`, String(i));
          return;
        } catch (e) {
          if ((e as { code?: string }).code !== 'MESH_ERR_STORE_UNAVAILABLE') throw e;
        }
      }
    };
    for (let i = 0; i < 20; i++) await put(i);
    await w.until(21);
    // Whichever of the two members carried the stream, it dies once.
    await c.kill(0);
    for (let i = 20; i < 40; i++) await put(i);
    await w.until(await writer.revision());
    await c.restart(0);
    await c.kill(1);
    for (let i = 40; i < 60; i++) await put(i);
    const last = await writer.revision();
    await w.until(last);
    expect(w.revisions()).toEqual(Array.from({ length: last - 1 }, (_, i) => i + 2));
    expect(w.errors).toEqual([]);
  });

  it('a watcher away while etcd compacted past it gets MESH_ERR_STORE_COMPACTED once, not a retry loop', async () => {
    const c = await cluster();
    const s = await open(c, { historyLimit: 5 });
    for (let i = 0; i < 30; i++) await s.put(`k/${i % 3}`, String(i));
    const compacted = await s.compactedRevision();
    expect(compacted).toBeGreaterThan(10);
    const w = record(s, 'k/', { fromRevision: 2 });
    await waitFor('the compacted error', () => w.errors.length > 0);
    await new Promise((r) => setTimeout(r, 500));
    expect(w.errors).toHaveLength(1);
    expect(w.errors[0]).toMatchObject({
      code: 'MESH_ERR_STORE_COMPACTED',
      details: { fromRevision: 2, compactedRevision: compacted },
    });
    expect(w.batches).toEqual([]);
  });

  it('without a quorum, reads and writes fail with MESH_ERR_STORE_UNAVAILABLE; old values are never served', async () => {
    const c = await cluster();
    const s = await open(c, { requestTimeoutMs: 2_000 });
    await s.put('k', 'old');
    await s.put('k', 'new');
    await c.kill(1);
    await c.kill(2);
    await expect(s.get('k')).rejects.toMatchObject({ code: 'MESH_ERR_STORE_UNAVAILABLE' });
    await expect(s.range('')).rejects.toMatchObject({ code: 'MESH_ERR_STORE_UNAVAILABLE' });
    await expect(s.put('k', 'lost')).rejects.toMatchObject({ code: 'MESH_ERR_STORE_UNAVAILABLE' });
    await c.restart(1);
    await waitFor('the quorum back', async () => (await s.get('k').catch(() => undefined))?.value === 'new');
  });

  it('refuses bad endpoints clearly, before connecting', async () => {
    for (const endpoints of [[], ['localhost:2379'], ['ftp://h:1'], ['http://h'], ['http://a:1', 'https://b:1']]) {
      await expect(openStore({ kind: 'etcd', endpoints })).rejects.toMatchObject({ code: 'MESH_ERR_CONFIG' });
    }
  });

  it('says which endpoints it could not reach', async () => {
    await expect(
      openStore({ kind: 'etcd', endpoints: [`http://127.0.0.1:${ETCD_PORTS.store}`], requestTimeoutMs: 500 }),
    ).rejects.toMatchObject({
      code: 'MESH_ERR_STORE_UNAVAILABLE',
      message: expect.stringContaining(`127.0.0.1:${ETCD_PORTS.store}`),
    });
  });
});

describe('etcd store over TLS with client certificates', () => {
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };

  /** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
  function makePki(at: string): { ca: string; serverCert: string; serverKey: string; cert: string; key: string } {
    const f = (name: string): string => join(at, name);
    const ext = f('san.cnf');
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl([
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
      '-subj',
      '/CN=test etcd CA',
      '-days',
      '2',
    ]);
    for (const who of ['server', 'client']) {
      openssl(['req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`]);
      openssl([
        'x509',
        '-req',
        '-in',
        f(`${who}.csr`),
        '-CA',
        f('ca.pem'),
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-out',
        f(`${who}.pem`),
        '-days',
        '2',
        '-extfile',
        ext,
      ]);
    }
    return {
      ca: f('ca.pem'),
      serverCert: f('server.pem'),
      serverKey: f('server.key'),
      cert: f('client.pem'),
      key: f('client.key'),
    };
  }

  it('connects with the configured CA and client certificate; without the certificate etcd refuses', async () => {
    const pkiDir = join(dir, 'pki');
    mkdirSync(pkiDir, { recursive: true });
    const pki = makePki(pkiDir);
    const c = await startEtcdCluster({
      basePort: ETCD_PORTS.storeTls,
      dir: join(dir, 'tls-cluster'),
      tls: { caFile: pki.ca, certFile: pki.serverCert, keyFile: pki.serverKey },
    });
    clusters.push(c);
    expect(c.endpoints[0]).toMatch(/^https:/);
    const s = await openStore({
      kind: 'etcd',
      endpoints: c.endpoints,
      tls: { caFile: pki.ca, certFile: pki.cert, keyFile: pki.key },
    });
    try {
      await s.put('k', 'over tls');
      expect((await s.get('k'))?.value).toBe('over tls');
    } finally {
      await s.close();
    }
    await expect(
      openStore({ kind: 'etcd', endpoints: c.endpoints, tls: { caFile: pki.ca }, requestTimeoutMs: 1_000 }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^MESH_ERR_STORE/) });
    await expect(
      openStore({ kind: 'etcd', endpoints: c.endpoints, tls: { caFile: pki.ca, certFile: pki.cert } }),
    ).rejects.toMatchObject({ code: 'MESH_ERR_CONFIG' });
  });
});
