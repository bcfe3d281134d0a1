/**
 * 1,000 agents reconnecting after a registry restart. Each simulated agent is the agent's own
 * blocking-query loop (WatchLoop from src/agent/proxies/watch.ts: backoff 250 ms to 15 s with
 * jitter) watching the intentions over its own mTLS connection with a joined node's
 * certificate, the way every real agent does. They are in-process watch clients, not agent
 * processes: 1,000 agents with sidecars do not fit a 2-core test machine, and the registry
 * cannot tell the difference (a connection, a client certificate, a held query).
 *
 * The registry is stopped (SIGTERM) for 3 s under them and started again. Passes when the
 * registry stays up and answers an admin probe every 250 ms throughout, every agent's loop
 * hears of a change made after the storm (so each one is back and watching), and the backoff
 * spread them: no 100 ms window holds more than a quarter of the reconnection attempts. The
 * peak of TLS handshakes in flight at once is measured (a figure, not a pass condition).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { RegistryClient } from '../../src/api/registry-client.js';
import { createKeyAndCsr, nodeId } from '../../src/ca/index.js';
import { WatchLoop } from '../../src/agent/proxies/watch.js';
import { silentLogger } from '../../src/util/log.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';
import { stopAllDaemons } from '../helpers/cli.js';
import { eventually } from '../helpers/registry.js';
import { recordAndCheck } from './record.js';

const AGENTS = 1000;
/** Distinct joined nodes; agents share their certificates ten to one (1,000 joins would take the CPU of the scenario). */
const NODES = 100;
const DOWN_MS = 3000;
const WINDOW_MS = 100;

/**
 * Every TLS connection this process opens to the registry's port: when its handshake started
 * and ended. Wraps tls.connect (what https.Agent calls) for the scenario only: a measurement,
 * the connections themselves are untouched.
 */
function watchHandshakes(port: number) {
  const attempts: Array<{ start: number; end?: number; ok?: boolean; resumed?: boolean }> = [];
  let inFlight = 0;
  let peak = 0;
  const original = tls.connect;
  const wrapped = ((...args: Parameters<typeof tls.connect>) => {
    const socket = original(...args);
    const o = args.find((a): a is tls.ConnectionOptions => typeof a === 'object' && a !== null);
    if (Number(o?.port) !== port) return socket;
    const a: { start: number; end?: number; ok?: boolean; resumed?: boolean } = { start: Date.now() };
    attempts.push(a);
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    const done = (ok: boolean) => {
      if (a.end !== undefined) return;
      a.end = Date.now();
      a.ok = ok;
      inFlight -= 1;
    };
    socket.once('secureConnect', () => {
      a.resumed = socket.isSessionReused();
      done(true);
    });
    socket.once('close', () => done(false));
    return socket;
  }) as typeof tls.connect;
  tls.connect = wrapped;
  return {
    attempts,
    resetPeak: () => (peak = inFlight),
    get peak() {
      return peak;
    },
    restore: () => {
      tls.connect = original;
    },
  };
}

/** Names the step an error came from. */
async function step<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

describe('1,000 agents reconnecting after a registry restart', () => {
  let mesh: TestMesh;
  const clients: RegistryClient[] = [];
  const loops: WatchLoop[] = [];
  let handshakes: ReturnType<typeof watchHandshakes> | undefined;

  beforeAll(async () => {
    // An hour's lease: no node of the fleet expires (and changes the store) during the scenario.
    mesh = await startMesh({ defaultIntention: 'allow', leaseTtl: '1h' });
  });
  afterAll(async () => {
    for (const l of loops) l.stop();
    for (const c of clients) c.close();
    handshakes?.restore();
    await stopAllDaemons();
    await mesh?.close();
  });

  it('backoff with jitter spreads them, the registry keeps answering, every agent is back', async () => {
    const ca = await readFile(mesh.env.MESHCTL_CA_FILE!, 'utf8');
    const baseUrl = mesh.registryUrl;
    // Probes wait as long as the CLI does by default (15 s): an answer later than that is a failure.
    const admin = new RegistryClient({ baseUrl, ca, token: mesh.env.MESHCTL_TOKEN!, timeoutMs: 15_000 });
    const writer = new RegistryClient({ baseUrl, ca, token: mesh.env.MESHCTL_TOKEN!, timeoutMs: 60_000 });
    clients.push(admin, writer);
    const { trustDomain } = await admin.status();
    const made = await admin.createToken('reconnecting fleet', undefined, { anyService: true, uses: NODES });
    const joiner = new RegistryClient({ baseUrl, ca, token: made.token });
    clients.push(joiner);
    const nodes: Array<{ cert: string; key: string }> = [];
    for (let i = 0; i < NODES; i++) {
      const name = `f-fleet-${i + 1}`;
      const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(trustDomain, name) });
      const res = await joiner.join({ nodeName: name, address: '127.0.8.20', csr: csrPem });
      nodes.push({ cert: res.certificate, key: keyPem });
    }

    handshakes = watchHandshakes(mesh.registryPort);
    // The highest revision each agent has heard of.
    const heard = new Array<number>(AGENTS).fill(0);
    for (let i = 0; i < AGENTS; i++) {
      const id = nodes[i % NODES]!;
      const c = new RegistryClient({ baseUrl, ca, cert: id.cert, key: id.key });
      clients.push(c);
      const loop = new WatchLoop(
        async (index, signal) => {
          const r = await c.intentions({ index, wait: '300s', signal });
          heard[i] = Math.max(heard[i]!, r.revision);
          return r.revision;
        },
        silentLogger(),
        'intentions',
      );
      loops.push(loop);
      loop.start();
      // The fleet joins over a few seconds, as agents started by hand or by a rollout do (all
      // 1,000 first handshakes at once is the herd this scenario is about, not its set-up).
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 1000));
    }
    const first = (await step('the first change', admin.putIntention('fleet-a', 'fleet-b', 'allow'))).revision;
    await eventually(async () => heard.every((r) => r >= first), {
      what: `all ${AGENTS} agents watching`,
      timeoutMs: 120_000,
    });

    // Restart the registry under them; once it is back, probe it from an admin client all along.
    const stoppedAt = Date.now();
    await mesh.stopRegistry('SIGTERM');
    await new Promise((r) => setTimeout(r, DOWN_MS));
    await mesh.startRegistry();
    const upAt = Date.now();
    handshakes.resetPeak();
    let probes = 0;
    let maxProbeMs = 0;
    const probeFailures: string[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        probes += 1;
        const t0 = Date.now();
        await admin.status().catch((e: Error) => probeFailures.push(e.message));
        maxProbeMs = Math.max(maxProbeMs, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    // The first change after the restart, while the fleet reconnects: how long the registry took
    // to answer it is a figure of the row (bounded by a long timeout, not a pass condition).
    // A connection the registry cut (its 10 s handshake limit while the fleet's handshakes queue)
    // is tried again, as a user would: the tries are in the row.
    const putStarted = Date.now();
    let putTries = 0;
    const put = async (): Promise<number> => {
      for (;;) {
        putTries += 1;
        try {
          return (await writer.putIntention('fleet-a', 'fleet-c', 'allow')).revision;
        } catch (e) {
          if (putTries >= 3) throw e;
        }
      }
    };
    const change = await step('the change after the restart', put());
    const putMs = Date.now() - putStarted;
    let allBack = true;
    try {
      await eventually(async () => heard.every((r) => r >= change), {
        what: `all ${AGENTS} agents back and hearing of a change`,
        timeoutMs: 90_000,
      });
    } catch {
      allBack = false;
    }
    const backMs = Date.now() - upAt;
    probing = false;
    await prober;
    const alive =
      mesh.registry !== undefined &&
      (await admin
        .status()
        .then(() => true)
        .catch(() => false));

    // The handshakes that reached the restarted registry (started after the stop, completed):
    // how the fleet arrived, timed from the first of them (the registry was listening by then).
    const after = handshakes.attempts.filter((a) => a.start >= stoppedAt && a.ok === true);
    const t0 = Math.min(...after.map((a) => a.start));
    const byWindow = new Map<number, number>();
    for (const a of after) {
      const w = Math.floor((a.start - t0) / WINDOW_MS);
      byWindow.set(w, (byWindow.get(w) ?? 0) + 1);
    }
    const busiest = Math.max(0, ...byWindow.values());
    const resumed = after.filter((a) => a.resumed).length;
    const starts = after.map((a) => a.start - t0).sort((x, y) => x - y);
    const pct = (p: number) => starts[Math.min(starts.length - 1, Math.floor((starts.length * p) / 100))] ?? 0;
    // Handshakes to the restarted registry that did not complete (cut, or timed out).
    const failedHandshakes = handshakes.attempts.filter((a) => a.start >= upAt && a.ok === false).length;
    const refusedWhileDown = handshakes.attempts.filter((a) => a.start >= stoppedAt && a.start < upAt && !a.ok).length;
    const missing = heard.filter((r) => r < change).length;

    recordAndCheck(
      {
        scenario: '1,000 agents reconnecting after a registry restart',
        load: `${AGENTS} watching agents (the agent's WatchLoop, in-process; ${NODES} joined node certificates), an admin probe every 250 ms`,
        fault: `registry SIGTERM, down ${DOWN_MS / 1000} s (+ its start), restarted; ${refusedWhileDown} connection attempts refused while down; after it: ${after.length} handshakes, ${resumed} of them resumed sessions (${failedHandshakes} more did not complete), started at p10/p50/p90 ${pct(10)}/${pct(50)}/${pct(90)} ms, busiest ${WINDOW_MS} ms: ${busiest}, peak ${handshakes.peak} in flight at once; all back in ${(backMs / 1000).toFixed(1)} s; ${probes} probes, ${probeFailures.length} failed, slowest ${maxProbeMs} ms; a change made at once was answered in ${putMs} ms (${putTries} ${putTries === 1 ? 'try' : 'tries'})`,
        sent: after.length + probes,
        failed: missing + probeFailures.length,
        lostWrites: '—',
        expected:
          'spread by the backoff (no 100 ms window with > 25 % of the reconnections); most resume their TLS session; registry up and answering; every agent back',
      },
      allBack &&
        alive &&
        probeFailures.length === 0 &&
        busiest <= after.length / 4 &&
        after.length >= AGENTS &&
        resumed >= AGENTS / 2,
      [
        allBack ? '' : `${missing} agents never heard of the change`,
        alive ? '' : 'registry not answering at the end',
        probeFailures.length ? `probes failed: ${[...new Set(probeFailures)].slice(0, 3).join('; ')}` : '',
        busiest > after.length / 4 ? `${busiest} of ${after.length} reconnections in one ${WINDOW_MS} ms window` : '',
        after.length < AGENTS ? `only ${after.length} handshakes after the restart` : '',
        resumed < AGENTS / 2 ? `only ${resumed} resumed their TLS session` : '',
      ]
        .filter(Boolean)
        .join('; '),
    );
  });
});
