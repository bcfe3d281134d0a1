import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertDistFresh, staleSources } from './dist.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshctl-dist-'));
  await mkdir(join(root, 'src/cli'), { recursive: true });
  await mkdir(join(root, 'dist/cli'), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes `path` under the tree with the given age in seconds. */
async function file(path: string, ageSeconds: number): Promise<void> {
  await writeFile(join(root, path), '');
  const t = new Date(Date.now() - ageSeconds * 1000);
  await utimes(join(root, path), t, t);
}

describe('the dist/ staleness check of the e2e helpers', () => {
  it('a tree built after its last edit is fresh', async () => {
    await file('src/cli/main.ts', 60);
    await file('src/ui.tsx', 60);
    await file('dist/cli/main.js', 10);
    await file('dist/ui.js', 10);
    expect(await staleSources(root)).toEqual([]);
    await expect(assertDistFresh(root)).resolves.toBeUndefined();
  });

  it('an edit after the build, or a file never built, is stale, and the error says what to run', async () => {
    await file('src/cli/main.ts', 5);
    await file('dist/cli/main.js', 10);
    await file('src/new.ts', 60);
    await file('src/types.d.ts', 1);
    expect(await staleSources(root)).toEqual(['src/cli/main.ts', 'src/new.ts']);
    await expect(assertDistFresh(root)).rejects.toThrow(
      'dist/ is stale: src/cli/main.ts, src/new.ts changed since the last build. These tests run the compiled CLI: run `npm run build` first (`npm test` builds by itself).',
    );
  });

  it('names three files and counts the rest', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) await file(`src/${n}.ts`, 1);
    await expect(assertDistFresh(root)).rejects.toThrow(
      /^dist\/ is stale: src\/a\.ts, src\/b\.ts, src\/c\.ts and 2 more changed/,
    );
  });
});
