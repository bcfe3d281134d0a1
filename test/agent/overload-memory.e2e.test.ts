/**
 * Overload past `max_concurrent_requests` (issue 15): web's sidecar holds its limit of requests
 * at an api app that does not answer them, and callers send far more at once, far above the
 * limit. The excess is answered at once with 503 `circuit-open`, and the sidecar's memory stays
 * bounded: its resident set grows by less than a fixed bound over tens of thousands of refused
 * requests (the kernel's peak, VmHWM, reset after a warm-up round), because nothing is queued.
 * Real agents, real sidecars; settings with `meshctl apply -f`. Loopback block 127.0.15.0/24.
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTS } from '../helpers/hosts.js';
import { agentProxies, startMesh, type MeshAgent, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';
import { procStatus, resetPeak } from '../helpers/proc.js';

const [HOST_WEB, HOST_API] = HOSTS.resilienceOverload;
const UP = 24910;
const LIMIT = 16;
/** Callers at once, and refused requests per round. */
const CALLERS = 256;
const PER_ROUND = 20_000;
/** The bound on the sidecar's RSS growth over the measured rounds: measured 0.1, 0.2 and 1.8 MB (three runs, load 10); the warm-up round itself 14-15 MB. */
const BOUND_MB = 16;

const agent = new http.Agent({ keepAlive: true, maxSockets: CALLERS });

function get(port: number): Promise<{ status: number; reason: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: res.headers['x-meshctl-reason'] as string }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** `n` GETs, `callers` at a time: the count of answers by status and reason. */
async function flood(port: number, n: number, callers: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < n) {
        next += 1;
        const r = await get(port);
        const k = `${r.status} ${r.reason ?? ''}`.trim();
        out[k] = (out[k] ?? 0) + 1;
      }
    }),
  );
  return out;
}

describe('overload past max_concurrent_requests through real agents and sidecars', () => {
  let mesh: TestMesh;
  let web: MeshAgent;
  const held: http.ServerResponse[] = [];
  let seen = 0;
  const app = http.createServer((req, res) => {
    seen += 1;
    req.resume();
    held.push(res);
  });

  const webProxy = async () => (await agentProxies(web.socket)).find((p) => p.info.serviceId === 'web')!;

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'allow' });
    web = await mesh.addAgent('web-host', HOST_WEB!, { services: ['web'] });
    const api = await mesh.addAgent('api-host', HOST_API!, { services: ['api'] });
    await new Promise<void>((resolve) => app.listen(0, HOST_API, resolve));
    await api.register({ name: 'api', port: (app.address() as AddressInfo).port, protocol: 'http' });
    await web.register({ name: 'web', port: 9300, protocol: 'http', upstreams: [`api:${UP}`] });
    const file = join(mesh.dir, 'api-defaults.yaml');
    // The limit, no request timeout (the held requests stay held however long the rounds take).
    await writeFile(
      file,
      `kind: service-defaults\nname: api\nprotocol: http\nrequest_timeout: 0s\nlimits: { max_concurrent_requests: ${LIMIT} }\n`,
    );
    const r = await mesh.admin(['apply', '-f', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    await eventually(
      async () => {
        const s = (await webProxy().catch(() => undefined))?.stats?.upstreams?.api?.settings;
        return s?.limits?.maxConcurrentRequests === LIMIT || undefined;
      },
      { what: 'web sidecar serving the limit', timeoutMs: 90_000 },
    );
  }, 180_000);

  afterAll(async () => {
    agent.destroy();
    for (const r of held.splice(0)) r.end('released');
    app.closeAllConnections();
    await new Promise<void>((resolve) => app.close(() => resolve()));
    await mesh?.close();
  });

  it(`${CALLERS} callers at once, ${PER_ROUND} requests a round: the excess gets 503 circuit-open at once, the sidecar's RSS grows < ${BOUND_MB} MB`, async () => {
    // Fill the limit: these reach the app and are held there for the whole test.
    const holding = Array.from({ length: LIMIT }, () => get(UP));
    await eventually(async () => seen === LIMIT || undefined, { what: `${LIMIT} requests held at the app` });
    const pid = (await webProxy()).info.pid;
    const refused = `503 circuit-open api max-requests ${LIMIT}`;

    // Warm-up round: JIT, sockets, buffers of 256 connections. Then the peak is reset.
    const cold = await procStatus(pid, 'VmRSS');
    const warm = await flood(UP, PER_ROUND, CALLERS);
    expect(warm).toEqual({ [refused]: PER_ROUND });
    const base = await procStatus(pid, 'VmRSS');
    const resetOk = await resetPeak(pid);
    let sampledPeak = base;
    const sampler = setInterval(() => {
      void procStatus(pid, 'VmRSS')
        .then((mb) => (sampledPeak = Math.max(sampledPeak, mb)))
        .catch(() => undefined);
    }, 25);
    const rounds: Array<Record<string, number>> = [];
    try {
      for (let i = 0; i < 2; i++) rounds.push(await flood(UP, PER_ROUND, CALLERS));
    } finally {
      clearInterval(sampler);
    }
    const peak = Math.max(sampledPeak, resetOk ? await procStatus(pid, 'VmHWM') : 0);
    const after = await procStatus(pid, 'VmRSS');
    console.log(
      `web sidecar RSS: ${cold.toFixed(1)} MB before, ${base.toFixed(1)} MB after a warm-up round of ${PER_ROUND}, peak ${peak.toFixed(1)} MB (${resetOk ? 'VmHWM reset' : 'sampled'}) over ${2 * PER_ROUND} refused requests at ${CALLERS} callers, ${after.toFixed(1)} MB after; growth ${(peak - base).toFixed(1)} MB`,
    );
    // Every excess request refused at once; none reached the app (it still holds the first ones).
    for (const r of rounds) expect(r).toEqual({ [refused]: PER_ROUND });
    expect(seen).toBe(LIMIT);
    expect(peak - base).toBeLessThan(BOUND_MB);

    // The held ones were never refused: released, they succeed.
    for (const r of held.splice(0)) r.end('released');
    expect((await Promise.all(holding)).map((r) => r.status)).toEqual(Array(LIMIT).fill(200));
  }, 240_000);
});
