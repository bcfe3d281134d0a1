/**
 * The bench runs plain node on the compiled project (`scripts/bench.mjs` builds it first):
 * paths into `dist/` and the CLI entry the agent launches proxies with.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const DIST = join(REPO, 'dist');
/** What the agent runs for a proxy: `node <this> proxy run --admin-socket … --snapshot …`. */
export const CLI_ENTRY = join(DIST, 'cli', 'main.js');

/** Imports a compiled module, e.g. distImport('registry/main.js'). */
export async function distImport(rel) {
  const file = join(DIST, rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc -p tsconfig.build.json)`);
  return import(pathToFileURL(file).href);
}
