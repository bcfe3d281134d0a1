/**
 * The dashboard shows what callers experience: figures go from sidecar reports through the
 * registry's merge to the rendered frame, with nothing faked in between.
 */
import { describe, expect, it } from 'vitest';
import { stripVTControlCharacters } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { render } from 'ink-testing-library';
import { MetricsHub } from '../../src/registry/metrics.js';
import type { NodeMetricsReport, ResilienceCounters, TrafficCounters } from '../../src/api/metrics.js';
import { DashboardView, type DashboardViewProps } from '../../src/ui/views/DashboardView.js';
import { renderFrame } from '../../src/ui/run-dashboard.js';
import { expectGolden } from '../helpers/golden.js';
import { demoSnapshot, NOW } from './fixtures.js';
import { fits } from './terminal.js';

function counters(requests: number, over: Partial<TrafficCounters> = {}): TrafficCounters {
  const h = hdr.build();
  if (requests > 0) h.recordValue(1500);
  return {
    requests,
    responses: requests > 0 ? { '2xx': requests } : {},
    meshErrors: {},
    activeConnections: 0,
    totalConnections: 0,
    bytesIn: 0,
    bytesOut: 0,
    latency: requests > 0 ? hdr.encodeIntoCompressedBase64(h) : '',
    ...over,
  };
}

const webReport = (toApi: TrafficCounters, perEndpoint: Record<string, TrafficCounters> = {}): NodeMetricsReport => ({
  sampledAt: 0,
  proxies: [
    {
      service: 'web',
      serviceId: 'web',
      node: 'host-a',
      inbound: { ...counters(0), tlsFailures: {} },
      upstreams: [
        {
          service: 'api',
          ...toApi,
          endpoints: Object.entries(perEndpoint).map(([node, c]) => ({ endpoint: `api.${node}`, node, ...c })),
        },
      ],
    },
  ],
});

const apiReport = (node: string, inbound: TrafficCounters): NodeMetricsReport => ({
  sampledAt: 0,
  proxies: [{ service: 'api', serviceId: 'api', node, inbound: { ...inbound, tlsFailures: {} }, upstreams: [] }],
});

/** Two reports 10 s apart through the registry's merge, then the frame. */
function frameAfter(
  first: Array<[string, NodeMetricsReport]>,
  second: Array<[string, NodeMetricsReport]>,
  over: Partial<DashboardViewProps> & { healthy?: number } = {},
): string {
  let now = 0;
  const hub = new MetricsHub(() => now);
  for (const [n, r] of first) hub.ingest(n, r);
  now += 10_000;
  for (const [n, r] of second) hub.ingest(n, r);
  const snap = demoSnapshot({ metrics: hub.overview() });
  if (over.healthy !== undefined) {
    snap.services = snap.services.map((s) => (s.name === 'api' ? { ...s, healthy: over.healthy! } : s));
    snap.instances = snap.instances.map((i) => (i.name === 'api' ? { ...i, status: 'critical' as const } : i));
  }
  const r = render(
    <DashboardView
      snapshot={snap}
      reachable
      error={undefined}
      lastUpdated={NOW}
      now={NOW}
      width={80}
      height={23}
      mode="overview"
      help={false}
      selected={undefined}
      interactive
      sourceLabel="registry https://127.0.0.1:7443"
      {...over}
    />,
  );
  const f = stripVTControlCharacters(r.lastFrame() ?? '');
  r.unmount();
  expect(fits(f, 80, 23)).toBe(true);
  return f;
}

const line = (f: string, name: string) => f.split('\n').find((l) => new RegExp(`^.\\s+${name}\\s`).test(l)) ?? '';

describe('the dashboard shows what callers experience', () => {
  it("api at 0/2 healthy: the overview shows callers' failures and the mesh errors they got, not '0 / —'", () => {
    const before = [['host-a', webReport(counters(0))]] as Array<[string, NodeMetricsReport]>;
    const failing = counters(133, { responses: {}, meshErrors: { 'no-healthy-endpoints': 133 } });
    const f = frameAfter(before, [['host-a', webReport(failing)]], { healthy: 0 });
    expect(line(f, 'api')).toMatch(/api\s+0\/2\s+13\s+0\.0%\s+133\s+1\.5ms\s+1\.5ms/);
    // Nobody in the mesh calls web (the demo's load reaches its app directly): no figures, not zeros.
    expect(line(f, 'web')).toMatch(/web\s+1\/1\s+—\s+—\s+—/);

    const detail = frameAfter(before, [['host-a', webReport(failing)]], {
      healthy: 0,
      mode: 'detail',
      selected: 'api',
    });
    expect(detail).toContain('mesh errors: no-healthy-endpoints 133');
    expect(detail).toMatch(/api@host-a\s+127\.0\.0\.2:21000\s+critical/);
  });

  it("an instance whose app is down, failed over by callers: the service is 100% as callers saw it, the instance's attempts fail", () => {
    const before: Array<[string, NodeMetricsReport]> = [
      ['host-a', webReport(counters(0), { 'host-a': counters(0), 'host-b': counters(0) })],
      ['host-b', apiReport('host-b', counters(0))],
    ];
    const failedOver = counters(20, { responses: {}, meshErrors: { 'app-unavailable': 20 } });
    const after: Array<[string, NodeMetricsReport]> = [
      ['host-a', webReport(counters(100), { 'host-a': counters(100), 'host-b': failedOver })],
      // What api@host-b's own inbound counted (a parsing inbound saw 20 refusals): not what callers got.
      ['host-b', apiReport('host-b', failedOver)],
    ];
    expect(line(frameAfter(before, after), 'api')).toMatch(/api\s+1\/2\s+10\s+100%\s+0\s/);
    const detail = frameAfter(before, after, { mode: 'detail', selected: 'api' });
    expect(detail).toMatch(/api@host-b\s+127\.0\.0\.3:21001\s+critical\s+2\.0\s+0\.0%/);
    expect(detail).toMatch(/api@host-a\s+127\.0\.0\.2:21000\s+passing\s+10\s+100%/);
    expect(detail).toContain('as 1 caller saw it; no mesh errors');
  });

  it("what callers' resilience did shows as a line under the service, only when it did something", async () => {
    const withResilience = (r: Partial<ResilienceCounters>): NodeMetricsReport => {
      const rep = webReport(counters(100));
      rep.proxies[0]!.upstreams[0]!.resilience = {
        retries: 0,
        retryBudgetExhausted: 0,
        timeouts: 0,
        circuitOpen: {},
        ejections: 0,
        ejected: 0,
        ...r,
      };
      return rep;
    };
    const quiet = frameAfter([['host-a', withResilience({})]], [['host-a', withResilience({})]]);
    expect(quiet).not.toContain('resilience');
    const busy = frameAfter(
      [['host-a', withResilience({ retries: 5 })]],
      [
        [
          'host-a',
          withResilience({ retries: 17, timeouts: 2, circuitOpen: { 'max-requests': 4 }, ejections: 1, ejected: 1 }),
        ],
      ],
    );
    const lines = busy.split('\n');
    const at = lines.findIndex((l) => /^.\s+api\s/.test(l));
    expect(lines[at + 1]).toMatch(/^ {3}↳ resilience: 12 retries, 2 timeouts, 4 circuit-open, 1 ejection, 1 out now$/);
    // The next service's row follows: a service nobody's resilience touched has no line.
    expect(lines[at + 2]).toMatch(/^.\s+db\s/);
    expect(busy.match(/↳ resilience/g)).toHaveLength(1);
    // The detail views: callers' resilience towards api, and web's sidecar towards its upstream api.
    const api = frameAfter(
      [['host-a', withResilience({ retries: 5 })]],
      [['host-a', withResilience({ retries: 17, circuitOpen: { 'max-requests': 4 } })]],
      { mode: 'detail', selected: 'api' },
    );
    expect(api).toContain("callers' resilience: 12 retries, 4 circuit-open (max-requests 4)");
    const web = frameAfter(
      [['host-a', withResilience({ retries: 5 })]],
      [['host-a', withResilience({ retries: 17 })]],
      { mode: 'detail', selected: 'web' },
    );
    expect(web).toContain('resilience: 12 retries');

    // `meshctl status --once` prints the same line: its layout pinned (figures fixed here, where
    // the e2e's depend on when the window is read).
    let now = 0;
    const hub = new MetricsHub(() => now);
    hub.ingest('host-a', withResilience({ retries: 5 }));
    now += 10_000;
    hub.ingest('host-a', withResilience({ retries: 17, timeouts: 2, circuitOpen: { 'max-requests': 4 }, ejected: 1 }));
    const frame = stripVTControlCharacters(renderFrame(demoSnapshot({ metrics: hub.overview() }), 80));
    await expectGolden('status-resilience.txt', frame.replace(/\d+s ago/g, 'Ns ago'));
  });
});
