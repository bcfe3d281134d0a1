import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as hdr from 'hdr-histogram-js';
import { MetricsHub } from '../../src/registry/metrics.js';
import type { NodeMetricsReport, ResilienceCounters, TrafficCounters } from '../../src/api/metrics.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

function counters(
  requests: number,
  fiveXx: number,
  latenciesUs: number[],
  over: Partial<TrafficCounters> = {},
): TrafficCounters {
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
    ...over,
  };
}

const idle = () => counters(0, 0, []);

/** A host running `api` only (its inbound side). */
function report(node: string, inbound: TrafficCounters): NodeMetricsReport {
  return {
    sampledAt: 0,
    proxies: [{ service: 'api', serviceId: 'api', node, inbound: { ...inbound, tlsFailures: {} }, upstreams: [] }],
  };
}

/** A host running `web`, calling api: the upstream total, and attempts per api endpoint. */
function caller(
  node: string,
  toApi: TrafficCounters,
  endpoints: Array<{ node: string; c: TrafficCounters }> = [],
): NodeMetricsReport {
  return {
    sampledAt: 0,
    proxies: [
      {
        service: 'web',
        serviceId: 'web',
        node,
        inbound: { ...idle(), tlsFailures: {} },
        upstreams: [
          {
            service: 'api',
            ...toApi,
            endpoints: endpoints.map((e) => ({ endpoint: `api.${e.node}`, node: e.node, ...e.c })),
          },
        ],
      },
    ],
  };
}

/** A caller's report with resilience totals on its upstream api. */
function resilient(node: string, r: ResilienceCounters): NodeMetricsReport {
  const rep = caller(node, idle());
  rep.proxies[0]!.upstreams[0]!.resilience = r;
  return rep;
}

const totals = (over: Partial<ResilienceCounters> = {}): ResilienceCounters => ({
  retries: 0,
  retryBudgetExhausted: 0,
  timeouts: 0,
  circuitOpen: {},
  ejections: 0,
  ejected: 0,
  ...over,
});

describe('metrics hub', () => {
  it("carries callers' resilience per window: differences of the totals summed over callers, ejected as a gauge", () => {
    let now = 1_000_000;
    const hub = new MetricsHub(() => now);
    hub.ingest('w1', resilient('w1', totals({ retries: 100, timeouts: 7, circuitOpen: { 'max-requests': 50 } })));
    hub.ingest('w2', resilient('w2', totals({ ejections: 3, ejected: 0 })));
    now += 5000;
    hub.ingest(
      'w1',
      resilient('w1', totals({ retries: 112, timeouts: 9, circuitOpen: { 'max-requests': 54, 'max-retries': 1 } })),
    );
    hub.ingest('w2', resilient('w2', totals({ retries: 1, ejections: 4, ejected: 1 })));
    const o = hub.overview();
    const api = o.services.find((s) => s.name === 'api')!;
    expect(api.resilience).toEqual({
      retries: 13,
      retryBudgetExhausted: 0,
      timeouts: 2,
      circuitOpen: { 'max-requests': 4, 'max-retries': 1 },
      ejections: 1,
      ejected: 1,
    });
    // The caller's own view of its upstream: both callers are `web` on two nodes.
    expect(o.services.find((s) => s.name === 'web')!.upstreams[0]!.resilience).toEqual(api.resilience);
    // A service nobody's resilience touched carries zeros, not nothing.
    expect(o.services.find((s) => s.name === 'web')!.resilience).toEqual(totals());
    // A sidecar that restarted (totals went down) counts its new totals, never a negative; the
    // other's window still reaches back to the first sample (10 s): 1 retry, 1 ejection.
    now += 5000;
    hub.ingest('w1', resilient('w1', totals({ retries: 2 })));
    hub.ingest('w2', resilient('w2', totals({ retries: 1, ejections: 4, ejected: 0 })));
    expect(hub.overview().services.find((s) => s.name === 'api')!.resilience).toMatchObject({
      retries: 3,
      ejections: 1,
      ejected: 0,
    });
  });

  it("computes a service's rate, success and percentiles from its callers' figures over the window, summed across callers", () => {
    let now = 1_000_000;
    const hub = new MetricsHub(() => now);
    hub.ingest('w1', caller('w1', counters(100, 0, Array(100).fill(1000))));
    hub.ingest('w2', caller('w2', idle()));
    now += 5000;
    // In 5 s: caller w1 sent 100 more (2 ms), caller w2 50 with 5 failures (10 ms).
    hub.ingest('w1', caller('w1', counters(200, 0, [...Array(100).fill(1000), ...Array(100).fill(2000)])));
    hub.ingest('w2', caller('w2', counters(50, 5, Array(50).fill(10_000))));
    const api = hub.overview().services.find((s) => s.name === 'api')!;
    expect(api.rps).toBe(30);
    expect(api.requests).toBe(150);
    expect(api.failed).toBe(5);
    expect(api.callers).toBe(2);
    expect(api.successRate).toBeCloseTo(145 / 150, 5);
    expect(api.p50Ms).toBeCloseTo(2, 1);
    expect(api.p99Ms).toBeCloseTo(10, 0);
    // web itself has no callers: no request figures, whatever its own inbound counted.
    const web = hub.overview().services.find((s) => s.name === 'web')!;
    expect([web.rps, web.successRate, web.callers]).toEqual([0, null, 0]);
  });

  it("takes no request figures from the service's own inbound: connections and bytes only", () => {
    let now = 0;
    const hub = new MetricsHub(() => now);
    hub.ingest('a', report('a', counters(0, 0, [], { bytesIn: 0, bytesOut: 0 })));
    now += 2000;
    // A byte-pipe inbound counts connections as requests; a parsing one counted app-unavailable: neither matters.
    hub.ingest(
      'a',
      report(
        'a',
        counters(40, 40, [5000], {
          activeConnections: 3,
          bytesIn: 4000,
          bytesOut: 8000,
          meshErrors: { 'app-unavailable': 9 },
        }),
      ),
    );
    const api = hub.overview().services.find((s) => s.name === 'api')!;
    expect([api.rps, api.successRate, api.requests, api.callers]).toEqual([0, null, 0, 0]);
    expect(api.activeConnections).toBe(3);
    expect([api.bytesInPerSec, api.bytesOutPerSec]).toEqual([2000, 4000]);
    expect(api.instances).toEqual([
      expect.objectContaining({ node: 'a', serviceId: 'api', attempts: 0, activeConnections: 3 }),
    ]);
  });

  it('counts a failed-over attempt as a failure of the instance, never of the service', () => {
    let now = 0;
    const hub = new MetricsHub(() => now);
    hub.ingest(
      'w',
      caller('w', idle(), [
        { node: 'a', c: idle() },
        { node: 'b', c: idle() },
      ]),
    );
    now += 10_000;
    // 100 requests, all answered in the end; 20 first tried api@b, whose app was down, and failed over to api@a.
    const failedOver = counters(20, 0, [], { responses: {}, meshErrors: { 'app-unavailable': 20 } });
    hub.ingest(
      'w',
      caller('w', counters(100, 0, [1000]), [
        { node: 'a', c: counters(100, 0, [1000]) },
        { node: 'b', c: failedOver },
      ]),
    );
    const api = hub.overview().services.find((s) => s.name === 'api')!;
    expect(api.successRate).toBe(1);
    expect(api.failed).toBe(0);
    expect(api.meshErrors).toEqual({});
    const byNode = Object.fromEntries(api.instances.map((i) => [i.node, [i.attempts, i.failed, i.successRate]]));
    expect(byNode).toEqual({ a: [100, 0, 1], b: [20, 20, 0] });
    const up = hub.overview().services.find((s) => s.name === 'web')!.upstreams[0]!;
    expect(up.endpoints.map((e) => [e.endpoint, e.node, e.successRate])).toEqual([
      ['api', 'a', 1],
      ['api', 'b', 0],
    ]);
  });

  it("shows a service with no healthy instance failing as its callers saw it, with the mesh's reasons", () => {
    let now = 0;
    const hub = new MetricsHub(() => now);
    hub.ingest('w', caller('w', idle()));
    now += 10_000;
    hub.ingest(
      'w',
      caller('w', counters(133, 0, [200], { responses: {}, meshErrors: { 'no-healthy-endpoints': 133 } })),
    );
    const api = hub.overview().services.find((s) => s.name === 'api')!;
    expect([api.requests, api.failed, api.successRate]).toEqual([133, 133, 0]);
    expect(api.meshErrors).toEqual({ 'no-healthy-endpoints': 133 });
  });

  it('compares the subsets of a traffic policy: per subset once per request, per instance across subsets', () => {
    let now = 1_000_000;
    const hub = new MetricsHub(() => now);
    const withPolicy = (v1: TrafficCounters, v2: TrafficCounters): NodeMetricsReport => {
      const r = caller('w1', counters(v1.requests + v2.requests, v1.responses['5xx']! + v2.responses['5xx']!, []), []);
      r.proxies[0]!.upstreams[0]!.endpoints = [
        { endpoint: 'api.h1', node: 'h1', subset: 'api/v1', ...v1 },
        { endpoint: 'api.h2', node: 'h2', subset: 'api/v2', ...v2 },
      ];
      r.proxies[0]!.upstreams[0]!.subsets = [
        { subset: 'api/v1', ...v1 },
        { subset: 'api/v2', ...v2 },
      ];
      return r;
    };
    hub.ingest('w1', withPolicy(idle(), idle()));
    now += 10_000;
    // In 10 s: 900 to v1 (all fine), 100 to v2 of which 20 failed.
    hub.ingest('w1', withPolicy(counters(900, 0, Array(900).fill(1000)), counters(100, 20, Array(100).fill(8000))));
    const api = hub.overview().services.find((s) => s.name === 'api')!;
    expect(api.requests).toBe(1000);
    expect(api.subsets?.map((s) => [s.subset, s.requests, s.failed, s.rps])).toEqual([
      ['api/v1', 900, 0, 90],
      ['api/v2', 100, 20, 10],
    ]);
    expect(api.subsets![1]!.successRate).toBeCloseTo(0.8, 5);
    expect(api.subsets![1]!.p99Ms).toBeCloseTo(8, 0);
    expect(api.instances.map((i) => [i.node, i.attempts, i.failed])).toEqual([
      ['h1', 900, 0],
      ['h2', 100, 20],
    ]);
    // Without a policy there are no subset figures at all.
    const plain = new MetricsHub(() => now);
    plain.ingest('w1', caller('w1', counters(10, 0, [])));
    expect(plain.overview().services.find((s) => s.name === 'api')!.subsets).toBeUndefined();
  });

  it('forgets a node that stopped reporting, and treats a counter reset as a restart', () => {
    let now = 0;
    const hub = new MetricsHub(() => now);
    hub.ingest('a', caller('a', counters(1000, 0, [])));
    now += 2000;
    hub.ingest('a', caller('a', counters(10, 0, [])));
    expect(hub.overview().services.find((s) => s.name === 'api')!.rps).toBe(5);
    now += 60_000;
    expect(hub.overview().services).toEqual([]);
  });
});

describe('metrics hub across registries', () => {
  it("merges the samples a peer registry holds: a service's callers on one, its instance on the other", () => {
    let now = 1_000_000;
    // Registry A holds api's host, registry B web's (its caller); B's clock runs 7 s ahead.
    const a = new MetricsHub(() => now);
    const b = new MetricsHub(() => now + 7000);
    a.ingest('h-api', report('h-api', counters(0, 0, [], { activeConnections: 2 })));
    b.ingest('h-web', caller('h-web', idle(), [{ node: 'h-api', c: idle() }]));
    now += 5000;
    a.ingest('h-api', report('h-api', counters(0, 0, [], { activeConnections: 2 })));
    b.ingest('h-web', caller('h-web', counters(50, 0, [1000]), [{ node: 'h-api', c: counters(50, 0, [1000]) }]));

    expect(a.overview().services.find((s) => s.name === 'api')!.requests).toBe(0);
    for (const [self, peer] of [
      [a, b],
      [b, a],
    ] as const) {
      const api = self.overview([peer.localSamples()]).services.find((s) => s.name === 'api')!;
      expect([api.requests, api.rps, api.callers, api.activeConnections]).toEqual([50, 10, 1, 2]);
      expect(api.instances).toEqual([expect.objectContaining({ node: 'h-api', attempts: 50, activeConnections: 2 })]);
    }
  });

  it('counts a node that moved between registries once, from its newest samples', () => {
    let now = 0;
    const a = new MetricsHub(() => now);
    const b = new MetricsHub(() => now);
    // h-web reported to A, then moved to B (A still holds its older samples).
    a.ingest('h-web', caller('h-web', idle()));
    now += 2000;
    a.ingest('h-web', caller('h-web', counters(20, 0, [1000])));
    now += 2000;
    b.ingest('h-web', caller('h-web', counters(40, 0, [1000])));
    now += 2000;
    b.ingest('h-web', caller('h-web', counters(60, 0, [1000])));
    const fromA = a.overview([b.localSamples()]).services.find((s) => s.name === 'api')!;
    const fromB = b.overview([a.localSamples()]).services.find((s) => s.name === 'api')!;
    // B's two samples (40 -> 60 in 2 s), not A's added on top.
    expect([fromA.requests, fromA.rps]).toEqual([20, 10]);
    expect([fromB.requests, fromB.rps]).toEqual([20, 10]);
  });

  it('hands a peer no node that stopped reporting', () => {
    let now = 0;
    const a = new MetricsHub(() => now);
    const b = new MetricsHub(() => now);
    b.ingest('h-web', caller('h-web', counters(10, 0, [1000])));
    expect(Object.keys(b.localSamples().nodes)).toEqual(['h-web']);
    now += 60_000;
    expect(b.localSamples().nodes).toEqual({});
    expect(a.overview([b.localSamples()]).services).toEqual([]);
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
    // A caller's upstream with its resilience figures (issue 15) is taken.
    const withResilience = caller('host-m', counters(10, 0, [500]));
    withResilience.proxies[0]!.upstreams[0]!.resilience = {
      retries: 1,
      retryBudgetExhausted: 0,
      timeouts: 0,
      circuitOpen: { 'max-requests': 0 },
      ejections: 0,
      ejected: 0,
    };
    await client.reportMetrics('host-m', withResilience);
  });
});
