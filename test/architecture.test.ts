/**
 * The module picture in docs/ARCHITECTURE.md is the rule: every import between folders of src/
 * must follow its arrows (directly or through other folders), every arrow must be used by some
 * import, and no files import each other in a cycle. Imports are read with TypeScript's own
 * pre-processor (static, re-exports and `import()` alike), type-only imports included.
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(relative(ROOT, p));
  }
  return out.sort();
}

/** file -> the src files it imports (relative specifiers; packages are not part of the picture). */
function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
    const deps: string[] = [];
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const base = join(dirname(file), fileName);
      const target = [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), join(base, 'index.ts')].find((c) =>
        known.has(c),
      );
      if (target === undefined) throw new Error(`${file} imports ${fileName}, which is no file of src/`);
      deps.push(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** The folder of src/ a file belongs to. */
const folderOf = (file: string): string => file.split('/')[1]!.replace(/\.tsx?$/, '');

/** The arrows of the mermaid picture in docs/ARCHITECTURE.md. */
function pictureArrows(): Array<[string, string]> {
  const doc = readFileSync(join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');
  const block = /```mermaid\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!block) throw new Error('docs/ARCHITECTURE.md has no mermaid picture');
  return [...block.matchAll(/^\s*(\w+)\s*-->\s*(\w+)\s*$/gm)].map((m) => [m[1]!, m[2]!]);
}

function reachable(arrows: Array<[string, string]>, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length > 0) {
    const at = todo.pop()!;
    for (const [a, b] of arrows) if (a === at && !seen.has(b)) todo.push((seen.add(b), b));
  }
  return seen;
}

/** Groups of files that import each other round (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('the import graph of src/ against docs/ARCHITECTURE.md', () => {
  let graph: Map<string, string[]>;
  const arrows = pictureArrows();
  beforeAll(async () => {
    graph = importGraph(await sourceFiles(SRC));
  });

  it('names every folder of src/ in the picture, and only those', async () => {
    const folders = new Set((await sourceFiles(SRC)).map(folderOf));
    expect(new Set(arrows.flat())).toEqual(folders);
  });

  it('has no import between folders that the arrows do not allow', () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      const allowed = reachable(arrows, folderOf(file));
      for (const dep of deps) {
        const [a, b] = [folderOf(file), folderOf(dep)];
        if (a !== b && !allowed.has(b)) wrong.push(`${file} imports ${dep} (${a} -> ${b})`);
      }
    }
    expect(wrong, 'move the shared code down, or add the arrow to docs/ARCHITECTURE.md').toEqual([]);
  });

  it('has no arrow that no import uses', () => {
    const used = new Set<string>();
    for (const [file, deps] of graph) for (const dep of deps) used.add(`${folderOf(file)} --> ${folderOf(dep)}`);
    const unused = arrows.map(([a, b]) => `${a} --> ${b}`).filter((arrow) => !used.has(arrow));
    expect(unused, 'remove these arrows from docs/ARCHITECTURE.md (or draw the path the imports take)').toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('ui/ and demo/ import nothing from cli/', () => {
    const intoCli = [...graph].flatMap(([file, deps]) =>
      /^src\/(ui|demo)\//.test(file) ? deps.filter((d) => d.startsWith('src/cli/')).map((d) => `${file} -> ${d}`) : [],
    );
    expect(intoCli).toEqual([]);
  });
});

describe('the checks themselves', () => {
  it('find a cycle, and a path through other folders', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c']]);
    expect(
      reachable(
        [
          ['x', 'y'],
          ['y', 'z'],
        ],
        'x',
      ),
    ).toEqual(new Set(['y', 'z']));
  });
});
