/**
 * Revocation reaching the sidecars, with real agents on loopback: after `meshctl node remove
 * nodex`, a leaf the CA issued to nodex — still in date and chaining to the mesh root — is
 * refused at another node's sidecar within seconds, and a connection nodex had open with it
 * is closed. The test plays the attacker holding nodex's disk: it dials api's mesh port
 * directly with the leaf the nodex agent stored.
 *
 * Node certificates here live 2 minutes, so the agents renew them (at half-life, as leaves)
 * while the test runs: removal must revoke the renewed certificate and the one before alike.
 */
import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTS } from '../helpers/hosts.js';
import { agentProxies, startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { rawRequest } from '../helpers/https.js';
import { eventually } from '../helpers/registry.js';
import { CLOCK_SKEW_MS } from '../../src/ca/renewal.js';

const [HOST_A, HOST_X] = HOSTS.revocation;

interface InboundStats {
  refusals: Record<string, number>;
  revoked: Record<string, number>;
}

/** The inbound stats of the agent's one sidecar, from its admin socket. */
async function sidecarInbound(agent: MeshAgent): Promise<InboundStats> {
  return (await agentProxies(agent.socket))[0]!.stats.inbound as InboundStats;
}

interface Dialled {
  socket: tls.TLSSocket;
  /** The status line of the answer to one request, or '' when the connection closed first. */
  status: Promise<string>;
}

/** A mesh connection to `port` with `leaf` as client certificate, sending one keep-alive request. */
function dial(port: number, leaf: { certPem: string; keyPem: string; rootPem: string }): Dialled {
  const socket = tls.connect({
    host: HOST_A,
    port,
    ca: [leaf.rootPem],
    cert: leaf.certPem,
    key: leaf.keyPem,
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => undefined);
  const status = new Promise<string>((resolve) => {
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) resolve(data.split('\r\n')[0]!);
    });
    socket.once('close', () => resolve(''));
  });
  socket.once('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: api\r\n\r\n'));
  return { socket, status };
}

describe("revocation reaches the sidecars: a removed node's leaves are refused at once", () => {
  let mesh: TestMesh;
  let a: MeshAgent;
  let x: MeshAgent;
  let api: TestApp;
  let meshPort: number;
  let stolen: { certPem: string; keyPem: string; rootPem: string };
  const UP = 18000 + Math.floor(Math.random() * 1000);

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'deny', leaseTtl: '5s', nodeCertTtl: '2m' });
    a = await mesh.addAgent('host-a', HOST_A, { services: ['api'] });
    x = await mesh.addAgent('nodex', HOST_X, { services: ['web'] });
    api = await startApp('api-a', HOST_A);
    await a.register({ name: 'api', port: api.port, address: HOST_A, protocol: 'http' });
    await x.register({ name: 'web', port: 9300, address: HOST_X, protocol: 'http', upstreams: [`api:${UP}`] });
    expect((await mesh.admin(['intention', 'allow', 'web', 'api'])).exitCode).toBe(0);
    meshPort = await eventually(
      async () =>
        (
          await mesh.adminJson<{ instances: Array<{ node: string; meshPort?: number }> }>([
            'catalog',
            'instances',
            'api',
          ])
        ).instances.find((i) => i.node === 'host-a')?.meshPort,
      { what: "api's mesh port", timeoutMs: 30_000 },
    );
    // What an attacker with nodex's disk has: the web leaf the registry issued to nodex.
    const servicesDir = join(x.dataDir, 'services');
    stolen = await eventually(
      async () => {
        for (const id of await readdir(servicesDir).catch(() => [] as string[])) {
          const d = join(servicesDir, id);
          const [certPem, keyPem, rootPem] = await Promise.all(
            ['leaf.pem', 'leaf.key', 'roots.pem'].map((f) => readFile(join(d, f), 'utf8').catch(() => '')),
          );
          if (certPem && keyPem && rootPem) return { certPem, keyPem, rootPem };
        }
        return undefined;
      },
      { what: "nodex's web leaf on disk", timeoutMs: 30_000 },
    );
    // The sidecar on host-a lets it in while nodex is a member (its snapshot has the intention).
    await eventually(
      async () => {
        const probe = dial(meshPort, stolen);
        const status = await probe.status;
        probe.socket.destroy();
        return status === 'HTTP/1.1 200 OK';
      },
      {
        what: "nodex's leaf accepted at api's sidecar before the removal",
        timeoutMs: 30_000,
      },
    );
  });

  afterAll(async () => {
    await api?.stop();
    await mesh?.close();
  });

  /** The node certificate and key an agent holds now. */
  async function nodeCredentials(agent: MeshAgent): Promise<{ cert: string; key: string; serial: string }> {
    const [cert, key] = await Promise.all(
      ['node.pem', 'node.key'].map((f) => readFile(join(agent.dataDir, 'tls', f), 'utf8')),
    );
    return { cert: cert!, key: key!, serial: new X509Certificate(cert!).serialNumber };
  }

  /** A registry read with a node certificate: 200, or 401 once it is revoked. */
  async function registryAs(creds: { cert: string; key: string }, node: string) {
    return rawRequest(mesh.registryUrl, {
      path: `/v1/nodes/${node}`,
      ca: stolen.rootPem,
      cert: creds.cert,
      key: creds.key,
    });
  }

  let nodexBefore: { cert: string; key: string; serial: string };

  it('renews the node certificates at half-life: a new serial, and the registry takes it', async () => {
    nodexBefore = await nodeCredentials(x);
    const first = new X509Certificate(nodexBefore.cert);
    const lifetime = Date.parse(first.validTo) - Date.parse(first.validFrom);
    // 2 minutes, with NotBefore backdated for clock skew.
    expect(lifetime).toBeLessThanOrEqual(2 * 60_000 + CLOCK_SKEW_MS);
    const renewed = await eventually(
      async () => {
        const now = await nodeCredentials(x);
        return now.serial !== nodexBefore.serial ? now : undefined;
      },
      { what: "nodex's node certificate renewed", timeoutMs: 150_000, intervalMs: 1000 },
    );
    expect((await registryAs(renewed, 'nodex')).status).toBe(200);
    // The one before is still valid by date: until the node is removed it is nodex's too.
    expect((await registryAs(nodexBefore, 'nodex')).status).toBe(200);
  }, 180_000);

  it('refuses the leaf on new connections and closes the open one, within seconds of node remove', async () => {
    const open = dial(meshPort, stolen);
    expect(await open.status).toBe('HTTP/1.1 200 OK');

    const removed = await mesh.admin(['node', 'remove', 'nodex']);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/Removed node nodex: deregistered, [1-9]\d* certificates? revoked/);

    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the open connection was not closed within 10 s')), 10_000);
      open.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (open.socket.destroyed) resolve();
    });
    expect(await dial(meshPort, stolen).status).toBe('');
    const stats = await sidecarInbound(a);
    expect(stats.revoked['revoked-certificate']).toBe(1);
    expect(stats.refusals['revoked-certificate']).toBeGreaterThanOrEqual(1);

    // Both of nodex's node certificates, the renewed one and the one before, are refused.
    for (const creds of [await nodeCredentials(x), nodexBefore]) {
      const r = await registryAs(creds, 'nodex');
      expect(r.status).toBe(401);
      expect(r.body.message).toMatch(/the certificate of node 'nodex' \(serial [0-9A-F]+\) has been revoked/);
    }
  });
});
