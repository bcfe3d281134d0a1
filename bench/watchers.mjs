/**
 * A process full of simulated agents for the control-plane bench (forked with IPC by
 * control-plane.mjs): each watcher holds one blocking query against the registry, the way
 * an agent waits for catalog and intention changes, over mTLS with a node certificate
 * (`perIdentity` watchers share one, and its TLS session).
 *
 * Messages in:  {cmd:'init', baseUrl, caPem, identities:[{certPem, keyPem}, …], perIdentity, count, client?: 'minimal'|'node'}
 *               {cmd:'arm', kind:'catalog'|'intentions', index, expect, timeoutMs}
 *               {cmd:'stats'} (errors so far), {cmd:'close'}
 * Messages out: {cmd:'ready'}, {cmd:'armed'},
 *               {cmd:'result', times:[ms epoch, …], answered, errors:[…], errorCount}, {cmd:'stats', errors, errorCount}
 *
 * A watcher that gets an answer without the expected change (another change came first, or
 * `wait` ran out) asks again from the answer's revision, as an agent would.
 *
 * Each watcher has one keep-alive connection of its own (lib/watch-client.mjs: a minimal
 * HTTP/1.1 client, so that these simulated agents, which share the registries' cores, cost no
 * more than a watch must), kept between rounds so later rounds measure the change, not new
 * handshakes. A watcher's time is taken once it has read and parsed the whole answer.
 */
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import { distImport } from './lib/dist.mjs';
import { SessionBox, WatchConnection } from './lib/watch-client.mjs';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

/**
 * One per watcher: a WatchConnection, or with `client: 'node'` the agent's own RegistryClient
 * (Node's https agent; one per identity, shared by its watchers), to compare the two.
 * @type {Array<{ get: (path: string) => Promise<{ body: any }>, close: () => void }>}
 */
let conns = [];
let count = 0;

function sees(kind, r, expect) {
  if (kind === 'catalog') return r.instances.some((i) => i.id === expect.id);
  return r.intentions.some(
    (i) => i.source === expect.source && i.destination === expect.destination && i.action === expect.action,
  );
}

/** Errors of the current arm (the first few kept), for the result and for a 'stats' probe. */
let errors = [];
let errorCount = 0;

/** The paths RegistryClient.instances('api', …) and .intentions(…) ask. */
const PATHS = { catalog: '/v1/catalog/service/api', intentions: '/v1/intentions' };

async function watchOne(conn, kind, index, expect, deadline) {
  let idx = index;
  while (now() < deadline) {
    let r;
    try {
      r = (await conn.get(`${PATHS[kind]}?index=${idx}&wait=60s`)).body;
    } catch (e) {
      // As an agent does: note it, back off a little (with jitter), ask again.
      errorCount += 1;
      if (errors.length < 5) errors.push(String(e?.message ?? e));
      await new Promise((res) => setTimeout(res, 500 + Math.random() * 1000));
      continue;
    }
    if (sees(kind, r, expect)) return now();
    idx = r.revision;
  }
  return undefined;
}

async function arm(m) {
  const deadline = now() + m.timeoutMs;
  errors = [];
  errorCount = 0;
  const runs = [];
  for (let i = 0; i < count; i++) {
    runs.push(watchOne(conns[i], m.kind, m.index, m.expect, deadline));
    // Let the sockets open in batches rather than one burst of SYNs.
    if (i % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  process.send({ cmd: 'armed' });
  const times = await Promise.all(runs);
  const got = times.filter((t) => t !== undefined);
  process.send({ cmd: 'result', times: got, answered: got.length, errors, errorCount });
}

process.on('message', (m) => {
  if (m.cmd === 'init') {
    count = m.count;
    if (m.client === 'node') {
      void nodeClients(m).then(
        () => process.send({ cmd: 'ready' }),
        (e) => {
          // The bench's 'ready' wait then names this process's log.
          console.error(`watchers: the node client could not start: ${String(e)}`);
          process.exit(1);
        },
      );
      return;
    }
    const url = new URL(m.baseUrl);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // The watchers of one identity (one agent host's certificate) share its TLS session.
    const sessions = m.identities.map(() => new SessionBox());
    const contexts = m.identities.map((x) =>
      createSecureContext({ ca: m.caPem, cert: x.certPem, key: x.keyPem, minVersion: 'TLSv1.3' }),
    );
    conns = Array.from({ length: count }, (_, i) => {
      const id = Math.floor(i / m.perIdentity) % m.identities.length;
      return new WatchConnection({
        host,
        port: Number(url.port),
        secureContext: contexts[id],
        session: sessions[id],
      });
    });
    process.send({ cmd: 'ready' });
  } else if (m.cmd === 'arm') {
    void arm(m).catch((e) => process.send({ cmd: 'result', times: [], answered: 0, errors: [String(e)] }));
  } else if (m.cmd === 'stats') {
    process.send({ cmd: 'stats', errors, errorCount });
  } else if (m.cmd === 'close') {
    for (const c of conns) c.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

/** The agent's own client for every watcher (the bench's simulated agents before the minimal one). */
async function nodeClients(m) {
  const { RegistryClient } = await distImport('api/registry-client.js');
  const clients = m.identities.map(
    (id) =>
      // Keep every watcher's connection between rounds (Node keeps 256 idle sockets by default).
      new RegistryClient({
        baseUrl: m.baseUrl,
        ca: m.caPem,
        cert: id.certPem,
        key: id.keyPem,
        maxFreeSockets: Math.max(256, m.perIdentity),
      }),
  );
  conns = Array.from({ length: count }, (_, i) => {
    const c = clients[Math.floor(i / m.perIdentity) % clients.length];
    return {
      // The same requests RegistryClient.instances/intentions make (index, wait, the socket margin).
      get: (path) => c.http.get(path, { timeoutMs: 10 * 60_000 + 15_000 }),
      close: () => c.close(),
    };
  });
}
