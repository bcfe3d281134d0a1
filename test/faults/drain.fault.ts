/**
 * SIGTERM drain of a sidecar (#11.5) in a real mesh: api-1's sidecar gets SIGTERM while slow
 * requests (10 s each) are in flight through it and a steady load runs through web's sidecar.
 * The sidecar first tells its agent, which marks api-1 draining in the registry, so web's
 * sidecar drops it while api-1 still drains (the http inbound pipes bytes, issue 13 §3, so it
 * cannot close web's keep-alive connections itself: docs/DATAPLANE.md "Drain"). With the
 * default drain (30 s) the slow requests finish with the app's 200 and nothing fails; no
 * request made after web's sidecar stopped listing api-1 reaches api-1.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import http from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TestApp } from '../helpers/mesh.js';
import { stopAllDaemons } from '../helpers/cli.js';
import { eventually } from '../helpers/registry.js';
import { agentProxies } from '../helpers/mesh.js';
import { HOSTS } from '../helpers/hosts.js';
import { alive } from '../helpers/proc.js';
import { startFaultMesh, type FaultMesh } from './mesh.js';
import { describeLoad, failureSummary, underLoad, type LoadOptions } from './load.js';
import { recordAndCheck } from './record.js';

/** Longer than the old 5 s cap, shorter than the default 30 s drain (and any caller timeout). */
const SLOW_MS = 10_000;
const SLOW_COUNT = 6;

interface SlowApp extends TestApp {
  /** Requests that reached the app through the mesh, with when. */
  hits: Array<{ at: number; path: string }>;
  slowInFlight: number;
}

/** An app that answers / at once and /slow after SLOW_MS, and remembers every request it got. */
async function startSlowApp(name: string, address: string): Promise<SlowApp> {
  let server: http.Server | undefined;
  const app: SlowApp = {
    address,
    port: 0,
    name,
    hits: [],
    slowInFlight: 0,
    async start() {
      server = http.createServer((req, res) => {
        // The agent's own health checks come straight to the app: only requests through the mesh count.
        if (req.headers['user-agent'] !== 'meshctl-health-check')
          app.hits.push({ at: Date.now(), path: req.url ?? '' });
        const body = JSON.stringify({ app: name, path: req.url });
        const reply = () => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        };
        if (req.url === '/slow') {
          app.slowInFlight += 1;
          setTimeout(() => {
            app.slowInFlight -= 1;
            reply();
          }, SLOW_MS);
        } else reply();
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(app.port, address, () => resolve());
      });
      app.port = (server.address() as AddressInfo).port;
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = undefined;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  await app.start();
  return app;
}

/** One slow GET through web's upstream listener, each on its own connection: status and app. */
function slowGet(port: number): Promise<{ status: number; app: string; reason: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false, timeout: 40_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let app = '';
        try {
          app = (JSON.parse(text) as { app?: string }).app ?? '';
        } catch {
          // A mesh answer, not the app's.
        }
        resolve({ status: res.statusCode ?? 0, app, reason: String(res.headers['x-meshctl-reason'] ?? '') });
      });
      res.on('error', (e) => resolve({ status: 0, app: '', reason: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: 0, app: '', reason: e.message }));
  });
}

/** The pids of the sidecar processes of an agent (its data dir's proxies/ in their command line). */
async function sidecarPids(agentDataDir: string): Promise<number[]> {
  const marker = join(agentDataDir, 'proxies') + '/';
  const pids: number[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker) && cmdline.includes('proxy')) pids.push(Number(pid));
  }
  return pids;
}

describe('SIGTERM drain of a sidecar', () => {
  let f: FaultMesh;
  let apps: [SlowApp, SlowApp];
  beforeAll(async () => {
    f = await startFaultMesh(24156, {
      hosts: HOSTS.faultsDrain,
      app: (name, address) => startSlowApp(name, address),
    });
    apps = f.apps as [SlowApp, SlowApp];
  });
  afterAll(async () => {
    await stopAllDaemons();
    await f?.close();
  });

  it('withdraws api-1 from web before it drains: in-flight requests finish, none fails, none made after reaches api-1', async () => {
    const [api1] = apps;
    const [pid, ...others] = await sidecarPids(f.api[0].dataDir);
    if (pid === undefined || others.length > 0)
      throw new Error(`expected one sidecar of api-1, found ${others.length + (pid ? 1 : 0)}`);

    // Slow requests until api-1's app holds at least two of them (the balancer spreads them).
    const slow: Array<Promise<{ status: number; app: string; reason: string }>> = [];
    for (let i = 0; i < SLOW_COUNT; i++) slow.push(slowGet(f.port));
    await eventually(async () => api1.slowInFlight >= 2, { what: 'slow requests in flight at api-1', timeoutMs: 5000 });
    const inFlightAtApi1 = api1.slowInFlight;

    // web's sidecar names api-1's endpoint by instance id and node.
    const api1Endpoint = `api.${f.api[0].name}`;
    const webLists = async () => {
      const [web] = await agentProxies(f.web.socket);
      return Object.keys(web?.stats?.upstreams?.api?.endpoints ?? {});
    };
    if (!(await webLists()).includes(api1Endpoint)) throw new Error(`web's sidecar does not list ${api1Endpoint}`);

    const load: LoadOptions = { port: f.port, count: 300, perSecond: 20, numbered: true };
    let termAt = 0;
    let exitAt = 0;
    /** When the test first saw web's sidecar without api-1 (after reading its /stats); 0: not while api-1 drained. */
    let withdrawnAt = 0;
    const r = await underLoad(
      load,
      async () => {
        termAt = Date.now();
        process.kill(pid, 'SIGTERM');
        const watching = (async () => {
          while (alive(pid) && withdrawnAt === 0) {
            const listed = await webLists().catch(() => [api1Endpoint]);
            if (!listed.includes(api1Endpoint) && alive(pid)) withdrawnAt = Date.now();
            else await new Promise((res) => setTimeout(res, 25));
          }
        })();
        // The drain ends when the slow requests are answered; the agent then relaunches the sidecar.
        await eventually(async () => !alive(pid), { what: "api-1's draining sidecar to exit", timeoutMs: 40_000 });
        exitAt = Date.now();
        await watching;
      },
      1000,
    );
    const slowAnswers = await Promise.all(slow);
    const slowFailed = slowAnswers.filter((a) => a.status !== 200);
    // Load requests that reached api-1's app through its draining sidecar (before it exited:
    // the relaunched one serves only after), by number; those made after web's sidecar had
    // dropped api-1 must be none (the web sidecar could not pick api-1 for them).
    const numbered = api1.hits.flatMap((h) => {
      if (h.at > exitAt) return [];
      const m = /^\/\?n=(\d+)$/.exec(h.path);
      return m ? [Number(m[1])] : [];
    });
    const madeAfterWithdrawal = withdrawnAt === 0 ? [] : numbered.filter((n) => (r.sentAt[n] ?? 0) > withdrawnAt);
    const beforeWithdrawal = numbered.filter((n) => (r.sentAt[n] ?? 0) > termAt && !madeAfterWithdrawal.includes(n));
    const drainedMs = exitAt - termAt;

    recordAndCheck(
      {
        scenario: 'SIGTERM drain of a sidecar',
        load: `${describeLoad(load)} + ${SLOW_COUNT} requests of ${SLOW_MS / 1000} s`,
        fault: `SIGTERM api-1's sidecar (default drain 30 s) with ${inFlightAtApi1} slow requests in flight through it; web dropped api-1 ${withdrawnAt === 0 ? 'only after it exited' : `${((withdrawnAt - termAt) / 1000).toFixed(1)} s after the signal`}; api-1 exited after ${(drainedMs / 1000).toFixed(1)} s; new requests at api-1 made after web dropped it: ${madeAfterWithdrawal.length} (before: ${beforeWithdrawal.length})`,
        sent: r.sent + slowAnswers.length,
        failed: r.failed.length + slowFailed.length,
        lostWrites: '—',
        expected:
          'api-1 withdrawn from web while it drains; 0 new requests at api-1 after; in-flight finish (200); 0 failed',
      },
      r.failed.length === 0 &&
        slowFailed.length === 0 &&
        r.sent === load.count &&
        withdrawnAt !== 0 &&
        madeAfterWithdrawal.length === 0,
      [
        failureSummary(r),
        slowFailed.map((a) => `slow ${a.status} ${a.reason}`).join(', '),
        withdrawnAt === 0 ? "web's sidecar listed api-1 until it exited" : '',
        madeAfterWithdrawal.length > 0
          ? `${madeAfterWithdrawal.length} requests made after withdrawal reached api-1`
          : '',
      ]
        .filter(Boolean)
        .join('; '),
    );
  });
});
