/**
 * The metrics contract between proxies, agents, the registry and the dashboard.
 *
 * Where aggregation lives: in the registry. Every agent already talks to it, so agents push a
 * compact summary of their proxies every few seconds (`PUT /v1/metrics/node/:node`, kept in
 * memory with a TTL, never in the store), and the registry merges them per service. A
 * dashboard on any host (even one with no agent, like the control plane) then reads one
 * endpoint. Latency percentiles cannot be averaged, so summaries carry HDR histograms
 * (hdr-histogram-js, base64-encoded, microseconds) that the registry adds together.
 */

/** Counters are totals since the proxy started; rates are derived by whoever reads twice. */
export interface TrafficCounters {
  requests: number;
  /** Responses by class: '2xx', '3xx', '4xx', '5xx' (HTTP) — TCP connections count as requests. */
  responses: Record<string, number>;
  /** Errors the mesh itself produced, by reason ('no-healthy-endpoints', 'intention-deny', 'connect-failure', …). */
  meshErrors: Record<string, number>;
  activeConnections: number;
  totalConnections: number;
  bytesIn: number;
  bytesOut: number;
  /** Base64 HDR histogram of request durations in microseconds (empty string when none). */
  latency: string;
}

export interface EndpointMetrics extends TrafficCounters {
  /** Endpoint id as in the snapshot (`<instance>.<node>`). */
  endpoint: string;
}

export interface UpstreamMetrics extends TrafficCounters {
  service: string;
  endpoints: EndpointMetrics[];
}

/** One proxy's figures, as an agent reports them. */
export interface ProxyMetrics {
  service: string;
  serviceId: string;
  node: string;
  inbound: TrafficCounters & { tlsFailures: Record<string, number> };
  upstreams: UpstreamMetrics[];
}

/** `PUT /v1/metrics/node/:node` body. */
export interface NodeMetricsReport {
  /** ms since epoch when the agent sampled its proxies. */
  sampledAt: number;
  proxies: ProxyMetrics[];
}

/** Per-service figures over the last window, as the dashboard shows them. */
export interface ServiceMetricsView {
  name: string;
  /** Requests per second into the service's instances over the window. */
  rps: number;
  /** Share of non-5xx and non-mesh-error answers, 0..1; null when there was no traffic. */
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  activeConnections: number;
  /** Per instance (node + id). */
  instances: Array<{
    node: string;
    serviceId: string;
    rps: number;
    successRate: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    activeConnections: number;
  }>;
  /** What this service's sidecars see of each of its upstreams. */
  upstreams: Array<{
    service: string;
    rps: number;
    successRate: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    meshErrors: Record<string, number>;
    endpoints: Array<{ endpoint: string; rps: number; successRate: number | null; p99Ms: number | null }>;
  }>;
}

/** `GET /v1/metrics/services` answer. */
export interface MetricsOverview {
  /** Window the rates are computed over, in seconds. */
  windowSeconds: number;
  generatedAt: string;
  services: ServiceMetricsView[];
}
