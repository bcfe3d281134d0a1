/**
 * The agent's RegistryLink against three real HTTPS servers on loopback addresses of their own,
 * standing in for three registries of one store: each lists the peers the test says
 * (`/v1/status/peers`), answers `/v1/health`, and holds blocking `/v1/intentions` queries on one
 * shared revision until it moves. Real TLS with a mesh CA, a node certificate, real sockets.
 * What it pins: the link stays on its registry when the peer list grows or is reordered (it is
 * kept by URL, not by position), moves on when that registry is gone, and holds its blocking
 * queries only where it is (a query held elsewhere is asked again there, from the same index).
 */
import https from 'node:https';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, createRoot, nodeId } from '../../src/ca/index.js';
import { agentPaths } from '../../src/agent/paths.js';
import { RegistryLink } from '../../src/agent/registry-link.js';
import { silentLogger } from '../../src/util/log.js';
import { HA_PORTS, HOSTS } from '../helpers/hosts.js';
import { eventually } from '../helpers/registry.js';

const TD = 'mesh.local';
const [HOST_A, HOST_B, HOST_C] = HOSTS.registryLink;
const url = (host: string) => `https://${host}:${HA_PORTS.registryLink}`;
const A = url(HOST_A!);
const B = url(HOST_B!);
const C = url(HOST_C!);

/** The store the three registries share: a revision and the intentions at it. */
const store = {
  revision: 1,
  intentions: [] as Array<{ source: string; destination: string; action: 'allow' }>,
  wake: new Set<() => void>(),
  change(): number {
    this.revision++;
    this.intentions.push({ source: `s${this.revision}`, destination: 'api', action: 'allow' });
    for (const w of [...this.wake]) w();
    return this.revision;
  },
};

interface SmallRegistry {
  readonly url: string;
  /** What `/v1/status/peers` lists, in this order. */
  peers: string[];
  /** Answers every request but the blocking ones 503 MESH_ERR_STORE_UNAVAILABLE (its store lost its quorum). */
  noQuorum: boolean;
  /** Blocking queries held now. */
  held: number;
  /** Paths asked, in order ('/v1/intentions?index=N' for blocking queries). */
  readonly asked: string[];
  start(): Promise<void>;
  /** Stops listening and cuts every connection (a dead registry). */
  stop(): Promise<void>;
}

let dir = '';
let tls: { roots: string; servers: Map<string, { cert: string; key: string }>; node: { cert: string; key: string } };
const registries = new Map<string, SmallRegistry>();
let link: RegistryLink | undefined;

function smallRegistry(host: string): SmallRegistry {
  let server: https.Server | undefined;
  const me: SmallRegistry = {
    url: url(host),
    peers: [],
    noQuorum: false,
    held: 0,
    asked: [],
    async start() {
      const { cert, key } = tls.servers.get(host)!;
      const s = https.createServer(
        { cert, key, ca: tls.roots, requestCert: true, rejectUnauthorized: true },
        (req, res) => {
          const u = new URL(req.url ?? '/', me.url);
          const send = (status: number, body: unknown) => {
            if (res.destroyed) return;
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(body));
          };
          if (u.pathname === '/v1/intentions' && u.searchParams.has('index')) {
            const index = Number(u.searchParams.get('index'));
            me.asked.push(`/v1/intentions?index=${index}`);
            const answer = () =>
              send(200, { revision: store.revision, intentions: [...store.intentions], defaultAction: 'allow' });
            if (index < store.revision) return answer();
            me.held++;
            const done = () => {
              if (!store.wake.delete(wake)) return;
              me.held--;
            };
            const wake = () => {
              done();
              answer();
            };
            store.wake.add(wake);
            req.on('close', done);
            return;
          }
          me.asked.push(u.pathname);
          if (me.noQuorum) return send(503, { code: 'MESH_ERR_STORE_UNAVAILABLE', message: 'the store has no quorum' });
          if (u.pathname === '/v1/status/peers')
            return send(200, {
              self: host,
              peers: me.peers.map((p) => ({ id: p, url: p, startedAt: new Date(0).toISOString(), store: 'etcd' })),
            });
          if (u.pathname === '/v1/health') return send(200, { status: 'ok' });
          if (u.pathname === '/v1/status') return send(200, { revision: store.revision, store: 'etcd' });
          send(404, { code: 'MESH_ERR_NOT_FOUND', message: `no route ${u.pathname}` });
        },
      );
      s.on('tlsClientError', () => undefined);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(HA_PORTS.registryLink, host, () => {
          s.off('error', reject);
          resolve();
        });
      });
      server = s;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      const closed = new Promise<void>((r) => s.close(() => r()));
      s.closeAllConnections();
      await closed;
    },
  };
  return me;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-link-'));
  const root = await createRoot({ trustDomain: TD, validityDays: 1 });
  const ca = await CertificateAuthority.load({ certPem: root.certPem, keyPem: root.keyPem, trustDomain: TD });
  const servers = new Map<string, { cert: string; key: string }>();
  for (const host of HOSTS.registryLink) {
    const c = await ca.issueServerCertificate({ spiffeId: `spiffe://${TD}/svc/meshctl-registry`, ipAddresses: [host] });
    servers.set(host, { cert: c.certPem, key: c.keyPem });
  }
  const node = await ca.issueServerCertificate({ spiffeId: nodeId(TD, 'link-node'), usage: 'client' });
  tls = { roots: root.certPem, servers, node: { cert: node.certPem, key: node.keyPem } };
  const paths = agentPaths(dir);
  await mkdir(dirname(paths.nodeCert), { recursive: true });
  await writeFile(paths.nodeCert, tls.node.cert);
  await writeFile(paths.nodeKey, tls.node.key);
  await writeFile(paths.roots, tls.roots);
});

afterEach(async () => {
  link?.close();
  link = undefined;
  for (const r of registries.values()) await r.stop();
  registries.clear();
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts the three small registries, each listing `peers`. */
async function startAll(peers: string[]): Promise<void> {
  for (const host of HOSTS.registryLink) {
    const r = smallRegistry(host);
    r.peers = [...peers];
    await r.start();
    registries.set(r.url, r);
  }
}

const reg = (u: string) => registries.get(u)!;

async function newLink(configured: string[]): Promise<RegistryLink> {
  link = new RegistryLink({ registries: configured }, agentPaths(dir), silentLogger());
  await link.load();
  return link;
}

/** Where the link's next ordinary call goes: the registry that answers it. */
async function answering(l: RegistryLink): Promise<string> {
  return l.call(async (c) => {
    await c.health();
    return c.baseUrl;
  });
}

describe('RegistryLink: the registry it is on, across peer list changes and failures', () => {
  it('a peer list that grows keeps the agent on the registry it failed over to; failover still moves on when that one is gone', async () => {
    // Joined through A; A and C are the mesh's registries at first.
    await startAll([A, C]);
    const l = await newLink([A]);
    await l.refreshPeers();
    expect(l.registries).toEqual([A, C]);
    expect(l.url).toBe(A);
    // A dies: the next call fails over to C.
    await reg(A).stop();
    expect(await answering(l)).toBe(C);
    expect(l.url).toBe(C);
    // B joins the mesh (and A is back): C lists all three. The list is [A, B, C] now, and C
    // sits at another position than before; the link stays on C.
    await reg(A).start();
    reg(C).peers = [A, B, C];
    await l.refreshPeers();
    expect(l.registries).toEqual([A, B, C]);
    expect(l.url).toBe(C);
    expect(await answering(l)).toBe(C);
    // The peers come back in another order, and the configuration is reloaded with the
    // registries reordered: still on C.
    reg(C).peers = [C, B, A];
    await l.refreshPeers();
    l.setRegistries([B, A]);
    await l.load();
    expect(l.registries).toEqual([B, A, C]);
    expect(l.url).toBe(C);
    expect(await answering(l)).toBe(C);
    // C dies: the link moves on to a registry that answers, and stays there.
    const before = reg(A).asked.length + reg(B).asked.length;
    await reg(C).stop();
    const next = await answering(l);
    expect([A, B]).toContain(next);
    expect(l.url).toBe(next);
    expect(await answering(l)).toBe(next);
    expect(reg(A).asked.length + reg(B).asked.length).toBeGreaterThan(before);
  });

  it('a peer list that no longer names the registry the link is on moves it to one listed', async () => {
    await startAll([A, B, C]);
    const l = await newLink([A]);
    await l.refreshPeers();
    await reg(A).stop();
    expect(await answering(l)).toBe(B);
    // B's lease in the peer list expired (B is going away): the registries list only A and C.
    reg(B).peers = [A, C];
    await reg(A).start();
    await l.refreshPeers();
    expect(l.registries).toEqual([A, C]);
    expect(l.url).toBe(A);
    expect(await answering(l)).toBe(A);
  });

  it('a blocking query is held only on the registry the link is on: when another call fails over, it is asked again there from the same index, and answers once', async () => {
    await startAll([A, B, C]);
    const l = await newLink([A, B, C]);
    const ac = new AbortController();
    const index = store.revision;
    const answers: Array<{ registry: string; revision: number }> = [];
    const watch = l.watch(async (c, signal) => {
      const r = await c.intentions({ index, wait: '60s', signal });
      answers.push({ registry: c.baseUrl, revision: r.revision });
      return { registry: c.baseUrl, revision: r.revision, size: r.intentions.length };
    }, ac.signal);
    await eventually(() => reg(A).held === 1, { what: 'the query held on A' });
    // A's store loses its quorum: ordinary calls fail there and move to B; the query held on A
    // would wait for its change there (the sighting: the agent said one registry, its
    // watches were on another). The link moves it to B.
    reg(A).noQuorum = true;
    expect(await answering(l)).toBe(B);
    expect(l.url).toBe(B);
    await eventually(() => reg(A).held === 0 && reg(B).held === 1, { what: 'the query moved to B' });
    expect(reg(B).asked.filter((p) => p.startsWith('/v1/intentions'))).toEqual([`/v1/intentions?index=${index}`]);
    // A is well again and answers a late call; the link stays on B, and so does the query.
    reg(A).noQuorum = false;
    expect(await answering(l)).toBe(B);
    const revision = store.change();
    const got = await watch;
    expect(got).toEqual({ registry: B, revision, size: store.intentions.length });
    expect(answers).toEqual([{ registry: B, revision }]);
    expect(reg(C).asked.filter((p) => p.startsWith('/v1/intentions'))).toEqual([]);
    ac.abort();
  });

  it('a query held on the registry the link is on stays held when the peer list changes, and is asked again on the new client after a new certificate', async () => {
    await startAll([A, B]);
    const l = await newLink([A]);
    await l.refreshPeers();
    const index = store.revision;
    const ac = new AbortController();
    const watch = l.watch((c, signal) => c.intentions({ index, wait: '60s', signal }), ac.signal);
    const intentionQueries = (u: string) => reg(u).asked.filter((p) => p.startsWith('/v1/intentions'));
    await eventually(() => reg(A).held === 1, { what: 'the query held on A' });
    // C joins: the list grows, A keeps its client, and the query is not touched.
    reg(A).peers = [A, B, C];
    await l.refreshPeers();
    expect(l.registries).toEqual([A, B, C]);
    expect(await answering(l)).toBe(A);
    expect(reg(A).held).toBe(1);
    expect(intentionQueries(A)).toEqual([`/v1/intentions?index=${index}`]);
    // A renewed certificate (load) replaces every client: the query is asked again on A's new
    // client from the same index, not left on a pool that will be closed.
    await l.load();
    await eventually(() => intentionQueries(A).length === 2 && reg(A).held === 1, {
      what: "the query asked again on A's new client",
    });
    expect(intentionQueries(A)).toEqual([`/v1/intentions?index=${index}`, `/v1/intentions?index=${index}`]);
    const revision = store.change();
    expect((await watch).revision).toBe(revision);
    expect([...intentionQueries(B), ...intentionQueries(C)]).toEqual([]);
    expect(l.url).toBe(A);
  });

  it('a blocking query on a registry that dies is asked again on the next one from the same index; stopping the watch ends it', async () => {
    await startAll([A, B, C]);
    const l = await newLink([A, B, C]);
    const index = store.revision;
    const ac = new AbortController();
    const watch = l.watch((c, signal) => c.intentions({ index, wait: '60s', signal }), ac.signal);
    await eventually(() => reg(A).held === 1, { what: 'the query held on A' });
    await reg(A).stop();
    await eventually(() => reg(B).held === 1, { what: 'the query held on B' });
    // The link moved with the query (B was seen to serve first), so it reports where the query is.
    expect(l.url).toBe(B);
    expect(reg(B).asked).toEqual(['/v1/status', `/v1/intentions?index=${index}`]);
    const revision = store.change();
    expect((await watch).revision).toBe(revision);
    expect(reg(B).asked.filter((p) => p.startsWith('/v1/intentions'))).toEqual([`/v1/intentions?index=${index}`]);
    // Stopping a watch ends its held query with the request's error, and no other registry is
    // asked: the next watch's query stays the only one held.
    const held = l.watch((c, signal) => c.intentions({ index: revision, wait: '60s', signal }), ac.signal);
    const other = new AbortController();
    const stopped = l.watch((c, signal) => c.intentions({ index: revision, wait: '60s', signal }), other.signal);
    await eventually(() => reg(B).held === 2, { what: 'two queries held on B' });
    other.abort();
    await expect(stopped).rejects.toMatchObject({ code: 'MESH_ERR_TIMEOUT' });
    await eventually(() => reg(B).held === 1, { what: 'the stopped query gone from B' });
    expect(reg(C).asked).toEqual([]);
    // An aborted watch asks nothing at all.
    await expect(l.watch((c, signal) => c.intentions({ index: 0, signal }), other.signal)).rejects.toBeDefined();
    expect(reg(B).asked.filter((p) => p.startsWith('/v1/intentions'))).toHaveLength(3);
    // Closing the link ends a held query too.
    l.close();
    await expect(held).rejects.toMatchObject({ code: 'MESH_ERR_UNAVAILABLE' });
    expect(reg(C).asked).toEqual([]);
  });
});
