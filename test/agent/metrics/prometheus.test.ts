import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import * as hdr from 'hdr-histogram-js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startPrometheus, type PrometheusServer } from '../../../src/agent/metrics/prometheus.js';
import type { NodeMetricsReport, TrafficCounters } from '../../../src/api/metrics.js';

function traffic(requests: number, latUs: number[]): TrafficCounters {
  const h = hdr.build();
  for (const v of latUs) h.recordValue(v);
  return {
    requests,
    responses: { '2xx': requests - 1, '5xx': 1 },
    meshErrors: { 'no-healthy-endpoints': 2 },
    activeConnections: 3,
    totalConnections: 9,
    bytesIn: 100,
    bytesOut: 200,
    latency: hdr.encodeIntoCompressedBase64(h),
  };
}

const report: NodeMetricsReport = {
  sampledAt: Date.now(),
  proxies: [
    {
      service: 'web',
      serviceId: 'web',
      node: 'host-a',
      inbound: { ...traffic(10, [1000, 2000]), tlsFailures: { 'unknown-ca': 4 } },
      upstreams: [
        {
          service: 'api',
          ...traffic(7, [500, 1500, 25_000]),
          endpoints: [{ endpoint: 'api.host-b', ...traffic(7, [500]) }],
          resilience: {
            retries: 5,
            retryBudgetExhausted: 1,
            timeouts: 2,
            circuitOpen: { 'max-requests': 3, 'max-pending': 0, 'max-retries': 4 },
            ejections: 6,
            ejected: 1,
          },
        },
        {
          service: 'pay',
          ...traffic(20, [500]),
          endpoints: [
            { endpoint: 'pay-1.host-c', subset: 'pay/v1', ...traffic(18, [500]) },
            { endpoint: 'pay-2.host-d', subset: 'pay/v2', ...traffic(2, [500]) },
          ],
          subsets: [
            { subset: 'pay/v1', ...traffic(18, [500]) },
            { subset: 'pay/v2', ...traffic(2, [500]) },
          ],
        },
      ],
    },
  ],
};

function scrape(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

describe('agent Prometheus endpoint', () => {
  let server: PrometheusServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves the sidecars' figures as Prometheus text that a parser accepts", async () => {
    server = await startPrometheus('127.0.0.1:0', () => report);
    const res = await scrape(server.url);
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    const families = parsePrometheusTextFormat(res.body) as Array<{
      name: string;
      metrics: Array<{ value: string; labels: Record<string, string> }>;
    }>;
    const find = (name: string) => families.find((f) => f.name === name)!.metrics;
    expect(find('meshctl_inbound_requests_total')).toEqual([
      { value: '10', labels: { service: 'web', service_id: 'web', node: 'host-a' } },
    ]);
    expect(find('meshctl_inbound_responses_total').find((m) => m.labels.class === '5xx')?.value).toBe('1');
    expect(find('meshctl_inbound_tls_failures_total')[0]).toMatchObject({
      value: '4',
      labels: { reason: 'unknown-ca' },
    });
    expect(find('meshctl_upstream_mesh_errors_total').find((m) => m.labels.endpoint === '')).toMatchObject({
      value: '2',
      labels: { upstream: 'api', reason: 'no-healthy-endpoints' },
    });
    const p99 = find('meshctl_upstream_latency_seconds').find(
      (m) => m.labels.endpoint === '' && m.labels.quantile === '0.99',
    );
    expect(Number(p99?.value)).toBeCloseTo(0.025, 2);
    expect(
      find('meshctl_upstream_requests_total')
        .filter((m) => m.labels.upstream === 'api')
        .map((m) => m.labels.endpoint)
        .sort(),
    ).toEqual(['', 'api.host-b']);
    // What resilience did, per upstream (endpoint="").
    const one = (name: string) => find(name).map((m) => [m.labels.upstream, m.labels.endpoint, m.value]);
    expect(one('meshctl_upstream_retries_total')).toEqual([['api', '', '5']]);
    expect(one('meshctl_upstream_retry_budget_exhausted_total')).toEqual([['api', '', '1']]);
    expect(one('meshctl_upstream_timeouts_total')).toEqual([['api', '', '2']]);
    expect(one('meshctl_upstream_ejections_total')).toEqual([['api', '', '6']]);
    expect(one('meshctl_upstream_ejected_endpoints')).toEqual([['api', '', '1']]);
    expect(
      Object.fromEntries(find('meshctl_upstream_circuit_open_total').map((m) => [m.labels.limit, m.value])),
    ).toEqual({ 'max-requests': '3', 'max-pending': '0', 'max-retries': '4' });
  });

  it('labels the figures of a traffic-policy target with its subset: per endpoint and per subset', async () => {
    server = await startPrometheus('127.0.0.1:0', () => report);
    const families = parsePrometheusTextFormat((await scrape(server.url)).body) as Array<{
      name: string;
      metrics: Array<{ value: string; labels: Record<string, string> }>;
    }>;
    const pay = families
      .find((f) => f.name === 'meshctl_upstream_requests_total')!
      .metrics.filter((m) => m.labels.upstream === 'pay')
      .map((m) => `${m.labels.endpoint ?? ''}|${m.labels.subset ?? ''}=${m.value}`)
      .sort();
    expect(pay).toEqual(['pay-1.host-c|pay/v1=18', 'pay-2.host-d|pay/v2=2', '|=20', '|pay/v1=18', '|pay/v2=2'].sort());
  });

  it('answers 404 elsewhere and serves an empty set before the first sample', async () => {
    server = await startPrometheus('127.0.0.1:0', () => undefined);
    expect((await scrape(server.url.replace('/metrics', '/'))).status).toBe(404);
    const res = await scrape(server.url);
    expect(res.status).toBe(200);
    expect(res.body).not.toMatch(/^meshctl_inbound_requests_total\{/m);
  });

  it('refuses a bad listen address', async () => {
    await expect(startPrometheus('nonsense', () => undefined)).rejects.toMatchObject({
      code: 'MESH_ERR_INVALID_ARGUMENT',
    });
  });
});
