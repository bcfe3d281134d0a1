import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftovers, netnsAvailable, startNetnsMesh, type NetnsMesh } from '../helpers/netns.js';
import { eventually } from '../helpers/registry.js';

const canRun = await netnsAvailable();

describe.skipIf(!canRun)('hosts in network namespaces (root): discovery and failover when a host is cut off', () => {
  let mesh: NetnsMesh;
  const net = () => mesh.net;
  const probe: NetnsMesh['probe'] = (host, count) => mesh.probe(host, count);

  beforeAll(async () => {
    mesh = await startNetnsMesh();
  }, 180_000);

  afterAll(async () => {
    await mesh?.close();
  });

  it('reaches both api hosts across the bridge, over mTLS', async () => {
    const res = await eventually(
      async () => {
        const p = await probe(net().hosts[mesh.W]!, 10);
        return p.statuses['200'] === 10 && p.apps['api-host-a'] && p.apps['api-host-b'] ? p : undefined;
      },
      { what: 'both api hosts answer', timeoutMs: 60_000 },
    );
    expect(res.statuses['200']).toBe(10);
  });

  it('routes around a host that is cut off (link down), and takes it back when it returns', async () => {
    await net().cutOff(net().hosts[mesh.A]!);
    // Its lease runs out and web's sidecar drops the endpoint: then every request succeeds on B.
    await eventually(
      async () => {
        const p = await probe(net().hosts[mesh.W]!, 6);
        return p.statuses['200'] === 6 && p.apps['api-host-b'] === 6;
      },
      { what: 'traffic only to host-b', timeoutMs: 60_000 },
    );
    await net().reconnect(net().hosts[mesh.A]!);
    await eventually(
      async () => {
        const p = await probe(net().hosts[mesh.W]!, 10);
        return p.apps['api-host-a'] && p.apps['api-host-b'];
      },
      { what: 'host-a back', timeoutMs: 60_000 },
    );
  });

  it('leaves no namespace, link or process behind', async () => {
    const id = net().id;
    await mesh.close();
    expect(await leftovers(id)).toEqual([]);
  });
});
