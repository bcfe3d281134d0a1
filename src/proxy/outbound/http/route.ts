/**
 * Stage 1, route: which route of the upstream a request takes, by its request line and
 * headers (never its body). The first route that matches wins. An upstream without traffic
 * policy has one route that matches everything and sends all of it to the upstream's own
 * cluster; a service-router fills the table with path, method, header and query matches, each
 * with its own splits, prefix rewrite and header changes (./policy.ts builds it).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SnapshotRouteResilience } from '../../snapshot.js';
import type { Cluster } from '../cluster.js';
import type { RequestHash } from './hash.js';
import type { HeaderEdit } from './header-mods.js';
import type { Random } from '../balancers.js';
import { split, type SplitTarget } from './split.js';

/** What a route may look at. */
export interface RouteRequest {
  readonly method: string;
  /** The request target as the app sent it (path and query). */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The app's address (hash policy `source_ip`). */
  readonly source?: string | undefined;
}

export interface Route {
  /** Names the route in reasons and logs (`route 2 of service-router api`). */
  readonly name: string;
  matches(req: RouteRequest): boolean;
  /** Where matching requests go; at least one target. */
  readonly splits: readonly SplitTarget[];
  /** The route's own timeouts and retries (service-router), over its upstream's. */
  readonly resilience?: SnapshotRouteResilience;
  /** The request target to send (a `prefix_rewrite`): absent, it goes as it came. */
  readonly rewrite?: (target: string) => string;
  readonly requestHeaders?: HeaderEdit;
  readonly responseHeaders?: HeaderEdit;
  /** Pick the split by this hash rather than at random (a sticky splitter). */
  readonly stickyHash?: RequestHash;
}

/** An upstream's routes in order. */
export interface RouteTable {
  readonly routes: readonly Route[];
}

const everything = (): boolean => true;

/** The table of an upstream without traffic policy: one route, all of it to `cluster`, by its own balancer. */
export function defaultRoutes(cluster: Cluster): RouteTable {
  return {
    routes: [{ name: 'default', matches: everything, splits: [{ weight: 1, cluster, balancer: cluster.balancer }] }],
  };
}

/** The first route that matches, or undefined (the caller answers: no route). */
export function route(table: RouteTable, req: RouteRequest): Route | undefined {
  const routes = table.routes;
  for (let i = 0; i < routes.length; i++) if (routes[i]!.matches(req)) return routes[i];
  return undefined;
}

/** The route's target for this request: by the route's sticky hash when it has one, else at random by weight. */
export function pickTarget(r: Route, req: RouteRequest, random: Random): SplitTarget | undefined {
  const sticky = r.stickyHash === undefined ? undefined : r.stickyHash(req);
  return split(r.splits, random, sticky === undefined ? undefined : sticky / 4294967296);
}
