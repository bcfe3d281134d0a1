/**
 * The service-definition file format: what a user writes in services.d/*.yaml or passes to
 * `meshctl register -f`. It is friendlier than the wire schema (snake_case keys, durations as
 * "10s", `SERVICE:LOCALPORT` upstreams, one key per check kind) but just as strict: unknown
 * keys are refused. Leaf rules (names, ports, tags, meta, bounds) are taken from the wire
 * schemas, and every converted registration is parsed with `serviceRegistrationSchema` too,
 * so a file and the API can never disagree about what is valid.
 *
 * Problems come back as issues with a path into the file's own structure (snake_case keys,
 * list indexes), so parse.ts can point at the line the user has to fix.
 */
import { z } from 'zod';
import {
  addressSchema,
  checkDefinitionSchema,
  NAME_RE,
  serviceRegistrationSchema,
  upstreamSchema,
  type CheckDefinition,
  type ServiceRegistration,
  type Upstream,
} from '../../api/schemas.js';
import { formatDuration, parseDuration } from '../../util/duration.js';

export type PathSegment = string | number;

export interface FormatIssue {
  /** Where in the file, e.g. ['service', 'upstreams', 1, 'local_port']. */
  path: PathSegment[];
  message: string;
  /** 'key' when the key itself is wrong (unknown key), so the locator points at the key, not its value. */
  at?: 'key';
}

export type FormatResult = { ok: true; services: ServiceRegistration[] } | { ok: false; issues: FormatIssue[] };

export const CHECK_KINDS = ['http', 'tcp', 'exec', 'ttl'] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

const W = serviceRegistrationSchema.shape;
const WC = checkDefinitionSchema.shape;
const WU = upstreamSchema.shape;

// ---------------------------------------------------------------------------------------------
// Messages: zod's defaults talk about types; these talk about what the user wrote.

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'empty (null)';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

function bound(word: 'at most' | 'at least', origin: string, n: number | bigint, inclusive = true): string {
  const limit = inclusive ? n : word === 'at most' ? Number(n) - 1 : Number(n) + 1;
  if (origin === 'array')
    return word === 'at most' ? `may have at most ${limit} items` : `needs at least ${limit} items`;
  if (origin === 'string')
    return limit === 1 && word === 'at least' ? 'must not be empty' : `must be ${word} ${limit} characters long`;
  return `must be ${word} ${limit}`;
}

/** Per-parse error map; messages set on a schema (like the name rule) still win. */
export const fileErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'is required';
      if (iss.expected === 'string' && (typeof iss.input === 'number' || typeof iss.input === 'boolean')) {
        return `must be a string, not ${describe(iss.input)}; quote it: "${String(iss.input)}"`;
      }
      return `must be ${EXPECTED[iss.expected] ?? iss.expected}, not ${describe(iss.input)}`;
    }
    case 'too_big':
      return bound('at most', iss.origin, iss.maximum, iss.inclusive);
    case 'too_small':
      return bound('at least', iss.origin, iss.minimum, iss.inclusive);
    case 'invalid_value':
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}, not ${describe(iss.input)}`;
    default:
      return undefined;
  }
};

// Every key the format knows, for "did you mean" on camelCase spellings of snake_case keys.
const KNOWN_KEYS = new Set<string>();

function unknownKeyMessage(key: string): string {
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return snake !== key && KNOWN_KEYS.has(snake)
    ? `unknown key '${key}' (did you mean '${snake}'?)`
    : `unknown key '${key}'`;
}

/** zod issues → file issues: one issue per unknown key, pointing at that key. */
function normalizeIssues(issues: readonly z.core.$ZodIssue[]): FormatIssue[] {
  const out: FormatIssue[] = [];
  for (const iss of issues) {
    const path = iss.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) out.push({ path: [...path, key], message: unknownKeyMessage(key), at: 'key' });
    } else if (iss.code === 'custom' && iss.params?.at === 'key') {
      out.push({ path, message: iss.message, at: 'key' });
    } else {
      out.push({ path, message: iss.message });
    }
  }
  return out;
}

type Ctx = z.core.$RefinementCtx;

function addIssues(ctx: Ctx, issues: FormatIssue[]): void {
  for (const i of issues)
    ctx.addIssue({ code: 'custom', message: i.message, path: i.path, ...(i.at && { params: { at: i.at } }) });
}

function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value written either as a string shorthand or as a mapping (a union would bury the real error). */
function stringOrMapping<S extends z.ZodType, O extends z.ZodType>(str: S, obj: O, what: string) {
  return z.unknown().transform((v, ctx): z.output<S> | z.output<O> => {
    const schema = typeof v === 'string' ? str : plainObject(v) ? obj : undefined;
    if (!schema) {
      ctx.addIssue({ code: 'custom', message: `must be ${what}, not ${describe(v)}` });
      return z.NEVER;
    }
    const r = schema.safeParse(v, { error: fileErrorMap });
    if (r.success) return r.data as z.output<S> | z.output<O>;
    addIssues(ctx, normalizeIssues(r.error.issues));
    return z.NEVER;
  });
}

/** Durations are strings with a unit; a bare number is refused because 10 could mean 10 ms or 10 s. */
function duration(bounds: z.ZodNumber) {
  const min = bounds.minValue ?? 0;
  const max = bounds.maxValue ?? Number.MAX_SAFE_INTEGER;
  return z.unknown().transform((v, ctx): number => {
    if (typeof v === 'number') {
      ctx.addIssue({ code: 'custom', message: `needs a unit: write "${v}s" or "${v}ms", not ${v}` });
      return z.NEVER;
    }
    if (typeof v !== 'string') {
      ctx.addIssue({ code: 'custom', message: `must be a duration like "10s", not ${describe(v)}` });
      return z.NEVER;
    }
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `${describe(v)} is not a duration: use a number with a unit (500ms, 10s, 5m, 24h)`,
      });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({
        code: 'custom',
        message: `must be between ${formatDuration(min)} and ${formatDuration(max)}, not ${v}`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

// ---------------------------------------------------------------------------------------------
// Upstreams: "db:15432" or { service, local_port, local_address?, load_balancer? }.

/** Parses the `SERVICE:LOCALPORT` shorthand (also what `--upstream` takes); a string result is the problem. */
export function parseUpstreamShorthand(text: string): { service: string; localPort: number } | string {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return `${describe(text)} is not SERVICE:LOCALPORT (e.g. "db:15432")`;
  const service = m[1]!;
  const port = Number(m[2]);
  if (!NAME_RE.test(service))
    return `'${service}' is not a valid service name: use 1-63 lowercase letters, digits, ".", "-" or "_"`;
  if (port < 1 || port > 65535) return `local port ${m[2]} is out of range 1-65535`;
  return { service, localPort: port };
}

type UpstreamInput = z.input<typeof upstreamSchema>;

const upstreamShorthand = z.string().transform((s, ctx): UpstreamInput => {
  const r = parseUpstreamShorthand(s);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

const upstreamMapping = z
  .object({
    service: WU.service,
    local_port: WU.localPort,
    local_address: addressSchema.optional(),
    load_balancer: WU.loadBalancer.unwrap().optional(),
  })
  .strict()
  .transform((u): UpstreamInput => {
    const out: UpstreamInput = { service: u.service, localPort: u.local_port };
    if (u.local_address !== undefined) out.localAddress = u.local_address;
    if (u.load_balancer !== undefined) out.loadBalancer = u.load_balancer;
    return out;
  });

const upstreamFile = stringOrMapping(
  upstreamShorthand,
  upstreamMapping,
  '"SERVICE:LOCALPORT" or a mapping with service and local_port',
);

// ---------------------------------------------------------------------------------------------
// Checks: exactly one of http:/tcp:/exec:/ttl: names the kind and its target.

type CheckInput = Omit<z.input<typeof checkDefinitionSchema>, 'id'> & { id?: string; kind: CheckKind };

const TCP_TARGET_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

function checkTarget(kind: Exclude<CheckKind, 'ttl'>, value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 2048) return 'must be at most 2048 characters long';
  if (kind === 'http') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return `${describe(value)} is not a URL (e.g. http://127.0.0.1:9000/health)`;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return `must be an http:// or https:// URL, not ${url.protocol}//`;
  } else if (kind === 'tcp') {
    const m = TCP_TARGET_RE.exec(value);
    const port = m ? Number(m[1]) : 0;
    if (!m || port < 1 || port > 65535) return `${describe(value)} is not HOST:PORT (e.g. 127.0.0.1:9000)`;
  }
  return undefined;
}

const checkFile = z
  .object({
    http: z.string().optional(),
    tcp: z.string().optional(),
    exec: z.string().optional(),
    ttl: duration(WC.ttlMs.unwrap()).optional(),
    id: WC.id.optional(),
    interval: duration(WC.intervalMs.unwrap()).optional(),
    timeout: duration(WC.timeoutMs.unwrap()).optional(),
    success_before_passing: WC.successBeforePassing.unwrap().optional(),
    failures_before_critical: WC.failuresBeforeCritical.unwrap().optional(),
  })
  .strict()
  .transform((c, ctx): CheckInput => {
    const kinds = CHECK_KINDS.filter((k) => c[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? 'a check needs one of http:, tcp:, exec: or ttl:'
            : `a check has one kind, this one has ${kinds.join(' and ')}`,
      });
      return z.NEVER;
    }
    const kind = kinds[0]!;
    const out: CheckInput = { kind, target: '' };
    if (kind === 'ttl') {
      // The service reports its own status; the agent only times it out.
      for (const key of ['interval', 'timeout'] as const) {
        if (c[key] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `a ttl check has no ${key}: the service reports its status itself`,
          });
      }
      out.ttlMs = c.ttl!;
    } else {
      const target = c[kind]!;
      const problem = checkTarget(kind, target);
      if (problem) {
        ctx.addIssue({ code: 'custom', path: [kind], message: problem });
        return z.NEVER;
      }
      out.target = target;
    }
    if (c.id !== undefined) out.id = c.id;
    if (c.interval !== undefined) out.intervalMs = c.interval;
    if (c.timeout !== undefined) out.timeoutMs = c.timeout;
    if (c.success_before_passing !== undefined) out.successBeforePassing = c.success_before_passing;
    if (c.failures_before_critical !== undefined) out.failuresBeforeCritical = c.failures_before_critical;
    return out;
  });

// ---------------------------------------------------------------------------------------------
// Services and the file root.

type ServiceInput = Omit<z.input<typeof serviceRegistrationSchema>, 'checks'> & { checks: CheckInput[] };

const serviceFile = z
  .object({
    name: W.name,
    id: W.id,
    address: W.address,
    port: W.port,
    mesh_port: W.meshPort,
    tags: W.tags.unwrap().optional(),
    meta: W.meta.unwrap().optional(),
    weight: W.weight.unwrap().optional(),
    protocol: W.protocol.unwrap().optional(),
    upstreams: z.array(upstreamFile).optional(),
    checks: z.array(checkFile).optional(),
    proxy: W.proxy.unwrap().optional(),
  })
  .strict()
  .transform((s): ServiceInput => {
    const out: ServiceInput = { name: s.name, port: s.port, checks: s.checks ?? [] };
    if (s.id !== undefined) out.id = s.id;
    if (s.address !== undefined) out.address = s.address;
    if (s.mesh_port !== undefined) out.meshPort = s.mesh_port;
    if (s.tags !== undefined) out.tags = s.tags;
    if (s.meta !== undefined) out.meta = s.meta;
    if (s.weight !== undefined) out.weight = s.weight;
    if (s.protocol !== undefined) out.protocol = s.protocol;
    if (s.upstreams !== undefined) out.upstreams = s.upstreams;
    if (s.proxy !== undefined) out.proxy = s.proxy;
    return out;
  });

/** Bounds the work one file can cause; a host has far fewer services than this. */
export const MAX_SERVICES_PER_FILE = 256;

export const definitionFileSchema = z
  .object({
    service: serviceFile.optional(),
    services: z.array(serviceFile).max(MAX_SERVICES_PER_FILE).optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.service === undefined && f.services === undefined) {
      ctx.addIssue({ code: 'custom', message: "the file must hold 'service:' (one service) or 'services:' (a list)" });
    } else if (f.service !== undefined && f.services !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['services'],
        params: { at: 'key' },
        message: "use either 'service:' or 'services:', not both",
      });
    }
  });

for (const shape of [upstreamMapping.in.shape, checkFile.in.shape, serviceFile.in.shape, definitionFileSchema.shape]) {
  for (const key of Object.keys(shape)) KNOWN_KEYS.add(key);
}

// ---------------------------------------------------------------------------------------------
// Conversion to the wire registration.

/** The key an instance is known by on its node (the registry defaults the id to the name). */
export function instanceId(reg: Pick<ServiceRegistration, 'id' | 'name'>): string {
  return reg.id ?? reg.name;
}

export function formatPath(path: readonly PathSegment[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

/** Checks without an id get `<service>-<kind>`, then `-2`, `-3` … for the same kind, skipping ids taken. */
function withCheckIds(
  service: string,
  checks: CheckInput[],
  at: PathSegment[],
  issues: FormatIssue[],
): { checks: CheckInput[]; generated: Set<number> } {
  const taken = new Map<string, number>();
  checks.forEach((c, i) => {
    if (c.id === undefined) return;
    const first = taken.get(c.id);
    if (first !== undefined)
      issues.push({
        path: [...at, 'checks', i, 'id'],
        message: `check id '${c.id}' is already used by checks[${first}]`,
      });
    else taken.set(c.id, i);
  });
  const perKind = new Map<CheckKind, number>();
  const generated = new Set<number>();
  const out = checks.map((c, i) => {
    if (c.id !== undefined) return c;
    let n = perKind.get(c.kind) ?? 0;
    let id: string;
    do {
      n += 1;
      id = n === 1 ? `${service}-${c.kind}` : `${service}-${c.kind}-${n}`;
    } while (taken.has(id));
    perKind.set(c.kind, n);
    taken.set(id, i);
    generated.add(i);
    if (!NAME_RE.test(id))
      issues.push({
        path: [...at, 'checks', i],
        message: `the check id made from the service name, '${id}', is too long: give this check an \`id\``,
      });
    return { ...c, id };
  });
  return { checks: out, generated };
}

const WIRE_TO_FILE: Record<string, string> = {
  meshPort: 'mesh_port',
  localPort: 'local_port',
  localAddress: 'local_address',
  loadBalancer: 'load_balancer',
  intervalMs: 'interval',
  timeoutMs: 'timeout',
  ttlMs: 'ttl',
  successBeforePassing: 'success_before_passing',
  failuresBeforeCritical: 'failures_before_critical',
};

/** A wire-schema issue path → the path of the node the user wrote. */
function wirePathToFile(path: readonly PathSegment[], checks: CheckInput[], generated: Set<number>): PathSegment[] {
  if (path[0] === 'checks' && typeof path[1] === 'number') {
    const i = path[1];
    if (path[2] === 'target') return ['checks', i, checks[i]?.kind ?? 'target'];
    if (path[2] === 'id' && generated.has(i)) return ['checks', i];
  }
  return path.map((p) => (typeof p === 'string' ? (WIRE_TO_FILE[p] ?? p) : p));
}

/** Validates a parsed file (the value of its YAML/JSON) and converts it to wire registrations. */
export function definitionsFromValue(value: unknown): FormatResult {
  if (!plainObject(value)) {
    return {
      ok: false,
      issues: [
        {
          path: [],
          message: `the file must be a mapping with 'service:' (one service) or 'services:' (a list), not ${describe(value)}`,
        },
      ],
    };
  }
  const r = definitionFileSchema.safeParse(value, { error: fileErrorMap });
  if (!r.success) return { ok: false, issues: normalizeIssues(r.error.issues) };
  const entries: [PathSegment[], ServiceInput][] =
    r.data.service !== undefined
      ? [[['service'], r.data.service]]
      : (r.data.services ?? []).map((s, i) => [['services', i], s]);

  const issues: FormatIssue[] = [];
  const services: ServiceRegistration[] = [];
  const seen = new Map<string, PathSegment[]>();
  for (const [at, svc] of entries) {
    const id = instanceId(svc);
    const first = seen.get(id);
    if (first) {
      issues.push({
        path: [...at, svc.id !== undefined ? 'id' : 'name'],
        message: `service id '${id}' is already defined at ${formatPath(first)} in this file: give one of them another \`id\``,
      });
    } else {
      seen.set(id, at);
    }
    const { checks, generated } = withCheckIds(svc.name, svc.checks, at, issues);
    const wire = serviceRegistrationSchema.safeParse({ ...svc, checks }, { error: fileErrorMap });
    if (wire.success) {
      services.push(wire.data);
    } else {
      for (const i of normalizeIssues(wire.error.issues)) {
        issues.push({ ...i, path: [...at, ...wirePathToFile(i.path, checks, generated)] });
      }
    }
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, services };
}

export type { CheckDefinition, ServiceRegistration, Upstream };
