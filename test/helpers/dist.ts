/**
 * Tests that run the compiled CLI (`dist/`) must not test old code silently: a source file
 * newer than its compiled output means the last edit was not built. Chosen over building
 * here: `npm test` (and land.sh, and CI) build once before any test, and a build per test file
 * would cost every run on a shared machine a full tsc; a stale tree fails at once instead,
 * naming the file and the command.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const mtime = (p: string) =>
  stat(p).then(
    (s) => s.mtimeMs,
    () => undefined,
  );

/** Sources under `root`/src whose output under `root`/dist is missing or older, as paths relative to `root`. */
export async function staleSources(root = ROOT): Promise<string[]> {
  const src = join(root, 'src');
  const stale: string[] = [];
  for (const f of await sources(src)) {
    const out = join(root, 'dist', relative(src, f)).replace(/\.tsx?$/, '.js');
    const [built, edited] = await Promise.all([mtime(out), mtime(f)]);
    if (built === undefined || (edited !== undefined && built < edited)) stale.push(relative(root, f));
  }
  return stale.sort();
}

/** Throws, naming what is stale and how to build, when dist/ is older than src/. */
export async function assertDistFresh(root = ROOT): Promise<void> {
  const stale = await staleSources(root);
  if (stale.length === 0) return;
  const more = stale.length > 3 ? ` and ${stale.length - 3} more` : '';
  throw new Error(
    `dist/ is stale: ${stale.slice(0, 3).join(', ')}${more} changed since the last build. ` +
      'These tests run the compiled CLI: run `npm run build` first (`npm test` builds by itself).',
  );
}
