/**
 * Keep-alive pools shared by the targets of one upstream's traffic policy. Each target (a
 * service, or one subset of it) is a Cluster of its own with its own endpoints, because its
 * balancer, breaker, ejection and figures are its own; but two targets that reach the same
 * instance — a split between subsets that overlap, a route to a subset the default split also
 * takes, the service beside one of its subsets — reach the same server. One pool per (target
 * service, host, port) is what that server sees: without sharing, a 90/10 split between two
 * subsets of one instance opens (and warms up, handshake and all) two sets of connections to it.
 *
 * The service is part of the key because a pool's connections are verified as that service
 * (the dial's SPIFFE identity check), so a target of another service never rides them. A pool
 * is shared only with holders of the same TLS material and pool settings; a holder with newer
 * ones (a rotation, changed timeouts) gets a new pool, and the old one closes when the last
 * of its holders lets go, after its requests in flight.
 *
 * What a pool's dials do (connections, TLS resumptions, connect failures) is counted on every
 * endpoint holding it, so each target's endpoint row shows the connections its requests ride,
 * whichever target opened them and whether that target is still there. Summed over targets a
 * shared connection counts once per holder; the pool's own count, once, is `pools()`.
 */
import type { TLSSocket } from 'node:tls';
import { ConnectionCounter, ReasonCounter, type BytesJson, type ConnectionsJson } from '../../stats.js';
import type { DialTarget, DialTls } from '../dial.js';
import type { Endpoint } from '../endpoint.js';
import { EndpointClient } from './client.js';

/** What a pool is made with: shared only between holders asking for the same. */
export interface PoolSettings {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connections: number;
}

/** One pool as `GET /stats` shows it (`policy.pools`): its connections once, and who holds it. */
export interface PoolJson {
  service: string;
  address: string;
  port: number;
  /** The holders' names (policy targets, `api/v2`), sorted. */
  targets: string[];
  /** False for an older pool (other TLS material or settings) finishing with its last holders. */
  current: boolean;
  connections: ConnectionsJson;
  bytes: BytesJson;
  tlsResumed: number;
  connectFailures: Record<string, number>;
}

/** A pool and its holders; its dials count here once and on each holder. */
class Shared implements DialTarget {
  readonly client: EndpointClient;
  readonly holders = new Set<Endpoint>();
  readonly connections = new ConnectionCounter();
  readonly connectFailures = new ReasonCounter();
  tlsResumed = 0;
  readonly id: string;
  readonly host: string;
  readonly port: number;

  constructor(
    readonly key: string,
    readonly service: string,
    endpoint: Endpoint,
    readonly tls: DialTls,
    readonly settings: PoolSettings,
  ) {
    this.id = endpoint.id;
    this.host = endpoint.host;
    this.port = endpoint.port;
    this.client = new EndpointClient(this, tls, settings);
  }

  connected(socket: TLSSocket, resumed: boolean): void {
    if (resumed) this.tlsResumed += 1;
    this.connections.track(socket);
    for (const h of this.holders) h.connected(socket, resumed);
  }

  failed(reason: string): void {
    this.connectFailures.add(reason);
    for (const h of this.holders) h.failed(reason);
  }

  /** A new holder counts the connections already open, which its requests ride from now on. */
  hold(endpoint: Endpoint): void {
    if (this.holders.has(endpoint)) return;
    this.holders.add(endpoint);
    for (const socket of this.connections.open) endpoint.connections.track(socket);
  }
}

function samePool(s: Shared, tls: DialTls, settings: PoolSettings): boolean {
  return (
    s.tls.secureContext === tls.secureContext &&
    s.settings.connectTimeoutMs === settings.connectTimeoutMs &&
    s.settings.idleTimeoutMs === settings.idleTimeoutMs &&
    s.settings.connections === settings.connections
  );
}

export class SharedPools {
  /** The pool newcomers get, per `service host port`. */
  readonly #current = new Map<string, Shared>();
  /** Every pool still held, current or not. */
  readonly #held = new Map<EndpointClient, Shared>();

  /** Pools held now (stats, tests). */
  get size(): number {
    return this.#held.size;
  }

  /**
   * The pool of `service` at the endpoint's address, held by `endpoint` (one target's Endpoint
   * for the instance): the one there is, or a new one. Pair with release(client, endpoint).
   */
  acquire(service: string, endpoint: Endpoint, tls: DialTls, settings: PoolSettings): EndpointClient {
    const key = `${service} ${endpoint.host} ${endpoint.port}`;
    let s = this.#current.get(key);
    if (s === undefined || !samePool(s, tls, settings)) {
      // An older pool (other TLS material or settings) stays with its holders until they let go.
      s = new Shared(key, service, endpoint, tls, settings);
      this.#current.set(key, s);
      this.#held.set(s.client, s);
    }
    s.hold(endpoint);
    return s.client;
  }

  /** `endpoint` lets go; the last holder retires the pool (requests in flight finish, then it closes). */
  release(client: EndpointClient, endpoint: Endpoint): void {
    const s = this.#held.get(client);
    if (s === undefined) return;
    s.holders.delete(endpoint);
    if (s.holders.size > 0) return;
    this.#held.delete(client);
    if (this.#current.get(s.key) === s) this.#current.delete(s.key);
    client.retire();
  }

  /** Every pool held, each once; `nameOf` names a holder (its target), undefined to leave it out. */
  pools(nameOf: (holder: Endpoint) => string | undefined): PoolJson[] {
    return [...this.#held.values()].map((s) => ({
      service: s.service,
      address: s.host,
      port: s.port,
      targets: [...s.holders]
        .map(nameOf)
        .filter((n): n is string => n !== undefined)
        .sort(),
      current: this.#current.get(s.key) === s,
      connections: s.connections.connections(),
      bytes: s.connections.bytes(),
      tlsResumed: s.tlsResumed,
      connectFailures: s.connectFailures.toJSON(),
    }));
  }

  /** Every pooled connection closes now, in use or not (shutdown after the drain). */
  destroy(): void {
    for (const client of this.#held.keys()) client.destroy();
    this.#held.clear();
    this.#current.clear();
  }
}
