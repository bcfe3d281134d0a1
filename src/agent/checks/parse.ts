/**
 * Check specs, as written on the command line (`--check http://127.0.0.1:9000/health`) and
 * in service definition files, turned into `CheckDefinition`s:
 *
 *   http://host[:port]/path, https://…   HTTP GET
 *   tcp://host:port, tcp://[::1]:port    TCP connect
 *   exec:'command line', exec:command    shell command (exit 0 / 1 / other)
 *   ttl:30s                              reported by `meshctl check pass|warn|fail`
 *
 * Every refusal is a MESH_ERR_INVALID_ARGUMENT whose message quotes the spec.
 */
import { z } from 'zod';
import { checkDefinitionSchema, nameSchema, type CheckDefinition } from '../../api/schemas.js';
import { MeshError } from '../../errors/index.js';
import { formatDuration, parseDuration } from '../../util/duration.js';
import type { CheckKind } from './types.js';
import { parseCheckTarget, parseTcpTarget } from './target.js';

/** Settings shared by the checks of one command or file; a spec object may override them. */
export interface CheckSpecOptions {
  /** How often to run: a duration ("10s") or milliseconds. */
  interval?: string | number;
  /** How long one run may take: a duration ("2s") or milliseconds. */
  timeout?: string | number;
  successBeforePassing?: number | string;
  failuresBeforeCritical?: number | string;
}

/** A check as a definition file may write it: a spec string, or an object with one kind key. */
export interface CheckSpecObject extends CheckSpecOptions {
  id?: string;
  spec?: string;
  http?: string;
  tcp?: string;
  exec?: string;
  ttl?: string | number;
}

export type CheckSpecInput = string | CheckSpecObject;

/** What a spec string alone says: the kind and its target (and the TTL of a TTL check). */
export interface ParsedSpec {
  kind: CheckKind;
  target: string;
  ttlMs?: number;
}

const SPEC_HINT = "Write a check as http://host:port/path, https://..., tcp://host:port, exec:'command' or ttl:30s.";

const durationInput = z.union([z.string(), z.number()]);
const countInput = z.union([z.string(), z.number()]);
const specObjectSchema = z
  .object({
    id: z.string().optional(),
    spec: z.string().optional(),
    http: z.string().optional(),
    tcp: z.string().optional(),
    exec: z.string().optional(),
    ttl: durationInput.optional(),
    interval: durationInput.optional(),
    timeout: durationInput.optional(),
    successBeforePassing: countInput.optional(),
    failuresBeforeCritical: countInput.optional(),
  })
  .strict();

const KIND_KEYS = ['spec', 'http', 'tcp', 'exec', 'ttl'] as const;

const RANGES = {
  interval: { min: 100, max: 86_400_000 },
  timeout: { min: 10, max: 600_000 },
  ttl: { min: 100, max: 86_400_000 },
  threshold: { min: 1, max: 100 },
} as const;

function refuse(spec: string, reason: string, hint = SPEC_HINT): MeshError {
  return new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid check '${spec}': ${reason}`, { hint });
}

function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && (t[0] === "'" || t[0] === '"') && t.at(-1) === t[0]) return t.slice(1, -1).trim();
  return t;
}

function durationMs(spec: string, what: keyof typeof RANGES, value: string | number): number {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw refuse(spec, `${what} ${value} must be a whole number of milliseconds`);
    ms = value;
  } else {
    try {
      ms = parseDuration(value, what);
    } catch {
      throw refuse(spec, `${what} '${value}' is not a duration`, 'Use a number with a unit: 500ms, 10s, 5m, 24h.');
    }
  }
  const { min, max } = RANGES[what];
  if (ms < min || ms > max)
    throw refuse(
      spec,
      `${what} ${formatDuration(ms)} is out of range (${formatDuration(min)} to ${formatDuration(max)})`,
    );
  return ms;
}

function count(spec: string, what: string, value: number | string): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  const { min, max } = RANGES.threshold;
  if (!Number.isInteger(n) || n < min || n > max)
    throw refuse(spec, `${what} must be a whole number from ${min} to ${max}, not '${value}'`);
  return n;
}

/** Reads one spec string: its kind and target. Throws MESH_ERR_INVALID_ARGUMENT naming the spec. */
export function parseCheckSpec(input: string): ParsedSpec {
  const spec = input.trim();
  if (spec === '') throw refuse(input, 'the check spec is empty');

  const kind = /^https?:\/\//i.test(spec)
    ? 'http'
    : /^tcp:\/\//i.test(spec)
      ? 'tcp'
      : /^exec:/i.test(spec)
        ? 'exec'
        : undefined;
  if (kind !== undefined) {
    const target = parseCheckTarget(kind, kind === 'exec' ? unquote(spec.slice('exec:'.length)) : spec);
    if (!target.ok) throw refuse(spec, target.reason);
    return { kind, target: target.value };
  }
  if (/^ttl:/i.test(spec)) {
    const ttl = spec.slice('ttl:'.length).trim();
    if (ttl === '') throw refuse(spec, 'the TTL is missing (e.g. ttl:30s)');
    return { kind: 'ttl', target: '', ttlMs: durationMs(spec, 'ttl', ttl) };
  }

  // Name the mistake as closely as we can.
  if (parseTcpTarget(spec).ok) throw refuse(spec, 'no check kind given', `Did you mean tcp://${spec}? ${SPEC_HINT}`);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(spec);
  if (scheme) throw refuse(spec, `unknown check kind '${scheme[1]}'`);
  throw refuse(spec, 'not a check spec');
}

/** The spec string, kind and target a spec input stands for. */
function readInput(input: CheckSpecInput, index: number): { label: string; parsed: ParsedSpec; obj: CheckSpecObject } {
  if (typeof input === 'string') return { label: input, parsed: parseCheckSpec(input), obj: {} };
  const res = specObjectSchema.safeParse(input);
  if (!res.success) {
    const issue = res.error.issues[0];
    const reason =
      issue?.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`
        : `${issue?.path.join('.') || 'check'}: ${issue?.message ?? 'invalid'}`;
    throw refuse(
      `#${index + 1}`,
      reason,
      `A check object has one of ${KIND_KEYS.join(', ')} and optionally id, interval, timeout, successBeforePassing, failuresBeforeCritical.`,
    );
  }
  const obj = res.data;
  const given = KIND_KEYS.filter((k) => obj[k] !== undefined);
  const label = obj.id ?? `#${index + 1}`;
  if (given.length !== 1) {
    throw refuse(
      label,
      given.length === 0 ? `give one of ${KIND_KEYS.join(', ')}` : `give only one of ${given.join(', ')}`,
    );
  }
  const key = given[0]!;
  let spec: string;
  if (key === 'spec') spec = obj.spec!;
  else if (key === 'ttl') spec = `ttl:${typeof obj.ttl === 'number' ? `${obj.ttl}ms` : obj.ttl!}`;
  else if (key === 'exec') spec = `exec:${obj.exec!}`;
  else if (key === 'tcp') spec = /^tcp:\/\//i.test(obj.tcp!) ? obj.tcp! : `tcp://${obj.tcp!}`;
  else {
    spec = obj.http!;
    if (!/^https?:\/\//i.test(spec.trim())) throw refuse(spec, 'an http check needs an http:// or https:// URL');
  }
  return { label: spec, parsed: parseCheckSpec(spec), obj };
}

/**
 * Turns the check specs of one service into definitions. A check without an id is named
 * `<service>-<kind>`, then `<service>-<kind>-2`, … for more of the same kind.
 */
export function parseCheckSpecs(
  service: string,
  specs: readonly CheckSpecInput[],
  defaults: CheckSpecOptions = {},
): CheckDefinition[] {
  if (!nameSchema.safeParse(service).success) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid service name '${service}'`, {
      hint: 'Service names are 1-63 lowercase letters, digits, ".", "-" or "_".',
    });
  }
  const read = specs.map((s, i) => readInput(s, i));

  const taken = new Set<string>();
  for (const { label, obj } of read) {
    if (obj.id === undefined) continue;
    if (!nameSchema.safeParse(obj.id).success)
      throw refuse(label, `check id '${obj.id}' must be 1-63 lowercase letters, digits, ".", "-" or "_"`);
    if (taken.has(obj.id)) throw refuse(label, `check id '${obj.id}' is used twice`);
    taken.add(obj.id);
  }

  const perKind = new Map<CheckKind, number>();
  return read.map(({ label, parsed, obj }) => {
    const opts: CheckSpecOptions = { ...defaults, ...definedOnly(obj) };
    const def: CheckDefinition = {
      id: obj.id ?? nextId(service, parsed.kind, perKind, taken),
      kind: parsed.kind,
      target: parsed.target,
      intervalMs: opts.interval === undefined ? 10_000 : durationMs(label, 'interval', opts.interval),
      timeoutMs: opts.timeout === undefined ? 2_000 : durationMs(label, 'timeout', opts.timeout),
      successBeforePassing:
        opts.successBeforePassing === undefined ? 1 : count(label, 'successBeforePassing', opts.successBeforePassing),
      failuresBeforeCritical:
        opts.failuresBeforeCritical === undefined
          ? 1
          : count(label, 'failuresBeforeCritical', opts.failuresBeforeCritical),
    };
    if (parsed.ttlMs !== undefined) def.ttlMs = parsed.ttlMs;
    // The wire schema is the last word; the checks above exist to word the errors well.
    const checked = checkDefinitionSchema.safeParse(def);
    if (!checked.success) throw refuse(label, checked.error.issues[0]?.message ?? 'invalid');
    return checked.data;
  });
}

function definedOnly(obj: CheckSpecObject): CheckSpecOptions {
  const out: CheckSpecOptions = {};
  if (obj.interval !== undefined) out.interval = obj.interval;
  if (obj.timeout !== undefined) out.timeout = obj.timeout;
  if (obj.successBeforePassing !== undefined) out.successBeforePassing = obj.successBeforePassing;
  if (obj.failuresBeforeCritical !== undefined) out.failuresBeforeCritical = obj.failuresBeforeCritical;
  return out;
}

/** `<service>-<kind>[-n]`, skipping ids already taken, shortened to fit a 63-character name. */
function nextId(service: string, kind: CheckKind, perKind: Map<CheckKind, number>, taken: Set<string>): string {
  for (;;) {
    const n = (perKind.get(kind) ?? 0) + 1;
    perKind.set(kind, n);
    const suffix = n === 1 ? `-${kind}` : `-${kind}-${n}`;
    const head = service.slice(0, 63 - suffix.length).replace(/[-._]+$/, '');
    const id = `${head}${suffix}`;
    if (!taken.has(id)) {
      taken.add(id);
      return id;
    }
  }
}
