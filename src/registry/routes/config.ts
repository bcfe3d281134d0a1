import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { configEntrySchema, entryRef, isConfigKind, CONFIG_KINDS, type ConfigKind } from '../../api/config-entries.js';
import { intentionNameSchema } from '../../api/schemas.js';
import { MeshError } from '../../errors/index.js';
import type { RegistryContext } from '../context.js';
import { who, type ApplyDocument } from '../config-entries.js';
import { blockingRead } from './util.js';

/** A file of many routes is bigger than the registry's usual 64 KiB bodies. */
const APPLY_BODY_LIMIT = 1024 * 1024;
const MAX_DOCUMENTS = 500;

export function configRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  // Nodes read config entries (their proxies' policy) like the catalog: a blocking query.
  app.get('/v1/config', { config: { auth: 'any' } }, (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const kind = q.kind === undefined ? undefined : kindParam(q.kind);
    const name = q.name === undefined ? undefined : nameParam(q.name);
    return blockingRead(ctx, req, reply, ['config', 'intentions'], () => ctx.configEntries.list(kind, name));
  });

  app.get('/v1/config/history', { config: { auth: 'admin' } }, async (req) => {
    const q = req.query as Record<string, unknown>;
    const kind = q.kind === undefined ? undefined : kindParam(q.kind);
    const name = q.name === undefined ? undefined : nameParam(q.name);
    return ctx.configEntries.history(kind, name);
  });

  app.post('/v1/config/apply', { config: { auth: 'admin' }, bodyLimit: APPLY_BODY_LIMIT }, async (req) => {
    const q = req.query as Record<string, unknown>;
    const dryRun = q.dry_run === 'true' || q.dry_run === '1';
    const body = req.body as { entries?: unknown; labels?: unknown } | undefined;
    if (!body || !Array.isArray(body.entries))
      throw new MeshError('MESH_ERR_BAD_REQUEST', 'invalid request body: entries: expected an array of config entries');
    if (body.entries.length > MAX_DOCUMENTS)
      throw new MeshError('MESH_ERR_INVALID_CONFIG', `at most ${MAX_DOCUMENTS} documents in one apply`);
    const labels = Array.isArray(body.labels) ? body.labels : [];
    const docs = body.entries.map((raw, i) =>
      parseDocument(raw, typeof labels[i] === 'string' ? labels[i] : `document ${i + 1}`),
    );
    return ctx.configEntries.apply(docs, { dryRun, who: who(req.principal) });
  });

  app.delete('/v1/config/:kind/:name', { config: { auth: 'admin' } }, async (req) => {
    const p = req.params as { kind: string; name: string };
    return ctx.configEntries.delete(kindParam(p.kind), nameParam(p.name), who(req.principal));
  });
}

/** Parses one document by its kind's schema; errors name the document, the field and the reason. */
export function parseDocument(raw: unknown, label: string): ApplyDocument {
  const obj = raw as { kind?: unknown; name?: unknown } | null;
  const named =
    obj && typeof obj === 'object' && typeof obj.kind === 'string' && typeof obj.name === 'string'
      ? `${label} (${obj.kind} ${obj.name})`
      : label;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj))
    throw new MeshError('MESH_ERR_INVALID_CONFIG', `${label}: a config entry must be an object with kind and name`);
  if (!isConfigKind(obj.kind))
    throw new MeshError(
      'MESH_ERR_INVALID_CONFIG',
      `${named}: kind: ${obj.kind === undefined ? 'missing' : `unknown kind ${JSON.stringify(obj.kind)}`} (one of ${CONFIG_KINDS.join(', ')})`,
    );
  const r = configEntrySchema.safeParse(obj);
  if (!r.success) throw schemaError(named, r.error.issues);
  return { entry: r.data, label: `${label} (${entryRef(r.data).replace('/', ' ')})` };
}

function schemaError(label: string, issues: z.core.$ZodIssue[]): MeshError {
  const text = issues
    .slice(0, 5)
    .map((i) => `${label}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return new MeshError('MESH_ERR_INVALID_CONFIG', text, {
    details: issues.slice(0, 20).map((i) => ({ document: label, path: i.path.join('.'), reason: i.message })),
  });
}

function kindParam(v: unknown): ConfigKind {
  if (!isConfigKind(v))
    throw new MeshError(
      'MESH_ERR_BAD_REQUEST',
      `unknown config kind '${String(v)}' (one of ${CONFIG_KINDS.join(', ')})`,
    );
  return v;
}

function nameParam(v: unknown): string {
  const r = intentionNameSchema.safeParse(v);
  if (!r.success)
    throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid name '${String(v)}': ${r.error.issues[0]?.message}`);
  return r.data;
}
