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
 * A pool dials with the endpoint and TLS settings of the target that made it, so its mesh
 * connections (and TLS resumptions, connect failures) are counted on that target's endpoint:
 * counted once, not once per target.
 */
import type { DialTls } from '../dial.js';
import type { Endpoint } from '../endpoint.js';
import { EndpointClient } from './client.js';

/** What a pool is made with: shared only between holders asking for the same. */
export interface PoolSettings {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connections: number;
}

interface Shared {
  readonly key: string;
  readonly client: EndpointClient;
  readonly tls: DialTls;
  readonly settings: PoolSettings;
  holders: number;
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

  /** The pool of `service` at the endpoint's address: the one there is, or a new one. Pair with release(). */
  acquire(service: string, endpoint: Endpoint, tls: DialTls, settings: PoolSettings): EndpointClient {
    const key = `${service} ${endpoint.host} ${endpoint.port}`;
    let s = this.#current.get(key);
    if (s === undefined || !samePool(s, tls, settings)) {
      // An older pool (other TLS material or settings) stays with its holders until they let go.
      s = { key, client: new EndpointClient(endpoint, tls, settings), tls, settings, holders: 0 };
      this.#current.set(key, s);
      this.#held.set(s.client, s);
    }
    s.holders += 1;
    return s.client;
  }

  /** One holder lets go; the last one retires the pool (requests in flight finish, then it closes). */
  release(client: EndpointClient): void {
    const s = this.#held.get(client);
    if (s === undefined) return;
    s.holders -= 1;
    if (s.holders > 0) return;
    this.#held.delete(client);
    if (this.#current.get(s.key) === s) this.#current.delete(s.key);
    client.retire();
  }

  /** Every pooled connection closes now, in use or not (shutdown after the drain). */
  destroy(): void {
    for (const client of this.#held.keys()) client.destroy();
    this.#held.clear();
    this.#current.clear();
  }
}
