/**
 * The service-definition file format: what a user writes in services.d/*.yaml or passes to
 * `meshctl register -f`. It is friendlier than the wire schema (snake_case keys, durations as
 * "10s", `SERVICE:LOCALPORT` upstreams, one key per check kind) but just as strict: unknown
 * keys are refused. Leaf rules (names, ports, tags, meta, bounds) are taken from the wire
 * schemas, check targets from the one target parser (checks/target.ts), and conversion.ts
 * parses every converted registration with `serviceRegistrationSchema` too, so a file, a flag
 * and the API can never disagree about what is valid. The wording is in messages.ts.
 */
import { z } from 'zod';
import {
  addressSchema,
  checkDefinitionSchema,
  NAME_RE,
  serviceRegistrationSchema,
  upstreamSchema,
} from '../../api/schemas.js';
import { formatDuration, parseDuration } from '../../util/duration.js';
import { parseCheckTarget } from '../checks/target.js';
import { addIssues, describe, fileErrorMap, normalizeIssues } from './messages.js';

export const CHECK_KINDS = ['http', 'tcp', 'exec', 'ttl'] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

const W = serviceRegistrationSchema.shape;
const WC = checkDefinitionSchema.shape;
const WU = upstreamSchema.shape;

/** Every key the format knows, for "did you mean" on camelCase spellings of snake_case keys (filled below). */
export const KNOWN_KEYS = new Set<string>();

export function plainObject(v: unknown): v is Record<string, unknown> {
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
    addIssues(ctx, normalizeIssues(r.error.issues, KNOWN_KEYS));
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

export type CheckInput = Omit<z.input<typeof checkDefinitionSchema>, 'id'> & { id?: string; kind: CheckKind };

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
      const target = parseCheckTarget(kind, c[kind]!);
      if (!target.ok) {
        ctx.addIssue({ code: 'custom', path: [kind], message: target.reason });
        return z.NEVER;
      }
      out.target = target.value;
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

export type ServiceInput = Omit<z.input<typeof serviceRegistrationSchema>, 'checks'> & { checks: CheckInput[] };

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
