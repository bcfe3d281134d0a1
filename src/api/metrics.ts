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

/**
 * One endpoint of an upstream: counted per *attempt* (a request that failed over from this
 * endpoint to another counts here as a failed attempt, and on the upstream as one request).
 */
export interface EndpointMetrics extends TrafficCounters {
  /** The instance id as in the snapshot (ids repeat across nodes: `node` tells them apart). */
  endpoint: string;
  /** The instance's node (optional for reports from agents that did not send it). */
  node?: string;
  /**
   * Under a traffic policy: the policy target these attempts went to (`api/v2`: service and
   * subset, or `api` for a target without subset). An instance in two subsets has a row in each.
   */
  subset?: string;
}

/** One traffic-policy target of an upstream (`api/v2`): its requests, counted once with their final outcome. */
export interface SubsetMetrics extends TrafficCounters {
  subset: string;
}

/**
 * What a caller's outbound sidecar saw of one destination service: counted once per request
 * with its final outcome, after failover and retries (what the caller's app got). These are the
 * figures the registry reports for the destination service.
 */
export interface UpstreamMetrics extends TrafficCounters {
  service: string;
  endpoints: EndpointMetrics[];
  /** Only under a traffic policy (service-router/-splitter/-resolver): per target, so v1 and v2 compare. */
  subsets?: SubsetMetrics[];
  /** What resilience did on this upstream (L7 upstreams; absent from older proxies). */
  resilience?: ResilienceCounters;
}

/** Totals since the sidecar started (issue 15). */
export interface ResilienceCounters {
  /** Retry attempts made (failover is not counted). */
  retries: number;
  /** Retries the budget refused. */
  retryBudgetExhausted: number;
  /** Attempts or exchanges ended by a request or per-try timeout. */
  timeouts: number;
  /** Requests or retries refused by a circuit limit, by limit (max-requests, max-pending, max-retries). */
  circuitOpen: Record<string, number>;
  /** Endpoints ejected as outliers, in all. */
  ejections: number;
  /** Endpoints out right now. */
  ejected: number;
}

/** One proxy's figures, as an agent reports them. */
export interface ProxyMetrics {
  service: string;
  serviceId: string;
  node: string;
  /**
   * The inbound side. The registry takes only connections and bytes from it (and TLS
   * refusals): an inbound that pipes bytes sees no requests, so request figures for a service
   * come from its callers' `upstreams` instead.
   */
  inbound: TrafficCounters & { tlsFailures: Record<string, number> };
  upstreams: UpstreamMetrics[];
}

/** `PUT /v1/metrics/node/:node` body. */
export interface NodeMetricsReport {
  /** ms since epoch when the agent sampled its proxies. */
  sampledAt: number;
  proxies: ProxyMetrics[];
}

import type { ResilienceWindow } from './resilience-window.js';

/** Request figures over the window, as callers' sidecars saw them. */
export interface RequestFigures {
  /** Requests per second. */
  rps: number;
  /** Share of answers that were neither 5xx nor mesh errors, 0..1; null when there was no traffic. */
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

/**
 * Per-service figures over the last window, as the dashboard shows them.
 *
 * Where each figure comes from: requests, success, latency and mesh errors are what the
 * service's *callers* saw (their outbound sidecars' figures for it as a destination, summed over
 * every caller, counted once per request after failover: a failed attempt that another instance
 * answered is no failure here). Connections and bytes are the service's own inbound sides'.
 * A service nobody in the mesh calls has no request figures (`callers` 0, rates null/0).
 */
export interface ServiceMetricsView extends RequestFigures {
  name: string;
  maxMs: number | null;
  /** Requests callers sent in the window, and how many of them failed (5xx or mesh errors). */
  requests: number;
  failed: number;
  /** Mesh-made answers callers got in the window, by reason (no-healthy-endpoints, …). */
  meshErrors: Record<string, number>;
  /** Caller sidecars that reported traffic to this service in the window. */
  callers: number;
  /**
   * What its callers' resilience did towards it in the window (retries, timeouts, circuit-open,
   * ejections of its instances), summed over every caller; `ejected`: its instances out now,
   * summed over the callers that eject them. All zero when nothing happened; absent only from
   * registries older than these figures.
   */
  resilience?: ResilienceWindow;
  /** Open connections into the service's inbound sides. */
  activeConnections: number;
  /** Bytes per second through its inbound sides (received, sent). */
  bytesInPerSec: number;
  bytesOutPerSec: number;
  /** Per instance (node + id): callers' attempts to it, and its inbound connections. */
  instances: Array<
    RequestFigures & {
      node: string;
      serviceId: string;
      /** Attempts callers sent to this instance, and how many failed (a failed-over one counts). */
      attempts: number;
      failed: number;
      activeConnections: number;
    }
  >;
  /**
   * Under a traffic policy: what callers saw of each subset of this service (`api/v2`), once per
   * request, so a canary compares with its baseline. Absent when no caller has a policy for it.
   */
  subsets?: Array<RequestFigures & { subset: string; requests: number; failed: number }>;
  /** What this service's sidecars see of each of its upstreams (as a caller). */
  upstreams: Array<
    RequestFigures & {
      service: string;
      meshErrors: Record<string, number>;
      /** What this service's sidecars' resilience did towards that upstream in the window (absent: older registry). */
      resilience?: ResilienceWindow;
      /** Per endpoint: attempts, so a failed-over attempt shows as a failure there. */
      endpoints: Array<{
        endpoint: string;
        node?: string;
        rps: number;
        successRate: number | null;
        p99Ms: number | null;
      }>;
    }
  >;
}

/** `GET /v1/metrics/services` answer. */
export interface MetricsOverview {
  /** Window the rates are computed over, in seconds. */
  windowSeconds: number;
  generatedAt: string;
  services: ServiceMetricsView[];
  /**
   * With several registries (etcd): how many were asked for their agents' figures (this one
   * included) and those that did not answer, whose agents' figures are missing. Absent with one
   * registry.
   */
  registries?: { asked: number; missing: string[] };
}
