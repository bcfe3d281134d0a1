/**
 * Validation by meaning, over the whole set of config entries a change would leave live:
 * split weights (two decimals, summing to 100), subsets that routes and splits name exist in
 * their service's resolver, a resolver's default subset exists, filters parse, regexes compile
 * with re2js (a linear-time engine, so no pattern can backtrack catastrophically), no cycle
 * through splitters, and no router or splitter on a service its defaults say is tcp.
 *
 * Checking the whole resulting set (not only the documents sent) is what makes a delete or an
 * edit that breaks another entry fail too, naming the entry it would break.
 */
import { RE2JS } from 're2js';
import type {
  ConfigEntry,
  HeaderMatch,
  ServiceResolver,
  ServiceRouter,
  ServiceSplitter,
} from '../api/config-entries.js';
import { entryRef } from '../api/config-entries.js';
import { FilterSyntaxError, parseFilter } from '../api/filter.js';

export interface ConfigIssue {
  /** The entry the problem is in (`service-splitter/api`). */
  ref: string;
  /** Dotted field path inside it. */
  path: string;
  reason: string;
  /** Set when the entry names another one (subset, splitter) that is missing: a delete then is "in use". */
  references?: string;
}

/** Compiles a regex with re2js; the error text when it does not compile. */
export function regexProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    return `does not compile as an RE2 regular expression (${(e as Error).message})`;
  }
}

/** Weight in hundredths, or undefined if it has more than two decimals. */
export function hundredths(w: number): number | undefined {
  const h = Math.round(w * 100);
  return Math.abs(w * 100 - h) < 1e-6 ? h : undefined;
}

export function validateConfigSet(entries: readonly ConfigEntry[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const byKind = <K extends ConfigEntry['kind']>(k: K) =>
    new Map(
      entries.filter((e): e is Extract<ConfigEntry, { kind: K }> => e.kind === k).map((e) => [e.name, e] as const),
    );
  const resolvers = byKind('service-resolver');
  const splitters = byKind('service-splitter');
  const defaults = byKind('service-defaults');

  const subsetRef = (ref: string, path: string, service: string, subset: string | undefined): void => {
    if (subset === undefined) return;
    const r = resolvers.get(service);
    if (!r) {
      issues.push({
        ref,
        path,
        reason: `subset "${subset}" needs a service-resolver ${service} that defines it, and there is none`,
        references: entryRef({ kind: 'service-resolver', name: service }),
      });
    } else if (!r.subsets || !Object.hasOwn(r.subsets, subset)) {
      issues.push({
        ref,
        path,
        reason: `subset "${subset}" is not defined by service-resolver ${service} (it defines: ${Object.keys(r.subsets ?? {}).join(', ') || 'none'})`,
        references: entryRef({ kind: 'service-resolver', name: service }),
      });
    }
  };

  for (const e of entries) {
    const ref = entryRef(e);
    switch (e.kind) {
      case 'service-resolver':
        checkResolver(e, ref, issues);
        break;
      case 'service-splitter':
        checkWeights(e, ref, issues);
        e.splits.forEach((s, i) => subsetRef(ref, `splits.${i}.service_subset`, s.service ?? e.name, s.service_subset));
        break;
      case 'service-router':
        checkRouterRegexes(e, ref, issues);
        e.routes.forEach((r, i) =>
          subsetRef(
            ref,
            `routes.${i}.destination.service_subset`,
            r.destination?.service ?? e.name,
            r.destination?.service_subset,
          ),
        );
        break;
      case 'service-intentions': {
        const seen = new Set<string>();
        e.sources.forEach((s, i) => {
          if (seen.has(s.name))
            issues.push({ ref, path: `sources.${i}.name`, reason: `source "${s.name}" is listed twice` });
          seen.add(s.name);
          s.permissions?.forEach((p, j) => {
            const base = `sources.${i}.permissions.${j}.http`;
            if (p.http.path_regex !== undefined) regex(ref, `${base}.path_regex`, p.http.path_regex, issues);
            headerRegexes(ref, `${base}.header`, p.http.header, issues);
          });
        });
        break;
      }
      case 'service-defaults':
        break;
    }
    if (e.kind === 'service-router' || e.kind === 'service-splitter') {
      const d = defaults.get(e.name);
      if (d?.protocol === 'tcp')
        issues.push({
          ref,
          path: 'kind',
          reason: `${e.kind} works on HTTP requests, but service-defaults ${e.name} says protocol tcp`,
          references: entryRef(d),
        });
    }
  }
  checkSplitterCycles(splitters, issues);
  return issues;
}

function regex(ref: string, path: string, pattern: string, issues: ConfigIssue[]): void {
  const p = regexProblem(pattern);
  if (p) issues.push({ ref, path, reason: p });
}

function headerRegexes(
  ref: string,
  base: string,
  headers: readonly HeaderMatch[] | undefined,
  issues: ConfigIssue[],
): void {
  headers?.forEach((h, k) => {
    if (h.regex !== undefined) regex(ref, `${base}.${k}.regex`, h.regex, issues);
  });
}

function checkRouterRegexes(e: ServiceRouter, ref: string, issues: ConfigIssue[]): void {
  e.routes.forEach((r, i) => {
    const http = r.match?.http;
    if (!http) return;
    const base = `routes.${i}.match.http`;
    if (http.path_regex !== undefined) regex(ref, `${base}.path_regex`, http.path_regex, issues);
    headerRegexes(ref, `${base}.header`, http.header, issues);
    http.query_param?.forEach((q, k) => {
      if (q.regex !== undefined) regex(ref, `${base}.query_param.${k}.regex`, q.regex, issues);
    });
  });
}

function checkResolver(e: ServiceResolver, ref: string, issues: ConfigIssue[]): void {
  for (const [name, s] of Object.entries(e.subsets ?? {})) {
    try {
      parseFilter(s.filter);
    } catch (err) {
      if (!(err instanceof FilterSyntaxError)) throw err;
      issues.push({ ref, path: `subsets.${name}.filter`, reason: `does not parse at ${err.message}` });
    }
  }
  if (e.default_subset !== undefined && !Object.hasOwn(e.subsets ?? {}, e.default_subset))
    issues.push({ ref, path: 'default_subset', reason: `subset "${e.default_subset}" is not in subsets` });
}

function checkWeights(e: ServiceSplitter, ref: string, issues: ConfigIssue[]): void {
  let sum = 0;
  let exact = true;
  e.splits.forEach((s, i) => {
    const h = hundredths(s.weight);
    if (h === undefined) {
      exact = false;
      issues.push({ ref, path: `splits.${i}.weight`, reason: `${s.weight} has more than two decimals` });
    } else sum += h;
  });
  if (exact && sum !== 10_000)
    issues.push({ ref, path: 'splits', reason: `weights sum to ${(sum / 100).toFixed(2)}, not 100` });
}

/**
 * A split to another service without a subset goes through that service's splitter (as in
 * Consul); splitters naming each other in a ring would never reach a resolver.
 */
function checkSplitterCycles(splitters: ReadonlyMap<string, ServiceSplitter>, issues: ConfigIssue[]): void {
  const next = (s: ServiceSplitter): string[] =>
    s.splits
      .filter((x) => x.service_subset === undefined && x.service !== undefined && x.service !== s.name)
      .map((x) => x.service!)
      .filter((n) => splitters.has(n));
  const done = new Set<string>();
  const reported = new Set<string>();
  const visit = (name: string, stack: string[]): void => {
    const at = stack.indexOf(name);
    if (at >= 0) {
      const ring = [...stack.slice(at), name];
      const key = [...ring.slice(0, -1)].sort().join(',');
      if (!reported.has(key)) {
        reported.add(key);
        issues.push({
          ref: `service-splitter/${ring[0]}`,
          path: 'splits',
          reason: `splitters form a cycle: ${ring.map((n) => `service-splitter ${n}`).join(' -> ')}`,
        });
      }
      return;
    }
    if (done.has(name)) return;
    for (const n of next(splitters.get(name)!)) visit(n, [...stack, name]);
    done.add(name);
  };
  for (const name of splitters.keys()) visit(name, []);
}
