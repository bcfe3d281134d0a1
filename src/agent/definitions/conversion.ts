/**
 * A parsed definition file (the value of its YAML/JSON) → wire registrations: the file schema
 * (schema.ts) first, then ids for checks that have none, then the wire schema itself, whose
 * problems are mapped back to the keys the user wrote.
 */
import { NAME_RE, serviceRegistrationSchema, type ServiceRegistration } from '../../api/schemas.js';
import { describe, fileErrorMap, formatPath, normalizeIssues, type FormatIssue, type PathSegment } from './messages.js';
import {
  definitionFileSchema,
  KNOWN_KEYS,
  plainObject,
  type CheckInput,
  type CheckKind,
  type ServiceInput,
} from './schema.js';

export type FormatResult = { ok: true; services: ServiceRegistration[] } | { ok: false; issues: FormatIssue[] };

/** The key an instance is known by on its node (the registry defaults the id to the name). */
export function instanceId(reg: Pick<ServiceRegistration, 'id' | 'name'>): string {
  return reg.id ?? reg.name;
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
  if (!r.success) return { ok: false, issues: normalizeIssues(r.error.issues, KNOWN_KEYS) };
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
      for (const i of normalizeIssues(wire.error.issues, KNOWN_KEYS)) {
        issues.push({ ...i, path: [...at, ...wirePathToFile(i.path, checks, generated)] });
      }
    }
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, services };
}
