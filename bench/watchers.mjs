/**
 * A process full of simulated agents for the control-plane bench (forked with IPC by
 * control-plane.mjs): each watcher holds one blocking query against the registry, the way
 * an agent waits for catalog and intention changes, over mTLS with a node certificate
 * (`perIdentity` watchers share one, each group its own client and connections).
 *
 * Messages in:  {cmd:'init', baseUrl, caPem, identities:[{certPem, keyPem}, …], perIdentity, count}
 *               {cmd:'arm', kind:'catalog'|'intentions', index, expect, timeoutMs}
 *               {cmd:'stats'} (errors so far), {cmd:'close'}
 * Messages out: {cmd:'ready'}, {cmd:'armed'},
 *               {cmd:'result', times:[ms epoch, …], answered, errors:[…], errorCount}, {cmd:'stats', errors, errorCount}
 *
 * A watcher that gets an answer without the expected change (another change came first, or
 * `wait` ran out) asks again from the answer's revision, as an agent would.
 */
import { performance } from 'node:perf_hooks';
import { distImport } from './lib/dist.mjs';

const { RegistryClient } = await distImport('api/registry-client.js');

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

/** @type {any[]} one RegistryClient per identity */
let clients = [];
let perIdentity = 1;
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

async function watchOne(client, kind, index, expect, deadline) {
  let idx = index;
  while (now() < deadline) {
    let r;
    try {
      r =
        kind === 'catalog'
          ? await client.instances('api', { index: idx, wait: '60s' })
          : await client.intentions({ index: idx, wait: '60s' });
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
    runs.push(watchOne(clients[Math.floor(i / perIdentity) % clients.length], m.kind, m.index, m.expect, deadline));
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
    perIdentity = m.perIdentity;
    clients = m.identities.map((id) => {
      // Keep every watcher's connection between rounds (Node keeps 256 idle sockets by default),
      // so later rounds measure the change, not new handshakes.
      return new RegistryClient({
        baseUrl: m.baseUrl,
        ca: m.caPem,
        cert: id.certPem,
        key: id.keyPem,
        maxFreeSockets: Math.max(256, perIdentity),
      });
    });
    process.send({ cmd: 'ready' });
  } else if (m.cmd === 'arm') {
    void arm(m).catch((e) => process.send({ cmd: 'result', times: [], answered: 0, errors: [String(e)] }));
  } else if (m.cmd === 'stats') {
    process.send({ cmd: 'stats', errors, errorCount });
  } else if (m.cmd === 'close') {
    for (const c of clients) c.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
