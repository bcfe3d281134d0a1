/**
 * Makes plain JavaScript of a source module and everything it imports relatively, so a
 * test can run the current source in a child process (Node 20 cannot run TypeScript, and
 * dist/ may be stale). Type-only transpiling: the type-check is tsc's job.
 */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Transpiles `entry` (a path under the repo, e.g. 'src/store/index.ts') and its relative
 * imports into `outDir`, keeping the layout, and links the repo's node_modules there.
 * Returns the path of the entry's .js file.
 */
export async function transpileForChild(entry: string, outDir: string): Promise<string> {
  const seen = new Set<string>();
  const queue = [resolve(repoRoot, entry)];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    for (const ref of ts.preProcessFile(source, true, true).importedFiles) {
      if (ref.fileName.startsWith('.')) queue.push(resolve(dirname(file), ref.fileName.replace(/\.js$/, '.ts')));
    }
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    });
    const out = join(outDir, relative(repoRoot, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, outputText);
  }
  await writeFile(join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  await symlink(join(repoRoot, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  return join(outDir, relative(repoRoot, resolve(repoRoot, entry))).replace(/\.ts$/, '.js');
}
