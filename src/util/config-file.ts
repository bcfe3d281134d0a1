/** Reads a JSON configuration file and validates it, naming the file and field on any problem. */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { MeshError } from '../errors/index.js';

export async function readConfigFile<S extends z.ZodType>(
  path: string,
  schema: S,
  missing: () => MeshError,
): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw missing();
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new MeshError('MESH_ERR_CONFIG', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MeshError('MESH_ERR_CONFIG', `${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
