/**
 * Resilience on the L7 outbound through a real pair (web sidecar → api sidecars → apps, mTLS,
 * in this process): timeouts, retries, circuit breaking. Assertions are on answers and counts, never on how long things
 * took. Loopback block 127.0.14.0/24 (HOSTS.resilience).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HOSTS } from '../../../helpers/hosts.js';
import type { SnapshotResilience } from '../../../../src/proxy/snapshot.js';
import { defer, get, outboundPort, startProxy, waitFor } from '../../harness.js';
import { webApiFixture } from '../../web-api.js';

const [HOST_A, HOST_B] = HOSTS.resilience;

const { apiInstance, webSnapshot } = webApiFixture();

/**
 * A test app: /hang takes the request and never answers (until the test ends); /slow-body
 * sends its head and part of the body, then stalls; anything else answers 200 with the
 * instance's name. It counts the requests it got and the ones whose connection closed.
 */
async function startApp(name: string, opts: { failWith?: number; hangAll?: boolean } = {}) {
  const seen = { requests: 0, closed: 0 };
  const held: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.requests += 1;
    res.on('close', () => (seen.closed += 1));
    if (req.url === '/hang' || opts.hangAll) {
      held.push(res);
      return;
    }
    if (req.url === '/slow-body') {
      held.push(res);
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(100));
      return;
    }
    if (req.url === '/flaky' && opts.failWith !== undefined) {
      res.writeHead(opts.failWith);
      res.end(`${name} failed`);
      return;
    }
    res.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  /** Answers the held requests (200 `released`). */
  const release = (): void => {
    for (const res of held.splice(0)) res.end('released');
  };
  return { port: (server.address() as AddressInfo).port, seen, release };
}

async function pair(
  resilience: SnapshotResilience | undefined,
  instances = 1,
  failWith: Array<number | 'hang' | undefined> = [],
) {
  const apps = [];
  const endpoints = [];
  for (let i = 0; i < instances; i++) {
    const fail = failWith[i];
    const app = await startApp(
      `api-${i + 1}`,
      fail === undefined ? {} : fail === 'hang' ? { hangAll: true } : { failWith: fail },
    );
    const a = await apiInstance(`api-${i + 1}`, [HOST_A, HOST_B][i]!, { appPort: app.port });
    apps.push(app);
    endpoints.push(a.endpoint);
  }
  const web = await startProxy(
    // The random balancer on a source that always says 0: the first endpoint not tried yet.
    webSnapshot({ service: 'api', loadBalancer: 'random', endpoints, ...(resilience ? { resilience } : {}) }),
    { random: () => 0 },
  );
  return { web, apps, port: outboundPort(web, 'api') };
}

function upstreamStats(web: Awaited<ReturnType<typeof pair>>['web']) {
  return (web.stats().upstreams as Record<string, Record<string, unknown>>).api!;
}

describe('timeouts', () => {
  it('with no settings, an upstream gets the 15 s request timeout and the 5 s connect timeout', async () => {
    const { web } = await pair(undefined);
    const cluster = web.outbound.listener('api')!.cluster;
    expect(cluster.resilience.requestTimeoutMs).toBe(15_000);
    expect(cluster.resilience.perTryTimeoutMs).toBe(0);
    expect(cluster.resilience.connectTimeoutMs).toBe(5_000);
  });

  it('an endpoint that hangs: 504 request-timeout with the time, and both connections are let go', async () => {
    const { web, apps, port } = await pair({ requestTimeoutMs: 300 });
    const r = await get(port, '/hang');
    expect(r.status).toBe(504);
    expect(r.headers['x-meshctl-reason']).toBe('request-timeout api 300ms');
    // The attempt was aborted: its mesh connection closed, so the api sidecar let the app's go.
    await waitFor(() => apps[0]!.seen.closed === 1, 'the app sees its request end');
    const s = upstreamStats(web);
    expect(s.errors).toEqual({ 'request-timeout api 300ms': 1 });
    const ep = (s.endpoints as Record<string, { inFlight: number }>)['api-1']!;
    expect(ep.inFlight).toBe(0);
    // The next request is served as usual.
    expect((await get(port, '/')).body).toBe('api-1');
  });

  it('a per-try timeout ends the attempt: 504 naming the per-try time, the app request ended', async () => {
    const { apps, port } = await pair({ requestTimeoutMs: 10_000, perTryTimeoutMs: 200, retry: { numRetries: 0 } });
    const r = await get(port, '/hang');
    expect(r.status).toBe(504);
    expect(r.headers['x-meshctl-reason']).toBe('request-timeout api per-try 200ms');
    await waitFor(() => apps[0]!.seen.closed === 1, 'the app sees its request end');
  });

  it('a response still streaming when the request timeout passes is cut, not completed', async () => {
    const { apps, port } = await pair({ requestTimeoutMs: 300 });
    const err = await get(port, '/slow-body').then(
      () => undefined,
      (e: Error) => e,
    );
    // The head (200) went out before the deadline: the app sees the body cut.
    expect(err?.message).toMatch(/aborted|socket hang up|ECONNRESET/);
    await waitFor(() => apps[0]!.seen.closed === 1, 'the app sees its request end');
  });
});

describe('retries', () => {
  it('a GET one instance answers 503 is retried on the other: the app gets 200 after 2 attempts, counted', async () => {
    const { web, apps, port } = await pair(undefined, 2, [503, undefined]);
    // api-1 first (503); the retry goes to the endpoint not tried, api-2.
    const r = await get(port, '/flaky');
    expect([r.status, r.body]).toEqual([200, 'api-2']);
    expect(r.headers['x-meshctl-attempts']).toBe('2');
    expect(apps.map((a) => a.seen.requests)).toEqual([1, 1]);
    const s = upstreamStats(web);
    expect(s.resilience).toEqual({
      retries: 1,
      retryBudgetExhausted: 0,
      timeouts: 0,
      circuitOpen: { 'max-requests': 0, 'max-pending': 0, 'max-retries': 0 },
      ejections: 0,
      ejected: 0,
    });
    // The upstream counts what the app got; the failed attempt counts on its endpoint.
    expect(s.responses).toEqual({ '2xx': 1 });
    const eps = s.endpoints as Record<string, { responses: Record<string, number> }>;
    expect(eps['api-1']!.responses).toEqual({ '5xx': 1 });
    expect(eps['api-2']!.responses).toEqual({ '2xx': 1 });
  });

  it('a POST answered 503 is relayed as it came, after one attempt', async () => {
    const { web, apps, port } = await pair(undefined, 2, [503, undefined]);
    const r = await get(port, '/flaky', { method: 'POST', body: 'x' });
    expect(r.status).toBe(503);
    expect(r.body).toBe('api-1 failed');
    expect(r.headers['x-meshctl-attempts']).toBe('1');
    expect(apps.map((a) => a.seen.requests)).toEqual([1, 0]);
    expect(upstreamStats(web).resilience).toMatchObject({ retries: 0 });
  });

  it("a POST is retried when the upstream's settings say so", async () => {
    const { port } = await pair({ retry: { retryNonIdempotent: true } }, 2, [503, undefined]);
    const r = await get(port, '/flaky', { method: 'POST', body: 'x' });
    expect(r.status).toBe(200);
    expect(r.headers['x-meshctl-attempts']).toBe('2');
  });

  it('with the budget spent, the 503 goes to the app saying so', async () => {
    const { web, port } = await pair({ retryBudget: { percent: 0, minRetriesPerSecond: 0 } }, 2, [503, 503]);
    const r = await get(port, '/flaky');
    expect(r.status).toBe(503);
    expect(r.headers['x-meshctl-reason']).toBe('retry-budget-exhausted api');
    expect(r.headers['x-meshctl-attempts']).toBe('1');
    expect(upstreamStats(web).resilience).toMatchObject({ retries: 0, retryBudgetExhausted: 1 });
  });
});

describe('circuit breaking', () => {
  it('past max_concurrent_requests the excess gets 503 circuit-open at once; the others are served', async () => {
    const { web, apps, port } = await pair({ requestTimeoutMs: 60_000, limits: { maxConcurrentRequests: 2 } }, 1);
    // Two requests the app holds fill the upstream's two slots.
    const held = [get(port, '/hang'), get(port, '/hang')];
    await waitFor(() => apps[0]!.seen.requests === 2, 'two requests held by the app');
    const refused = await Promise.all([get(port, '/'), get(port, '/')]);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.headers['x-meshctl-reason']).toBe('circuit-open api max-requests 2');
    }
    // The app never saw the refused ones.
    expect(apps[0]!.seen.requests).toBe(2);
    const s = upstreamStats(web);
    expect(s.resilience).toMatchObject({ circuitOpen: { 'max-requests': 2 } });
    expect(s.errors).toEqual({ 'circuit-open api max-requests 2': 2 });
    // Slots come back as requests end: the held ones are answered, then a new one is served.
    apps[0]!.release();
    expect((await Promise.all(held)).map((r) => r.body)).toEqual(['released', 'released']);
    await waitFor(() => web.outbound.listener('api')!.cluster.breaker.requests === 0, 'the slots are free');
    expect((await get(port, '/')).status).toBe(200);
  });

  it('past max_pending_requests an attempt waiting for a connection is refused: one connection, none pending', async () => {
    const { web, apps, port } = await pair(
      { requestTimeoutMs: 60_000, limits: { maxConnections: 1, maxPendingRequests: 1 } },
      1,
    );
    const held = [get(port, '/hang'), get(port, '/hang')];
    // One on the connection, one waiting for it.
    await waitFor(() => apps[0]!.seen.requests === 1, 'one request on the one connection');
    await waitFor(
      () => web.outbound.listener('api')!.cluster.endpoints[0]!.inFlight === 2,
      'a second attempt waiting for the connection',
    );
    const r = await get(port, '/');
    expect(r.status).toBe(503);
    expect(r.headers['x-meshctl-reason']).toBe('circuit-open api max-pending 1');
    // The first is answered, then the waiting one gets the connection and is held in turn.
    apps[0]!.release();
    await waitFor(() => apps[0]!.seen.requests === 2, 'the waiting attempt got the connection');
    apps[0]!.release();
    expect((await Promise.all(held)).map((x) => x.status)).toEqual([200, 200]);
  });
});

describe('outlier ejection', () => {
  it('an instance that hangs: its requests time out with 504, then it is ejected and the rest go to the other', async () => {
    const { web, apps, port } = await pair(
      {
        requestTimeoutMs: 300,
        retry: { numRetries: 0 },
        outlier: { consecutiveErrors: 2, baseEjectionTimeMs: 60_000 },
      },
      2,
      ['hang', undefined],
    );
    const replies = [];
    for (let i = 0; i < 12; i++) replies.push(await get(port, '/'));
    const timedOut = replies.filter((r) => r.status === 504);
    // Exactly the two timeouts that eject it; every other request was answered by api-2.
    expect(timedOut.map((r) => r.headers['x-meshctl-reason'])).toEqual([
      'request-timeout api 300ms',
      'request-timeout api 300ms',
    ]);
    expect(replies.filter((r) => r.status === 200).map((r) => r.body)).toEqual(Array(10).fill('api-2'));
    expect(apps[0]!.seen.requests).toBe(2);
    const s = upstreamStats(web);
    expect(s.resilience).toMatchObject({ ejections: 1, ejected: 1, timeouts: 2 });
    expect((s.endpoints as Record<string, { ejected: boolean }>)['api-1']!.ejected).toBe(true);
  });
});
