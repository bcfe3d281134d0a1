/**
 * Faults of the network, on hosts in their own network namespaces (root): packet loss on an
 * api host (iptables `statistic`), and a host cut off (link down) and back. The mesh is
 * test/agent/netns.e2e.test.ts's, from startNetnsMesh (test/helpers/netns.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { recordAndCheck, recordFault } from './record.js';
import { leftovers, netnsAvailable, startNetnsMesh, type NetnsMesh } from '../helpers/netns.js';
import { eventually } from '../helpers/registry.js';

const canRun = await netnsAvailable();
if (!canRun)
  for (const scenario of ['packet loss (iptables statistic in a netns)', 'host cut off (netns, link down)'])
    recordFault({
      scenario,
      load: '—',
      fault: '—',
      sent: 0,
      failed: 0,
      lostWrites: '—',
      expected: '—',
      result: 'PENDING: needs root and network namespaces',
    });

describe.skipIf(!canRun)('network faults in namespaces', () => {
  let mesh: NetnsMesh;
  const net = () => mesh.net;
  const probe: NetnsMesh['probe'] = (host, count) => mesh.probe(host, count);
  const admin: NetnsMesh['admin'] = (args) => mesh.admin(args);

  beforeAll(async () => {
    mesh = await startNetnsMesh();
  }, 180_000);

  afterAll(async () => {
    await mesh?.close();
  });

  const count = (p: { statuses: Record<string, number> }) =>
    Object.entries(p.statuses).reduce((a, [s, n]) => (s === '200' ? a : a + n), 0);

  it('packet loss: 10 % of packets to an api host dropped; requests still succeed', async () => {
    await eventually(
      async () => {
        const p = await probe(net().hosts[mesh.W]!, 10);
        return p.statuses['200'] === 10 && p.apps['api-host-a'] && p.apps['api-host-b'];
      },
      { what: 'both api hosts answer', timeoutMs: 60_000 },
    );
    const ns = net().hosts[mesh.A]!.ns;
    const rule = ['INPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.1', '-j', 'DROP'];
    await execa('ip', ['netns', 'exec', ns, 'iptables', '-A', ...rule]);
    let p;
    try {
      p = await probe(net().hosts[mesh.W]!, 200);
    } finally {
      await execa('ip', ['netns', 'exec', ns, 'iptables', '-D', ...rule]);
    }
    const failed = count(p);
    recordAndCheck(
      {
        scenario: 'packet loss (iptables statistic in a netns)',
        load: '200 GET one after another (5 s timeout each)',
        fault: `10 % of packets into api host-a dropped; answers: ${JSON.stringify(p.statuses)}, by app ${JSON.stringify(p.apps)}`,
        sent: 200,
        failed,
        lostWrites: '—',
        expected: 'requests succeed within their timeouts: 0 failed',
      },
      failed === 0,
      JSON.stringify(p.statuses),
    );
  });

  it('host cut off: its lease expires, callers fail over; back online it re-registers without duplicates', async () => {
    await net().cutOff(net().hosts[mesh.A]!);
    let during = { statuses: {} as Record<string, number>, apps: {} as Record<string, number> };
    let sent = 0;
    let failed = 0;
    try {
      // Until the lease runs out and web's sidecar drops host-a, calls may meet it; count every one.
      await eventually(
        async () => {
          const p = await probe(net().hosts[mesh.W]!, 6);
          sent += 6;
          failed += count(p);
          during = p;
          return p.statuses['200'] === 6 && p.apps['api-host-b'] === 6;
        },
        { what: 'traffic only to host-b', timeoutMs: 60_000 },
      );
    } finally {
      await net().reconnect(net().hosts[mesh.A]!);
    }
    await eventually(
      async () => {
        const p = await probe(net().hosts[mesh.W]!, 10);
        return p.apps['api-host-a'] && p.apps['api-host-b'];
      },
      { what: 'host-a back', timeoutMs: 60_000 },
    );
    const inst = JSON.parse((await admin(['catalog', 'instances', 'api', '--json'])).stdout) as {
      instances: Array<{ node: string; id: string }>;
    };
    const keys = inst.instances.map((i) => `${i.id}@${i.node}`);
    const dupes = keys.length - new Set(keys).size;
    recordAndCheck(
      {
        scenario: 'host cut off (netns, link down)',
        load: 'GETs in rounds of 6 until only host-b answers',
        fault: `link of api host-a down until its lease expired, then up; last round ${JSON.stringify(during.apps)}; instances after: ${keys.join(', ')}`,
        sent,
        failed,
        lostWrites: '—',
        expected:
          'callers move to host-b by the lease expiry (requests caught on host-a before that are counted); back online: 2 instances, no duplicate',
      },
      dupes === 0 && keys.length === 2,
      `failed ${failed}, duplicates ${dupes}`,
    );
  });

  it('leaves no namespace, link or process behind', async () => {
    const id = net().id;
    await mesh.close();
    expect(await leftovers(id)).toEqual([]);
  });
});
