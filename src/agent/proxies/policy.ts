/**
 * Compiles the config entries that concern one upstream into the proxy snapshot's `policy`
 * (pure: no I/O). The chain router → splitter → resolver is flattened here, so a sidecar
 * gets a route table whose every route ends in weighted targets (service + subset), each with
 * its own balancer and its own list of healthy instances; the proxy never walks entries.
 *
 * No router, splitter, resolver or default balancer for the upstream means no `policy`: the
 * sidecar then behaves exactly as before config entries existed.
 */
import type {
  ConfigEntry,
  HashPolicy,
  HeaderModifiers,
  LoadBalancer,
  ServiceResolver,
} from '../../api/config-entries.js';
import type { InstanceView } from '../../api/schemas.js';
import { matchesFilter, parseFilter, type FilterExpr } from '../../api/filter.js';
import { compileRouteResilience } from './resilience.js';
import type {
  SnapshotHashPolicy,
  SnapshotHeaderMods,
  SnapshotLoadBalancer,
  SnapshotPolicy,
  SnapshotRoute,
  SnapshotSplit,
  SnapshotTarget,
} from '../../proxy/snapshot.js';

/** Entries by `kind/name`, as the agent's config watch keeps them. */
export type EntryIndex = ReadonlyMap<string, ConfigEntry>;

export function indexEntries(entries: readonly ConfigEntry[]): Map<string, ConfigEntry> {
  return new Map(entries.map((e) => [`${e.kind}/${e.name}`, e]));
}

function get<K extends ConfigEntry['kind']>(
  idx: EntryIndex,
  kind: K,
  name: string,
): Extract<ConfigEntry, { kind: K }> | undefined {
  return idx.get(`${kind}/${name}`) as Extract<ConfigEntry, { kind: K }> | undefined;
}

/** Every service whose instances the upstream's policy may send to (the upstream itself first). */
export function policyServices(upstream: string, idx: EntryIndex): string[] {
  const out = new Set<string>([upstream]);
  const visit = (svc: string, depth: number): void => {
    if (depth > 16) return;
    for (const s of get(idx, 'service-splitter', svc)?.splits ?? []) {
      const t = s.service ?? svc;
      if (!out.has(t)) {
        out.add(t);
        visit(t, depth + 1);
      }
    }
  };
  for (const r of get(idx, 'service-router', upstream)?.routes ?? []) {
    const d = r.destination?.service ?? upstream;
    if (!out.has(d)) out.add(d);
    visit(d, 1);
  }
  visit(upstream, 0);
  return [...out];
}

export interface CompileInputs {
  upstream: string;
  /** The balancer the registration names for this upstream (used when no entry says one). */
  registrationLb: SnapshotLoadBalancer['policy'];
  entries: EntryIndex;
  instancesOf: (service: string) => InstanceView[] | undefined;
  /** The endpoint id the snapshot uses for an instance (unique per upstream). */
  endpointId: (i: InstanceView) => string;
}

export function compilePolicy(i: CompileInputs): SnapshotPolicy | undefined {
  const { upstream, entries } = i;
  const router = get(entries, 'service-router', upstream);
  const splitter = get(entries, 'service-splitter', upstream);
  const resolver = get(entries, 'service-resolver', upstream);
  const defaultsLb = get(entries, 'service-defaults', upstream)?.load_balancer;
  if (!router && !splitter && !resolver && !defaultsLb) return undefined;

  const targets = new Map<string, SnapshotTarget>();
  const filters = new Map<string, FilterExpr>();

  const target = (service: string, subset: string | undefined): string => {
    const name = subset ? `${service}/${subset}` : service;
    if (targets.has(name)) return name;
    const res = get(entries, 'service-resolver', service);
    const sub = subset ? res?.subsets?.[subset] : undefined;
    const lb =
      sub?.load_balancer ??
      res?.load_balancer ??
      get(entries, 'service-defaults', service)?.load_balancer ??
      (service === upstream ? { policy: i.registrationLb } : { policy: 'round_robin' as const });
    let f: FilterExpr | undefined;
    if (sub) {
      f = filters.get(sub.filter) ?? parseFilter(sub.filter);
      filters.set(sub.filter, f);
    }
    const endpoints = (i.instancesOf(service) ?? [])
      .filter((x) => x.meshPort !== undefined && x.status !== 'critical')
      .filter((x) => !sub?.only_passing || x.status === 'passing')
      .filter((x) => !f || matchesFilter(f, { meta: x.meta, tags: x.tags }))
      .map((x) => ({ id: i.endpointId(x), node: x.node, address: x.address, port: x.meshPort!, weight: x.weight }));
    targets.set(name, { name, service, ...(subset ? { subset } : {}), loadBalancer: compileLb(lb), endpoints });
    return name;
  };

  const defaultTarget = (service: string, res: ServiceResolver | undefined): string =>
    target(service, res?.default_subset);

  /** A service's splits, flattened: nested splitters multiply their weights. */
  const splitsOf = (service: string, share: number, seen: ReadonlySet<string>): SnapshotSplit[] => {
    const sp = seen.has(service) ? undefined : get(entries, 'service-splitter', service);
    if (!sp) return [{ weight: share, target: defaultTarget(service, get(entries, 'service-resolver', service)) }];
    const next = new Set(seen).add(service);
    return sp.splits
      .filter((s) => s.weight > 0)
      .flatMap((s) => {
        const w = (share * s.weight) / 100;
        const svc = s.service ?? service;
        const inner: SnapshotSplit[] = s.service_subset
          ? [{ weight: w, target: target(svc, s.service_subset) }]
          : svc === service
            ? [{ weight: w, target: defaultTarget(svc, get(entries, 'service-resolver', svc)) }]
            : splitsOf(svc, w, next);
        return inner.map((x) => withHeaders(x, s.request_headers, s.response_headers));
      });
  };

  const stickyFor = (service: string): SnapshotHashPolicy[] | undefined => {
    if (!get(entries, 'service-splitter', service)?.sticky) return undefined;
    const hp = get(entries, 'service-resolver', service)?.load_balancer?.hash_policies;
    return hp ? hp.map(compileHash) : [{ sourceIp: true }];
  };

  const routes: SnapshotRoute[] = [];
  router?.routes.forEach((r, n) => {
    const dest = r.destination?.service ?? upstream;
    const splits = r.destination?.service_subset
      ? [{ weight: 100, target: target(dest, r.destination.service_subset) }]
      : splitsOf(dest, 100, new Set());
    const http = r.match?.http;
    const sticky = r.destination?.service_subset ? undefined : stickyFor(dest);
    routes.push({
      name: `route ${n + 1} of service-router ${upstream}`,
      ...(http ? { match: compileMatch(http) } : {}),
      ...(r.destination?.prefix_rewrite ? { prefixRewrite: r.destination.prefix_rewrite } : {}),
      ...mods('requestHeaders', r.destination?.request_headers),
      ...mods('responseHeaders', r.destination?.response_headers),
      ...(sticky ? { stickyHash: sticky } : {}),
      splits,
      ...withResilience(compileRouteResilience(r.destination)),
    });
  });
  // What no route matches: the upstream's splitter, else its resolver's default subset.
  const sticky = stickyFor(upstream);
  routes.push({
    name: splitter
      ? `service-splitter ${upstream}`
      : resolver
        ? `service-resolver ${upstream}`
        : `service-defaults ${upstream}`,
    ...(sticky ? { stickyHash: sticky } : {}),
    splits: splitsOf(upstream, 100, new Set()),
  });
  return { routes, targets: [...targets.values()] };
}

function withResilience(r: SnapshotRoute['resilience']): Pick<SnapshotRoute, 'resilience'> {
  return r === undefined ? {} : { resilience: r };
}

function withHeaders(
  s: SnapshotSplit,
  req: HeaderModifiers | undefined,
  res: HeaderModifiers | undefined,
): SnapshotSplit {
  return { ...s, ...mods('requestHeaders', req), ...mods('responseHeaders', res) };
}

function mods<K extends string>(key: K, m: HeaderModifiers | undefined): Partial<Record<K, SnapshotHeaderMods>> {
  if (!m || (!m.add && !m.set && !m.remove)) return {};
  return {
    [key]: {
      ...(m.add ? { add: m.add } : {}),
      ...(m.set ? { set: m.set } : {}),
      ...(m.remove ? { remove: m.remove } : {}),
    },
  } as Partial<Record<K, SnapshotHeaderMods>>;
}

function compileHash(h: HashPolicy): SnapshotHashPolicy {
  return h.source_ip
    ? { sourceIp: true, ...(h.terminal ? { terminal: true } : {}) }
    : { field: h.field!, fieldValue: h.field_value!, ...(h.terminal ? { terminal: true } : {}) };
}

function compileLb(lb: LoadBalancer | { policy: SnapshotLoadBalancer['policy'] }): SnapshotLoadBalancer {
  const full = lb as LoadBalancer;
  return {
    policy: lb.policy,
    ...(full.least_request_config ? { choiceCount: full.least_request_config.choice_count } : {}),
    ...(full.ring_hash_config?.minimum_ring_size ? { minRingSize: full.ring_hash_config.minimum_ring_size } : {}),
    ...(full.ring_hash_config?.maximum_ring_size ? { maxRingSize: full.ring_hash_config.maximum_ring_size } : {}),
    ...(full.hash_policies ? { hashPolicies: full.hash_policies.map(compileHash) } : {}),
  };
}

type HttpMatch = NonNullable<
  NonNullable<NonNullable<import('../../api/config-entries.js').ServiceRoute['match']>['http']>
>;

function compileMatch(m: HttpMatch): NonNullable<SnapshotRoute['match']> {
  return {
    ...(m.path_exact !== undefined ? { pathExact: m.path_exact } : {}),
    ...(m.path_prefix !== undefined ? { pathPrefix: m.path_prefix } : {}),
    ...(m.path_regex !== undefined ? { pathRegex: m.path_regex } : {}),
    ...(m.methods ? { methods: m.methods } : {}),
    ...(m.header ? { headers: m.header.map((h) => ({ ...h })) } : {}),
    ...(m.query_param ? { query: m.query_param.map((q) => ({ ...q })) } : {}),
  };
}
