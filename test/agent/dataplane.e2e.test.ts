import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentProxies, startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';
import { HOSTS } from '../helpers/hosts.js';

const [HOST_A, HOST_B, HOST_C] = HOSTS.dataplane;

interface Answer {
  status: number;
  reason: string | undefined;
  app: string | undefined;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function get(port: number, path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let app: string | undefined;
        try {
          app = (JSON.parse(body) as { app?: string }).app;
        } catch {
          app = undefined;
        }
        resolve({ status: res.statusCode ?? 0, reason: res.headers['x-meshctl-reason'] as string | undefined, app });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A steady request loop for the duration of `during`; returns every answer. */
async function underLoad(port: number, during: () => Promise<void>): Promise<Answer[]> {
  const answers: Answer[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 5000; i++) {
      answers.push(await get(port).catch((e: Error) => ({ status: 0, reason: e.message, app: undefined })));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await during();
  } finally {
    running = false;
    await loop;
  }
  return answers;
}

describe('data plane: sidecars with mTLS, discovery, load balancing and intentions (three loopback hosts)', () => {
  let mesh: TestMesh;
  let a: MeshAgent;
  let b: MeshAgent;
  let c: MeshAgent;
  let apiA: TestApp;
  let apiB: TestApp;
  const UP = 18000 + Math.floor(Math.random() * 1000);

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'deny', leaseTtl: '5s' });
    a = await mesh.addAgent('host-a', HOST_A);
    b = await mesh.addAgent('host-b', HOST_B);
    c = await mesh.addAgent('host-c', HOST_C);
    apiA = await startApp('api-a', HOST_A);
    apiB = await startApp('api-b', HOST_B);
    for (const [ag, app] of [
      [a, apiA],
      [b, apiB],
    ] as const) {
      await ag.register({
        name: 'api',
        port: app.port,
        address: app.address,
        protocol: 'http',
        extra: ['--check', `http://${app.address}:${app.port}/`, '--interval', '300ms'],
      });
    }
    await c.register({
      name: 'web',
      port: 9300,
      address: HOST_C,
      protocol: 'http',
      upstreams: [`api:${UP}`],
      meta: { 'access-log': 'on' },
    });
    // The sidecar is up once the mesh answers for itself (403 under default deny).
    await eventually(async () => (await get(UP)).reason === 'default-deny web -> api', {
      what: 'web sidecar serving',
      timeoutMs: 30_000,
    });
  });
  afterAll(async () => {
    agent.destroy();
    await apiA?.stop();
    await apiB?.stop();
    await mesh?.close();
  });

  it('denies by default with 403 and the reason; allows after an intention; denies again after delete', async () => {
    const denied = await get(UP);
    expect(denied).toMatchObject({ status: 403, reason: 'default-deny web -> api' });
    expect((await mesh.admin(['intention', 'allow', 'web', 'api'])).exitCode).toBe(0);
    await eventually(async () => (await get(UP)).status === 200, { what: 'allow reaches the proxies' });
    expect((await mesh.admin(['intention', 'delete', 'web', 'api'])).exitCode).toBe(0);
    await eventually(async () => (await get(UP)).status === 403, { what: 'delete reaches the proxies' });
    expect((await get(UP)).reason).toBe('default-deny web -> api');
    // An intention that denies the pair is named as such, not as the default.
    expect((await mesh.admin(['intention', 'deny', 'web', 'api'])).exitCode).toBe(0);
    await eventually(async () => (await get(UP)).reason === 'intention-deny web -> api', {
      what: 'the deny intention reaches the proxies',
    });
    await mesh.admin(['intention', 'allow', 'web', 'api']);
    await eventually(async () => (await get(UP)).status === 200, { what: 'allowed again' });
  });

  it('reaches both api instances in turn', async () => {
    await eventually(
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++) seen.add((await get(UP)).app ?? '');
        return seen.has('api-a') && seen.has('api-b');
      },
      { what: 'both instances answer' },
    );
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await get(UP)).app ?? '');
    expect(order[0]).not.toBe(order[1]);
    expect(order[1]).not.toBe(order[2]);
  });

  it("writes JSON access lines for a service that asks, and carries the caller's traceparent to the app", async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const seen = await new Promise<{ status: number; headers: Record<string, string> }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: UP, path: '/traced', headers: { traceparent }, agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: (JSON.parse(body) as { headers: Record<string, string> }).headers,
            }),
          );
        })
        .on('error', reject);
    });
    expect(seen.status).toBe(200);
    expect(seen.headers.traceparent).toBe(traceparent);
    const file = join(c.dataDir, 'logs', 'web.access.log');
    const line = await eventually(
      async () => {
        const text = await readFile(file, 'utf8').catch(() => '');
        return text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.path === '/traced');
      },
      { what: 'access log line' },
    );
    expect(line).toMatchObject({
      direction: 'outbound',
      source: 'web',
      destination: 'api',
      method: 'GET',
      status: 200,
      traceparent,
    });
    for (const k of ['time', 'durationMs', 'bytesIn', 'bytesOut', 'endpoint']) expect(line).toHaveProperty(k);
  });

  it('speaks only mTLS on a mesh port: plaintext and certificate-less TLS are refused', async () => {
    const meshPort = (
      await mesh.adminJson<{ instances: Array<{ node: string; meshPort: number }> }>(['catalog', 'instances', 'api'])
    ).instances.find((i) => i.node === 'host-a')!.meshPort;
    const plain = await new Promise<string>((resolve) => {
      const s = net.connect(meshPort, HOST_A, () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.setTimeout(3000, () => s.destroy());
    });
    expect(plain).not.toMatch(/HTTP\/1\.1 200/);
    const noCert = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: HOST_A, port: meshPort, rejectUnauthorized: false }, () =>
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', (e) => resolve(`error: ${e.message}`));
      s.setTimeout(3000, () => s.destroy());
    });
    expect(noCert).not.toMatch(/200/);
    const proto = await new Promise<string | null>((resolve) => {
      const s = tls.connect({ host: HOST_A, port: meshPort, rejectUnauthorized: false }, () => {
        resolve(s.getProtocol());
        s.destroy();
      });
      s.on('error', () => resolve(null));
    });
    expect(proto).toBe('TLSv1.3');
  });

  it('keeps answering when one app stops, and says 503 with the reason when both are down', async () => {
    await apiA.stop();
    await eventually(
      async () => {
        const r = await Promise.all([get(UP), get(UP), get(UP)]);
        return r.every((x) => x.status === 200 && x.app === 'api-b');
      },
      { what: 'only api-b serves' },
    );
    await apiB.stop();
    await eventually(
      async () => {
        const r = await get(UP);
        return r.status === 503 && r.reason === 'no-healthy-endpoints api';
      },
      { what: '503 no healthy endpoints' },
    );
    await apiA.start();
    await apiB.start();
    await eventually(
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++) seen.add((await get(UP)).app ?? '');
        return seen.has('api-a') && seen.has('api-b');
      },
      { what: 'both back' },
    );
  });

  it('fails static: kill -9 of the registry, then of the agent, under a steady loop: no failed request', async () => {
    const answers = await underLoad(UP, async () => {
      await mesh.stopRegistry('SIGKILL');
      await new Promise((r) => setTimeout(r, 1500));
      await c.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 1500));
      await c.start();
      await mesh.startRegistry();
      await new Promise((r) => setTimeout(r, 1500));
    });
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((x) => x.status !== 200)).toEqual([]);
  });

  it('a restarted agent adopts its running proxy instead of launching a new one', async () => {
    const before = JSON.parse((await c.cli(['agent', 'info', '--json'])).stdout) as { node: string };
    expect(before.node).toBe('host-c');
    const proxies = await agentProxies(c.socket);
    expect(proxies).toHaveLength(1);
    expect(proxies[0]!.info.adopted).toBe(true);
  });
});
