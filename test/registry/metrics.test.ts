import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as hdr from 'hdr-histogram-js';
import { MetricsHub } from '../../src/registry/metrics.js';
import type { NodeMetricsReport, TrafficCounters } from '../../src/api/metrics.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

function counters(requests: number, fiveXx: number, latenciesUs: number[]): TrafficCounters {
  const h = hdr.build();
  for (const v of latenciesUs) h.recordValue(v);
  return {
    requests,
    responses: { '2xx': requests - fiveXx, '5xx': fiveXx },
    meshErrors: {},
    activeConnections: 1,
    totalConnections: 1,
    bytesIn: 0,
    bytesOut: 0,
    latency: hdr.encodeIntoCompressedBase64(h),
  };
}

function report(node: string, inbound: TrafficCounters): NodeMetricsReport {
  return {
    sampledAt: 0,
    proxies: [{ service: 'api', serviceId: 'api', node, inbound: { ...inbound, tlsFailures: {} }, upstreams: [] }],
  };
}

describe('metrics hub', () => {
  it('computes rate, success rate and percentiles over the window from cumulative reports, summed across nodes', () => {
    let now = 1_000_000;
    const hub = new MetricsHub(() => now);
    hub.ingest('a', report('a', counters(100, 0, Array(100).fill(1000))));
    hub.ingest('b', report('b', counters(0, 0, [])));
    now += 5000;
    // In 5 s: node a served 100 more (latency 2 ms), node b 50 with 5 failures (latency 10 ms).
    hub.ingest('a', report('a', counters(200, 0, [...Array(100).fill(1000), ...Array(100).fill(2000)])));
    hub.ingest('b', report('b', counters(50, 5, Array(50).fill(10_000))));
    const svc = hub.overview().services.find((s) => s.name === 'api')!;
    expect(svc.rps).toBe(30);
    expect(svc.successRate).toBeCloseTo(145 / 150, 5);
    expect(svc.p50Ms).toBeCloseTo(2, 1);
    expect(svc.p99Ms).toBeCloseTo(10, 0);
    expect(svc.instances.map((i) => [i.node, i.rps])).toEqual([
      ['a', 20],
      ['b', 10],
    ]);
  });

  it('forgets a node that stopped reporting, and treats a counter reset as a restart', () => {
    let now = 0;
    const hub = new MetricsHub(() => now);
    hub.ingest('a', report('a', counters(1000, 0, [])));
    now += 2000;
    hub.ingest('a', report('a', counters(10, 0, [])));
    expect(hub.overview().services[0]!.rps).toBe(5);
    now += 60_000;
    expect(hub.overview().services).toEqual([]);
  });
});

describe('metrics API', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it("takes a node's report and serves the overview; refuses another node's and malformed reports", async () => {
    const { client } = await t.joinNode('host-m');
    await client.reportMetrics('host-m', report('host-m', counters(10, 0, [500])));
    const o = await t.admin.metricsOverview();
    expect(o.services.map((s) => s.name)).toEqual(['api']);
    await expect(client.reportMetrics('host-x', report('host-x', counters(1, 0, [])))).rejects.toMatchObject({
      code: 'MESH_ERR_FORBIDDEN',
    });
    await expect(
      client.reportMetrics('host-m', { sampledAt: 0, proxies: [{ nope: true }] } as unknown as NodeMetricsReport),
    ).rejects.toMatchObject({ code: 'MESH_ERR_BAD_REQUEST' });
  });
});
