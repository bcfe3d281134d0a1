/**
 * One upstream as the outbound path sees it: its endpoints, its load balancer and the TLS
 * settings to reach it. The stages of the outbound pipeline work on a cluster:
 *
 *   pickEndpoint (balancer) → attempt (dial / pooled connection, failover on connect
 *   failure) → forward (L4 pipe or L7 http-proxy)
 *
 * Routes, splits, retries, timeouts and circuit breaking (DESIGN §6) slot in around these
 * stages: a route picks the cluster, a split picks a subset of its endpoints, policy wraps
 * the attempt. Nothing here knows about the inbound side.
 */
import type { SecureContext } from 'node:tls';
import { meshReason } from '../../errors/reasons.js';
import { cachedServerIdentityCheck } from '../identity-cache.js';
import type { LoadBalancerName, ProxyProtocol, SnapshotUpstream } from '../snapshot.js';
import { createBalancer, type Balancer, type Random } from './balancers.js';
import { dialEndpoint, type DialCallback, type DialTls } from './dial.js';
import { Endpoint } from './endpoint.js';
import { EndpointPool, type PoolTimeouts } from './pool.js';

/** Above this many endpoints, endpoints get compact (packed) latency histograms. */
const COMPACT_HISTOGRAMS_ABOVE = 16;

export interface ClusterSettings extends PoolTimeouts {
  readonly random?: Random;
}

/** This service's TLS material, shared by every cluster of one snapshot. */
export interface ClientTls {
  readonly secureContext: SecureContext;
  readonly trustDomain: string;
}

export class Cluster {
  readonly service: string;
  readonly protocol: ProxyProtocol;
  /** Healthy endpoints, in snapshot order. Replaced (never mutated) on update, so a pick sees one consistent list. */
  endpoints: readonly Endpoint[] = [];
  balancer: Balancer<Endpoint>;
  #tls: DialTls;
  readonly #settings: ClusterSettings;
  /** Reasons sent back to the caller, built once. */
  readonly reasons: {
    readonly noEndpoints: string;
    readonly connectFailure: string;
    readonly upstreamReset: string;
    readonly badResponse: string;
  };

  constructor(upstream: SnapshotUpstream, tls: ClientTls, settings: ClusterSettings) {
    this.service = upstream.service;
    this.protocol = upstream.protocol;
    this.#settings = settings;
    this.balancer = createBalancer<Endpoint>(upstream.loadBalancer, settings.random);
    this.#tls = dialTls(upstream.service, tls);
    this.reasons = {
      noEndpoints: meshReason('no-healthy-endpoints', upstream.service),
      connectFailure: meshReason('connect-failure', upstream.service),
      upstreamReset: meshReason('upstream-reset', upstream.service),
      badResponse: meshReason('upstream-bad-response', upstream.service),
    };
    this.update(upstream, tls, false);
  }

  /**
   * Takes a newer snapshot of the same upstream. Endpoints that stay keep their pools and
   * counters; endpoints that go have their pools retired; with `tlsRotated` every pool is
   * retired so new connections present the new certificate, while open ones finish.
   */
  update(upstream: SnapshotUpstream, tls: ClientTls, tlsRotated: boolean): void {
    if (upstream.loadBalancer !== this.balancer.name)
      this.balancer = createBalancer<Endpoint>(upstream.loadBalancer as LoadBalancerName, this.#settings.random);
    if (tlsRotated) {
      this.#tls = dialTls(this.service, tls);
      for (const e of this.endpoints) retirePool(e);
    }
    const old = new Map(this.endpoints.map((e) => [e.id, e]));
    const next: Endpoint[] = [];
    const compact = upstream.endpoints.length > COMPACT_HISTOGRAMS_ABOVE;
    for (const spec of upstream.endpoints) {
      const kept = old.get(spec.id);
      if (kept && kept.sameTarget(spec)) {
        kept.weight = spec.weight;
        old.delete(spec.id);
        next.push(kept);
      } else {
        next.push(new Endpoint(spec, compact));
      }
    }
    for (const gone of old.values()) retirePool(gone);
    this.endpoints = next;
  }

  /** Stage 1: the balancer's choice among the endpoints not yet tried for this request. */
  pickEndpoint(tried?: readonly Endpoint[]): Endpoint | undefined {
    return this.balancer.pick(this.endpoints, tried);
  }

  /** Stage 2 (L4): one mTLS connection to `endpoint`. */
  dial(endpoint: Endpoint, cb: DialCallback): void {
    dialEndpoint(endpoint, this.#tls, this.#settings.connectTimeoutMs, true, cb);
  }

  /** Stage 2 (L7): the endpoint's keep-alive pool, made on first use with the current TLS settings. */
  poolFor(endpoint: Endpoint): EndpointPool {
    let pool = endpoint.agent as EndpointPool | undefined;
    if (!pool) {
      pool = new EndpointPool(endpoint, this.#tls, this.#settings);
      endpoint.agent = pool;
    }
    return pool;
  }

  /** Retires every pool (the cluster is going away). */
  close(): void {
    for (const e of this.endpoints) retirePool(e);
  }

  /** Destroys every pooled connection, in use or not (shutdown after the drain). */
  destroy(): void {
    for (const e of this.endpoints) {
      e.agent?.destroy();
      e.agent = undefined;
    }
  }

  toJSON(): Record<string, unknown> {
    return {
      protocol: this.protocol,
      loadBalancer: this.balancer.name,
      endpoints: Object.fromEntries(this.endpoints.map((e) => [e.id, e.toJSON()])),
    };
  }
}

function retirePool(e: Endpoint): void {
  if (e.agent instanceof EndpointPool) e.agent.retire();
  e.agent = undefined;
}

function dialTls(service: string, tls: ClientTls): DialTls {
  return {
    secureContext: tls.secureContext,
    // The server must be exactly the upstream service: servername is not a DNS name here.
    checkServerIdentity: cachedServerIdentityCheck({ trustDomain: tls.trustDomain, kind: 'svc', name: service }),
  };
}
