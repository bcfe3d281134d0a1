/**
 * Real mesh material for the data-plane bench, got the way an agent gets it: a registry made
 * by `init --server`, two nodes that join with the join token, `web` and `api` registered
 * on them, leaves signed by the registry's CA from CSRs made here, and the intention
 * web → api allowed by the admin. The registry is stopped once everything is in hand; the
 * proxies never talk to it anyway.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { distImport } from './dist.mjs';

/**
 * @param {string} dir an empty directory for the registry's data
 * @param {{ webAddress: string, apiAddress: string, apiPort: number, apiMeshPort: number, upstreamPort: number }} layout
 */
export async function meshMaterial(dir, layout) {
  const { initServer } = await distImport('registry/bootstrap.js');
  const { startRegistry } = await distImport('registry/main.js');
  const { RegistryClient } = await distImport('api/registry-client.js');
  const { createKeyAndCsr, nodeId, serviceId } = await distImport('ca/index.js');
  const { silentLogger } = await distImport('util/log.js');

  const dataDir = join(dir, 'registry');
  const init = await initServer({ dataDir, bind: '127.0.0.1:0', defaultIntention: 'deny', advertise: '127.0.0.1' });
  const caPem = await readFile(init.caCertPath, 'utf8');
  const registry = await startRegistry({ dataDir, store: 'memory', log: silentLogger() });
  /** @type {any[]} */
  const clients = [];
  const client = (o) => {
    const c = new RegistryClient({ baseUrl: registry.url, ca: caPem, ...o });
    clients.push(c);
    return c;
  };
  try {
    const admin = client({ token: init.adminToken });
    const td = init.trustDomain;

    const joinNode = async (name, address) => {
      const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(td, name) });
      // Join tokens are single-use and scoped: one per node, allowed to register any service.
      const made = await admin.createToken(`bench node ${name}`, undefined, { anyService: true, uses: 1 });
      const res = await client({ token: made.token }).join({ nodeName: name, address, csr: csrPem });
      const c = client({ cert: res.certificate, key: keyPem });
      await c.heartbeat(name, 3600);
      return c;
    };
    const leafFor = async (nodeClient, service) => {
      const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: serviceId(td, service) });
      const signed = await nodeClient.sign(service, csrPem);
      return { certPem: signed.certificate, keyPem, rootsPem: signed.roots };
    };

    const webNode = await joinNode('bench-web', layout.webAddress);
    const apiNode = await joinNode('bench-api', layout.apiAddress);
    await apiNode.register({
      id: 'api-1',
      name: 'api',
      port: layout.upstreamPort,
      meshPort: layout.apiMeshPort,
      protocol: 'http',
    });
    await webNode.register({
      id: 'web-1',
      name: 'web',
      port: 1,
      protocol: 'http',
      upstreams: [{ service: 'api', localPort: layout.apiPort }],
    });
    const web = await leafFor(webNode, 'web');
    const api = await leafFor(apiNode, 'api');
    await admin.putIntention('web', 'api', 'allow', 'benchmark');
    const { intentions, defaultAction } = await admin.intentions();
    return {
      trustDomain: td,
      caPem,
      web,
      api,
      defaultIntention: defaultAction,
      intentions: intentions.map((i) => ({ source: i.source, destination: i.destination, action: i.action })),
    };
  } finally {
    for (const c of clients) c.close();
    await registry.close();
  }
}
