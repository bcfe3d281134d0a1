/**
 * An upstream's traffic policy in the sidecar: the snapshot's `upstreams[].policy` (compiled by
 * the agent from service-router, service-splitter and service-resolver entries) turned into the
 * pipeline's RouteTable. Each policy target (a service, or one subset of it) is a Cluster of its
 * own, with its own endpoints, balancer and figures; a newer snapshot updates them in place
 * (pools, balancer state and counters stay while the target and its balancer do). The targets'
 * keep-alive pools are shared: one per (service, host, port), whichever targets reach it.
 *
 * An upstream without `policy` has no UpstreamPolicy: the forwarder uses defaultRoutes(), which
 * is exactly the behaviour from before config entries.
 */
import type { SnapshotLoadBalancer, SnapshotPolicy, SnapshotTarget, SnapshotUpstream } from '../../snapshot.js';
import { compileMatch, rewritePrefix } from '../../http/match.js';
import { Traffic } from '../../traffic.js';
import { createBalancer, type Balancer } from '../balancers.js';
import { Cluster, type ClientTls, type ClusterSettings } from '../cluster.js';
import type { Endpoint } from '../endpoint.js';
import { compileHash, type RequestHash } from './hash.js';
import { compileHeaderMods } from './header-mods.js';
import { SharedPools } from './shared-pools.js';
import { routeSettings } from './resilience.js';
import type { Route, RouteTable } from './route.js';
import type { SplitTarget } from './split.js';

/** One policy target as the sidecar holds it across snapshots. */
export interface PolicyTarget {
  readonly name: string;
  readonly service: string;
  readonly subset: string | undefined;
  readonly cluster: Cluster;
  balancer: Balancer<Endpoint>;
  /** The balancer's spec as last built (a changed spec makes a new balancer). */
  lbKey: string;
  hash: RequestHash | undefined;
  /** Requests that went to this target, and how they ended (per-subset figures). */
  readonly traffic: Traffic;
}

function targetUpstream(t: SnapshotTarget, u: SnapshotUpstream): SnapshotUpstream {
  // The cluster's own balancer is unused under a policy (the target's is the input of the
  // balance stage); round_robin keeps its construction cheap.
  return {
    service: t.service,
    protocol: 'http',
    localAddress: u.localAddress,
    localPort: 0,
    loadBalancer: 'round_robin',
    endpoints: t.endpoints,
    // The upstream's timeouts, limits and ejection settings hold for each of its targets.
    ...(u.resilience ? { resilience: u.resilience } : {}),
  };
}

function lbKey(lb: SnapshotLoadBalancer): string {
  return JSON.stringify(lb);
}

export class UpstreamPolicy {
  readonly #settings: ClusterSettings;
  readonly #targets = new Map<string, PolicyTarget>();
  /** One pool per (target service, host, port), whichever targets reach it (./shared-pools.ts). */
  readonly #pools = new SharedPools();
  #table: RouteTable = { routes: [] };

  constructor(u: SnapshotUpstream, tls: ClientTls, settings: ClusterSettings) {
    this.#settings = settings;
    this.update(u, tls, false);
  }

  get table(): RouteTable {
    return this.#table;
  }

  /** The targets in snapshot order (stats, metrics). */
  targets(): Iterable<PolicyTarget> {
    return this.#targets.values();
  }

  /** Takes a newer snapshot of the upstream (which has a `policy`). */
  update(u: SnapshotUpstream, tls: ClientTls, tlsRotated: boolean): void {
    const p = u.policy as SnapshotPolicy;
    const keep = new Set<string>();
    // max_connections is the upstream's across every instance its targets reach (once each: a
    // pool is shared by the targets that reach one instance), so each target's pools get a share of it.
    const instances = new Set(p.targets.flatMap((t) => t.endpoints.map((e) => `${t.service} ${e.address} ${e.port}`)))
      .size;
    for (const t of p.targets) {
      keep.add(t.name);
      const spec = targetUpstream(t, u);
      const key = lbKey(t.loadBalancer);
      let s = this.#targets.get(t.name);
      if (s === undefined) {
        s = {
          name: t.name,
          service: t.service,
          subset: t.subset,
          cluster: new Cluster(spec, tls, this.#settings, this.#pools, instances),
          balancer: createBalancer<Endpoint>(t.loadBalancer, this.#settings.random),
          lbKey: key,
          hash: compileHash(t.loadBalancer.hashPolicies),
          traffic: new Traffic(),
        };
        this.#targets.set(t.name, s);
      } else {
        s.cluster.update(spec, tls, tlsRotated, instances);
        if (s.lbKey !== key) {
          s.balancer = createBalancer<Endpoint>(t.loadBalancer, this.#settings.random);
          s.lbKey = key;
          s.hash = compileHash(t.loadBalancer.hashPolicies);
        }
      }
    }
    for (const [name, s] of this.#targets) {
      if (keep.has(name)) continue;
      s.cluster.close();
      this.#targets.delete(name);
    }
    this.#table = buildTable(p, this.#targets);
  }

  /** Retires every target's pools (the policy or the listener goes away). */
  close(): void {
    for (const s of this.#targets.values()) s.cluster.close();
  }

  /** Destroys every pooled connection (shutdown after the drain). */
  destroy(): void {
    for (const s of this.#targets.values()) s.cluster.destroy();
    this.#pools.destroy();
  }

  /** Pools held by the targets (each shared by every target reaching its instance). */
  get pools(): number {
    return this.#pools.size;
  }

  toJSON(): Record<string, unknown> {
    const holders = new Map<Endpoint, string>();
    for (const t of this.#targets.values()) for (const e of t.cluster.endpoints) holders.set(e, t.name);
    return {
      routes: this.#table.routes.map((r) => ({
        name: r.name,
        splits: r.splits.map((s) => ({ target: s.name, weight: s.weight })),
      })),
      targets: Object.fromEntries(
        [...this.#targets.values()].map((t) => [
          t.name,
          {
            service: t.service,
            ...(t.subset ? { subset: t.subset } : {}),
            loadBalancer: t.balancer.name,
            requests: t.traffic.requests,
            responses: t.traffic.allResponses(),
            meshErrors: t.traffic.meshErrors.toJSON(),
            // A pool shared with other targets shows here too (see `pools`, where it counts once).
            endpoints: Object.fromEntries(t.cluster.endpoints.map((e) => [e.id, e.toJSON()])),
          },
        ]),
      ),
      pools: this.#pools.pools((holder) => holders.get(holder)),
    };
  }
}

/**
 * The snapshot's routes as the pipeline's table, over the sidecar's targets (call it after the
 * targets' clusters took the push: a route's settings are merged over theirs here).
 */
export function buildTable(p: SnapshotPolicy, targets: ReadonlyMap<string, PolicyTarget>): RouteTable {
  const routes = p.routes.map((r): Route => {
    const splits = r.splits.map((s): SplitTarget => {
      const t = targets.get(s.target)!;
      const requestHeaders = compileHeaderMods(s.requestHeaders);
      const responseHeaders = compileHeaderMods(s.responseHeaders);
      return {
        weight: s.weight,
        cluster: t.cluster,
        balancer: t.balancer,
        name: t.name,
        traffic: t.traffic,
        ...(t.hash ? { hash: t.hash } : {}),
        ...(requestHeaders ? { requestHeaders } : {}),
        ...(responseHeaders ? { responseHeaders } : {}),
        // The table is rebuilt after every push has updated the targets' clusters: their settings are current.
        ...(r.resilience ? { settings: routeSettings(t.cluster.resilience, r.resilience) } : {}),
      };
    });
    const prefix = r.match?.pathPrefix ?? r.match?.pathExact;
    const to = r.prefixRewrite;
    const requestHeaders = compileHeaderMods(r.requestHeaders);
    const responseHeaders = compileHeaderMods(r.responseHeaders);
    const stickyHash = compileHash(r.stickyHash);
    return {
      name: r.name,
      matches: compileMatch(r.match),
      splits,
      ...(prefix !== undefined && to !== undefined
        ? { rewrite: (path: string) => rewritePrefix(path, prefix, to) }
        : {}),
      ...(requestHeaders ? { requestHeaders } : {}),
      ...(responseHeaders ? { responseHeaders } : {}),
      ...(stickyHash ? { stickyHash } : {}),
      ...(r.resilience ? { resilience: r.resilience } : {}),
    };
  });
  return { routes };
}
