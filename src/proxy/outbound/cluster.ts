/**
 * One upstream as the outbound path sees it: its endpoints, its load balancer and the TLS
 * settings to reach it. The stages of the outbound pipeline work on a cluster:
 *
 *   L4: pickEndpoint (balancer) → dial (failover on connect failure) → byte pipe
 *   L7: the pipeline of ./http/ (route → split → balance → attempt), docs/DATAPLANE.md
 *
 * Nothing here knows about the inbound side.
 */
import type { SecureContext } from 'node:tls';
import { meshReason } from '../../errors/reasons.js';
import { cachedServerIdentityCheck } from '../identity-cache.js';
import type { ProxyProtocol, SnapshotUpstream } from '../snapshot.js';
import { createBalancer, type Balancer, type BalancerName, type Random } from './balancers.js';
import { dialEndpoint, type DialCallback, type DialTls } from './dial.js';
import { Endpoint } from './endpoint.js';
import { TlsSessions } from './tls-sessions.js';
import type { RevokedServers } from './revoked-servers.js';
import { EndpointClient, MAX_CONNECTIONS_PER_ENDPOINT, type ClientSettings } from './http/client.js';
import { performance } from 'node:perf_hooks';
import { CircuitBreaker } from './http/breaker.js';
import { RetryBudget } from './http/budget.js';
import { OutlierDetector } from './http/outlier.js';
import type { SharedPools } from './http/shared-pools.js';
import { DEFAULT_RESILIENCE, resolveResilience, type Resilience } from './http/resilience.js';

/** Above this many endpoints, endpoints get compact (packed) latency histograms. */
const COMPACT_HISTOGRAMS_ABOVE = 16;

export interface ClusterSettings extends ClientSettings {
  readonly random?: Random;
  /** The app's connections one outbound listener holds at most; more are closed as they come. */
  readonly maxAppConnections?: number;
}

/** This service's TLS material, shared by every cluster of one snapshot. */
export interface ClientTls {
  readonly secureContext: SecureContext;
  readonly trustDomain: string;
  /** The proxy's one list of revoked server leaves, updated in place by each push. */
  readonly revoked: RevokedServers;
}

export class Cluster {
  readonly service: string;
  readonly protocol: ProxyProtocol;
  /** Healthy endpoints, in snapshot order. Replaced (never mutated) on update, so a pick sees one consistent list. */
  endpoints: readonly Endpoint[] = [];
  /** The balancer of the upstream's own policy (the snapshot's `loadBalancer`): L4 and the default route use it. */
  balancer: Balancer<Endpoint>;
  /** Balancers of other policies a route or split asked for, each with its own state. */
  readonly #others = new Map<BalancerName, Balancer<Endpoint>>();
  #tls: DialTls;
  readonly #settings: ClusterSettings;
  /** Timeouts, retries, limits, ejection: the snapshot's `resilience` over the defaults. */
  resilience: Resilience;
  /** Retries to this upstream over the last window, against its requests. */
  budget: RetryBudget;
  /** In-flight requests and retries against the limits (kept across snapshots, limits updated). */
  readonly breaker: CircuitBreaker;
  /** Outlier ejection over `endpoints`: the balance stage picks from `outlier.available()`. */
  readonly outlier: OutlierDetector;
  /** The process's connect and idle timeouts stand in for the defaults (tests shorten them). */
  readonly #defaults: Resilience;
  /** The pools of a traffic policy's targets, shared by targets that reach the same instance; undefined: pools of its own. */
  readonly #pools: SharedPools | undefined;
  /** Reasons sent back to the caller, built once. */
  readonly reasons: {
    readonly noEndpoints: string;
    readonly connectFailure: string;
    readonly upstreamReset: string;
    readonly badResponse: string;
  };

  /** Instances the upstream's max_connections is shared across (see connectionsPerEndpoint). */
  #instances = 1;

  /**
   * `instances`: how many instances the upstream reaches in all, when this cluster holds only
   * some of them (a traffic policy's target); its own endpoints when absent.
   */
  constructor(
    upstream: SnapshotUpstream,
    tls: ClientTls,
    settings: ClusterSettings,
    pools?: SharedPools,
    instances?: number,
  ) {
    this.service = upstream.service;
    this.protocol = upstream.protocol;
    this.#settings = settings;
    this.#pools = pools;
    this.#defaults = {
      ...DEFAULT_RESILIENCE,
      connectTimeoutMs: settings.connectTimeoutMs,
      idleTimeoutMs: settings.idleTimeoutMs,
    };
    this.resilience = resolveResilience(upstream.resilience, this.#defaults);
    this.budget = new RetryBudget(this.resilience.retryBudget, performance.now());
    this.breaker = new CircuitBreaker(this.resilience.limits);
    this.outlier = new OutlierDetector(this.resilience.outlier);
    this.balancer = createBalancer<Endpoint>(upstream.loadBalancer, settings.random);
    this.#tls = dialTls(upstream.service, tls);
    this.reasons = {
      noEndpoints: meshReason('no-healthy-endpoints', upstream.service),
      connectFailure: meshReason('connect-failure', upstream.service),
      upstreamReset: meshReason('upstream-reset', upstream.service),
      badResponse: meshReason('upstream-bad-response', upstream.service),
    };
    this.update(upstream, tls, false, instances);
  }

  /**
   * Takes a newer snapshot of the same upstream. Endpoints that stay keep their pools and
   * counters; endpoints that go have their pools retired; with `tlsRotated` every pool is
   * retired so new connections present the new certificate, while open ones finish.
   */
  update(
    upstream: SnapshotUpstream,
    tls: ClientTls,
    tlsRotated: boolean,
    instances: number = upstream.endpoints.length,
  ): void {
    if (upstream.loadBalancer !== this.balancer.name)
      this.balancer = createBalancer<Endpoint>(upstream.loadBalancer, this.#settings.random);
    const before = this.resilience;
    const shareBefore = this.connectionsPerEndpoint;
    this.resilience = resolveResilience(upstream.resilience, this.#defaults);
    // Set on every update but the constructor's first (which makes the breaker after this).
    this.breaker.limits = this.resilience.limits;
    this.#instances = Math.max(1, instances);
    // Pools are made with their connect and idle timeouts and their share of max_connections:
    // new ones take the new values.
    const poolsChanged =
      before.connectTimeoutMs !== this.resilience.connectTimeoutMs ||
      before.idleTimeoutMs !== this.resilience.idleTimeoutMs ||
      shareBefore !== this.connectionsPerEndpoint;
    this.outlier.settings = this.resilience.outlier;
    if (tlsRotated) this.#tls = dialTls(this.service, tls);
    if (!sameFields(before.retryBudget, this.resilience.retryBudget))
      this.budget = new RetryBudget(this.resilience.retryBudget, performance.now());
    if (tlsRotated || poolsChanged) for (const e of this.endpoints) this.#retirePool(e);
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
    for (const gone of old.values()) this.#retirePool(gone);
    this.endpoints = next;
    this.outlier.setEndpoints(next, performance.now());
  }

  /**
   * Connections of one endpoint's pool. max_connections is the upstream's, across all its
   * instances (Envoy's cluster-wide limit, not a per-host one): each instance's pool gets an
   * equal share of it, at least one connection (as Envoy lets a picked host have one even past
   * the limit, so the total is at most max_connections, or the number of instances if that is
   * more), and at most the pool's own bound. A share that changes (another instance count or
   * limit) gives the pools new ones, while the old ones finish what they carry.
   */
  get connectionsPerEndpoint(): number {
    const share = Math.floor(this.breaker.limits.maxConnections / this.#instances);
    return Math.min(MAX_CONNECTIONS_PER_ENDPOINT, Math.max(1, share));
  }

  /** The balancer's choice among the endpoints not yet tried for this request (L4). */
  pickEndpoint(tried?: readonly Endpoint[]): Endpoint | undefined {
    return this.balancer.pick(this.endpoints, tried);
  }

  /** The balancer of `policy` on this cluster's endpoints (the L7 balance stage's input). */
  balancerFor(policy: BalancerName): Balancer<Endpoint> {
    if (policy === this.balancer.name) return this.balancer;
    let b = this.#others.get(policy);
    if (b === undefined) {
      b = createBalancer<Endpoint>(policy, this.#settings.random);
      this.#others.set(policy, b);
    }
    return b;
  }

  /** Stage 2 (L4): one mTLS connection to `endpoint`. */
  dial(endpoint: Endpoint, cb: DialCallback): void {
    dialEndpoint(endpoint, this.#tls, this.resilience.connectTimeoutMs, true, cb);
  }

  /** L7: the endpoint's keep-alive pool, made on first use with the current TLS settings. */
  clientFor(endpoint: Endpoint): EndpointClient {
    let client = endpoint.client;
    if (client === undefined) {
      const settings = {
        connectTimeoutMs: this.resilience.connectTimeoutMs,
        idleTimeoutMs: this.resilience.idleTimeoutMs,
        connections: this.connectionsPerEndpoint,
      };
      client =
        this.#pools === undefined
          ? new EndpointClient(endpoint, this.#tls, settings)
          : this.#pools.acquire(this.service, endpoint, this.#tls, settings);
      endpoint.client = client;
    }
    return client;
  }

  /** Retires every pool (the cluster is going away). */
  close(): void {
    for (const e of this.endpoints) this.#retirePool(e);
  }

  /** This cluster is done with the endpoint's pool: retired, or (shared) let go. */
  #retirePool(e: Endpoint): void {
    const client = e.client;
    if (client === undefined) return;
    e.client = undefined;
    if (this.#pools === undefined) client.retire();
    else this.#pools.release(client, e);
  }

  /** Destroys every pooled connection, in use or not (shutdown after the drain). */
  destroy(): void {
    for (const e of this.endpoints) {
      e.client?.destroy();
      e.client = undefined;
    }
  }

  toJSON(): Record<string, unknown> {
    return {
      protocol: this.protocol,
      loadBalancer: this.balancer.name,
      settings: settingsJSON(this.resilience),
      // Its share of the upstream's max_connections, per instance pool.
      connectionsPerEndpoint: this.connectionsPerEndpoint,
      endpoints: Object.fromEntries(this.endpoints.map((e) => [e.id, e.toJSON()])),
    };
  }
}

function dialTls(service: string, tls: ClientTls): DialTls {
  return {
    secureContext: tls.secureContext,
    // The server must be exactly the upstream service: servername is not a DNS name here.
    checkServerIdentity: cachedServerIdentityCheck({ trustDomain: tls.trustDomain, kind: 'svc', name: service }),
    // New with every TLS material: a ticket of the old certificate or trust domain is not reused.
    sessions: new TlsSessions(),
    revoked: tls.revoked,
  };
}

function sameFields<T extends object>(a: T, b: T): boolean {
  return Object.keys(a).every((k) => a[k as keyof T] === b[k as keyof T]);
}

/** The settings in force, as `GET /stats` shows them (sets as lists). */
function settingsJSON(r: Resilience): Record<string, unknown> {
  return {
    ...r,
    retry: { ...r.retry, retryOn: [...r.retry.retryOn], retryOnStatusCodes: [...r.retry.retryOnStatusCodes] },
  };
}
