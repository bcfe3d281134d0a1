/** Turns zod failures into MESH_ERR_BAD_REQUEST with the field path, so API errors name what to fix. */
import type { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { nameSchema } from '../api/schemas.js';
import { parseDuration } from '../util/duration.js';

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid ${what}: ${issues.join('; ')}`, {
    details: r.error.issues.slice(0, 20),
  });
}

export function nameParam(value: unknown, what: string): string {
  const r = nameSchema.safeParse(value);
  if (!r.success)
    throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid ${what} '${String(value)}': ${r.error.issues[0]?.message}`);
  return r.data;
}

/** `?index=N&wait=30s` of a blocking query. */
export function blockingParams(query: Record<string, unknown>): { index: number; waitMs: number } | undefined {
  if (query.index === undefined) return undefined;
  // These are query parameters: the hints say so (the default hint talks about the body).
  const hint =
    'Fix the query: ?index=N (the x-mesh-index of the previous answer) and optionally &wait=DURATION (e.g. 30s, at most 10m).';
  const index = Number(query.index);
  if (!Number.isSafeInteger(index) || index < 0)
    throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid index '${String(query.index)}' in the query`, { hint });
  let waitMs = 60_000;
  if (query.wait !== undefined) {
    try {
      waitMs = parseDuration(String(query.wait), 'wait');
    } catch {
      throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid wait '${String(query.wait)}' in the query`, { hint });
    }
  }
  if (waitMs > 600_000) throw new MeshError('MESH_ERR_BAD_REQUEST', 'wait in the query may be at most 10m', { hint });
  return { index, waitMs };
}
