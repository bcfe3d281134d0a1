import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';
import { HOSTS } from '../helpers/hosts.js';
import { CLOCK_SKEW_MS } from '../../src/ca/renewal.js';

const [HOST_A, HOST_B] = HOSTS.rotation;

/** The certificate a mesh port presents to a new handshake (read before the client-certificate check refuses us). */
function presentedSerial(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

/** The leaf the agent keeps on disk for its only service. */
async function storedLeaf(agent: MeshAgent): Promise<X509Certificate> {
  const dir = join(agent.dataDir, 'services');
  const [id] = await readdir(dir);
  return new X509Certificate(await readFile(join(dir, id!, 'leaf.pem'), 'utf8'));
}

describe('leaf rotation through the agents (service certificates of 2 minutes)', () => {
  let mesh: TestMesh;
  let a: MeshAgent;
  let c: MeshAgent;
  let app: TestApp;
  const UP = 19000 + Math.floor(Math.random() * 1000);
  // One connection from the app to its sidecar for the whole test: keep-alive, never two at once.
  const appAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  function get(): Promise<{ status: number; reused: boolean }> {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: UP, path: '/', agent: appAgent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ status: 0, reused: req.reusedSocket }));
    });
  }

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'allow', leafTtl: '2m' });
    a = await mesh.addAgent('rot-a', HOST_A);
    c = await mesh.addAgent('rot-c', HOST_B);
    app = await startApp('api-rot', HOST_A);
    await a.register({ name: 'api', port: app.port, address: app.address, protocol: 'http' });
    await c.register({ name: 'web', port: 9400, address: HOST_B, protocol: 'http', upstreams: [`api:${UP}`] });
    await eventually(async () => (await get()).status === 200, {
      what: 'web → api through the sidecars',
      timeoutMs: 30_000,
    });
  });
  afterAll(async () => {
    appAgent.destroy();
    await app?.stop();
    await mesh?.close();
  });

  it('renews both leaves at half-life under a steady keep-alive loop: no failed request, new handshakes present the new certificate', async () => {
    const meshPort = (await mesh.adminJson<{ instances: Array<{ meshPort: number }> }>(['catalog', 'instances', 'api']))
      .instances[0]!.meshPort;
    const apiBefore = await storedLeaf(a);
    const webBefore = await storedLeaf(c);
    // 2 minutes from issue, NotBefore backdated two more (clock skew): renewed a minute after it
    // was issued (half-life counts from the issue, src/ca/renewal.ts).
    expect(Date.parse(apiBefore.validTo) - Date.parse(apiBefore.validFrom)).toBe(120_000 + CLOCK_SKEW_MS);
    expect(await presentedSerial(HOST_A, meshPort)).toBe(apiBefore.serialNumber);

    const answers: Array<{ status: number; reused: boolean }> = [];
    let running = true;
    const loop = (async () => {
      for (let i = 0; running && i < 4000; i++) {
        answers.push(await get());
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    try {
      await eventually(
        async () =>
          (await storedLeaf(a)).serialNumber !== apiBefore.serialNumber &&
          (await storedLeaf(c)).serialNumber !== webBefore.serialNumber,
        { what: 'both agents renewed their leaf', timeoutMs: 100_000, intervalMs: 500 },
      );
      // The sidecar takes the new leaf from the agent's push: the next handshake shows it.
      await eventually(
        async () => {
          const presented = await presentedSerial(HOST_A, meshPort);
          return presented !== apiBefore.serialNumber && presented === (await storedLeaf(a)).serialNumber;
        },
        { what: 'api sidecar presenting the renewed leaf', timeoutMs: 20_000, intervalMs: 250 },
      );
      // A little traffic after the switch, over the same connections.
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      running = false;
      await loop;
    }
    expect(answers.length).toBeGreaterThan(50);
    expect(answers.filter((x) => x.status !== 200)).toEqual([]);
    // Every request after the first went over the one keep-alive connection of the app.
    expect(answers.slice(1).every((x) => x.reused)).toBe(true);
  }, 150_000);
});
