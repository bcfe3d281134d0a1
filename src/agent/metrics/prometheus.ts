/**
 * The agent's opt-in Prometheus endpoint (`/metrics` on --metrics-bind): this host's sidecar
 * figures in the Prometheus text format, via prom-client. Values are read from the latest
 * sample at scrape time, so nothing is updated per request.
 *
 * Which figures tell what a service's callers experience: `meshctl_upstream_*` with
 * endpoint="" (each request counted once, after failover), summed over every caller's agent by
 * `upstream`. The per-endpoint series count attempts (a failed-over attempt is a failure there),
 * so they never add up to the total. The `meshctl_inbound_*` request series count what the
 * inbound side parses: for an inbound that pipes bytes they are connections; its connection and
 * byte series are the destination side's own.
 */
import http from 'node:http';
// One module of hdr-histogram-js rather than its index (see registry/metrics.ts).
import { decodeFromCompressedBase64 } from 'hdr-histogram-js/dist/encoding.js';
import { Registry, Gauge } from 'prom-client';
import type { NodeMetricsReport, TrafficCounters } from '../../api/metrics.js';
import { MeshError } from '../../errors/index.js';

const QUANTILES = [0.5, 0.9, 0.99, 1] as const;

export function buildPromRegistry(latest: () => NodeMetricsReport | undefined): Registry {
  const registry = new Registry();
  const labelsIn = ['service', 'service_id', 'node'] as const;
  // `subset`: the traffic-policy target (`api/v2`) of a row, "" without a policy (an empty label is no label to Prometheus).
  const labelsUp = ['service', 'service_id', 'node', 'upstream', 'endpoint', 'subset'] as const;
  const g = (name: string, help: string, labelNames: readonly string[]) =>
    new Gauge({ name, help, labelNames, registers: [registry] });
  // Counters from the proxies are totals since each proxy started; exposed as gauges because
  // the agent mirrors them rather than counting itself (a proxy restart resets them).
  const reqIn = g(
    'meshctl_inbound_requests_total',
    'Requests the inbound side handled (HTTP when it parses HTTP, else connections); callers\' view: meshctl_upstream_requests_total{endpoint=""}',
    labelsIn,
  );
  const respIn = g('meshctl_inbound_responses_total', 'Inbound responses by status class', [...labelsIn, 'class']);
  const meshIn = g(
    'meshctl_inbound_mesh_errors_total',
    'Answers the mesh itself produced on the inbound side, by reason',
    [...labelsIn, 'reason'],
  );
  const tlsIn = g('meshctl_inbound_tls_failures_total', 'Refused inbound TLS handshakes and identities, by reason', [
    ...labelsIn,
    'reason',
  ]);
  const connIn = g('meshctl_inbound_connections_active', 'Open inbound connections', labelsIn);
  const connInTotal = g('meshctl_inbound_connections_total', 'Inbound connections accepted', labelsIn);
  const bytesIn = g('meshctl_inbound_bytes_total', 'Bytes through the inbound side', [...labelsIn, 'direction']);
  const latIn = g('meshctl_inbound_latency_seconds', 'Inbound request latency quantiles since the sidecar started', [
    ...labelsIn,
    'quantile',
  ]);
  const reqUp = g(
    'meshctl_upstream_requests_total',
    'Requests to an upstream as this caller saw them: endpoint="" counts each request once after failover, per endpoint counts attempts',
    labelsUp,
  );
  const respUp = g('meshctl_upstream_responses_total', 'Upstream responses by status class', [...labelsUp, 'class']);
  const meshUp = g(
    'meshctl_upstream_mesh_errors_total',
    'Mesh-made answers (endpoint="": what the caller got; per endpoint: failed attempts), by reason',
    [...labelsUp, 'reason'],
  );
  // Subsets that reach one instance share its pool: its connections show under each subset's endpoint row.
  const connUp = g(
    'meshctl_upstream_connections_active',
    'Open connections to an upstream; a pool shared by subsets shows under each (max by endpoint across subsets, not sum)',
    labelsUp,
  );
  const bytesUp = g(
    'meshctl_upstream_bytes_total',
    'Bytes to and from an upstream; a pool shared by subsets shows under each (max by endpoint across subsets, not sum)',
    [...labelsUp, 'direction'],
  );
  const latUp = g('meshctl_upstream_latency_seconds', 'Upstream request latency quantiles since the sidecar started', [
    ...labelsUp,
    'quantile',
  ]);

  // What resilience did per upstream (issue 15): totals since the sidecar started.
  const retriesUp = g(
    'meshctl_upstream_retries_total',
    'Retry attempts to an upstream (failover not counted)',
    labelsUp,
  );
  const budgetUp = g(
    'meshctl_upstream_retry_budget_exhausted_total',
    'Retries the retry budget refused (the failed answer went to the app)',
    labelsUp,
  );
  const timeoutsUp = g(
    'meshctl_upstream_timeouts_total',
    'Attempts or exchanges ended by a request or per-try timeout',
    labelsUp,
  );
  const circuitUp = g('meshctl_upstream_circuit_open_total', 'Requests or retries refused by a circuit limit', [
    ...labelsUp,
    'limit',
  ]);
  const ejectionsUp = g('meshctl_upstream_ejections_total', 'Endpoints ejected as outliers', labelsUp);
  const ejectedUp = g('meshctl_upstream_ejected_endpoints', 'Endpoints ejected as outliers right now', labelsUp);

  const fill = (
    c: TrafficCounters,
    labels: Record<string, string>,
    m: { req: Gauge; resp: Gauge; mesh: Gauge; conn: Gauge; bytes: Gauge; lat: Gauge; connTotal?: Gauge },
  ) => {
    m.req.set(labels, c.requests);
    for (const [cls, n] of Object.entries(c.responses)) m.resp.set({ ...labels, class: cls }, n);
    for (const [reason, n] of Object.entries(c.meshErrors)) m.mesh.set({ ...labels, reason }, n);
    m.conn.set(labels, c.activeConnections);
    m.connTotal?.set(labels, c.totalConnections);
    m.bytes.set({ ...labels, direction: 'in' }, c.bytesIn);
    m.bytes.set({ ...labels, direction: 'out' }, c.bytesOut);
    if (c.latency) {
      try {
        const h = decodeFromCompressedBase64(c.latency);
        if (h.totalCount > 0)
          for (const q of QUANTILES)
            m.lat.set({ ...labels, quantile: String(q) }, h.getValueAtPercentile(q * 100) / 1e6);
      } catch {
        // A histogram we cannot read is skipped, not fatal to the scrape.
      }
    }
  };

  const collect = () => {
    registry.resetMetrics();
    const r = latest();
    if (!r) return;
    for (const p of r.proxies) {
      const base = { service: p.service, service_id: p.serviceId, node: p.node };
      fill(p.inbound, base, {
        req: reqIn,
        resp: respIn,
        mesh: meshIn,
        conn: connIn,
        bytes: bytesIn,
        lat: latIn,
        connTotal: connInTotal,
      });
      for (const [reason, n] of Object.entries(p.inbound.tlsFailures)) tlsIn.set({ ...base, reason }, n);
      for (const u of p.upstreams) {
        const ul = { ...base, upstream: u.service };
        const mUp = { req: reqUp, resp: respUp, mesh: meshUp, conn: connUp, bytes: bytesUp, lat: latUp };
        fill(u, { ...ul, endpoint: '', subset: '' }, mUp);
        const res = u.resilience;
        if (res) {
          const l = { ...ul, endpoint: '', subset: '' };
          retriesUp.set(l, res.retries);
          budgetUp.set(l, res.retryBudgetExhausted);
          timeoutsUp.set(l, res.timeouts);
          for (const [limit, n] of Object.entries(res.circuitOpen)) circuitUp.set({ ...l, limit }, n);
          ejectionsUp.set(l, res.ejections);
          ejectedUp.set(l, res.ejected);
        }
        for (const e of u.endpoints) fill(e, { ...ul, endpoint: e.endpoint, subset: e.subset ?? '' }, mUp);
        for (const t of u.subsets ?? []) fill(t, { ...ul, endpoint: '', subset: t.subset }, mUp);
      }
    }
  };
  return Object.assign(registry, { collectNow: collect });
}

export interface PrometheusServer {
  url: string;
  close(): Promise<void>;
}

export async function startPrometheus(
  bind: string,
  latest: () => NodeMetricsReport | undefined,
): Promise<PrometheusServer> {
  const i = bind.lastIndexOf(':');
  const host = bind.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(bind.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid metrics address '${bind}'`, {
      hint: 'Use ADDR:PORT, e.g. 127.0.0.1:9102.',
    });
  }
  const registry = buildPromRegistry(latest) as Registry & { collectNow: () => void };
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics\n');
      return;
    }
    registry.collectNow();
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e)),
    );
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new MeshError('MESH_ERR_UNAVAILABLE', `cannot listen for metrics on ${bind}: ${e.code ?? e.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  server.on('error', () => undefined);
  const addr = server.address() as { port: number };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
