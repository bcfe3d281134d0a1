/**
 * The module picture in docs/ARCHITECTURE.md is the rule: every import between folders of src/
 * must follow its arrows (directly or through other folders), every arrow must be used by some
 * import, and no files import each other in a cycle at run time. Imports are read with TypeScript's
 * parser (static, re-exports and `import()` alike); type-only imports count for the folders too.
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

interface Import {
  target: string;
  /** `import type` (or every name `type`): erased when compiled, so it cannot make a load-order cycle. */
  typeOnly: boolean;
}

/** The specifiers a file imports: static imports, re-exports and `import()` calls. */
function importsOf(file: string): Array<{ spec: string; typeOnly: boolean }> {
  const sf = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Array<{ spec: string; typeOnly: boolean }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings : undefined;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined && named !== undefined && named.elements.every((e) => e.isTypeOnly)));
      out.push({ spec: node.moduleSpecifier.text, typeOnly });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ spec: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      out.push({ spec: node.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** file -> the src files it imports (relative specifiers; packages are not part of the picture). */
function importGraph(files: string[]): Map<string, Import[]> {
  const known = new Set(files);
  const graph = new Map<string, Import[]>();
  for (const file of files) {
    const deps: Import[] = [];
    for (const { spec, typeOnly } of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const base = join(dirname(file), spec);
      const target = [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), join(base, 'index.ts')].find((c) =>
        known.has(c),
      );
      if (target === undefined) throw new Error(`${file} imports ${spec}, which is no file of src/`);
      deps.push({ target, typeOnly });
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
  let graph: Map<string, Import[]>;
  /** Only the imports that remain in the compiled code. */
  const runtime = () =>
    new Map([...graph].map(([f, deps]) => [f, deps.filter((d) => !d.typeOnly).map((d) => d.target)]));
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
      for (const { target: dep } of deps) {
        const [a, b] = [folderOf(file), folderOf(dep)];
        if (a !== b && !allowed.has(b)) wrong.push(`${file} imports ${dep} (${a} -> ${b})`);
      }
    }
    expect(wrong, 'move the shared code down, or add the arrow to docs/ARCHITECTURE.md').toEqual([]);
  });

  it('has no arrow that no import uses', () => {
    const used = new Set<string>();
    for (const [file, deps] of graph) for (const d of deps) used.add(`${folderOf(file)} --> ${folderOf(d.target)}`);
    const unused = arrows.map(([a, b]) => `${a} --> ${b}`).filter((arrow) => !used.has(arrow));
    expect(unused, 'remove these arrows from docs/ARCHITECTURE.md (or draw the path the imports take)').toEqual([]);
  });

  it('has no import cycle between files (type-only imports are erased, so they do not count)', () => {
    expect(cycles(runtime())).toEqual([]);
  });

  it('ui/ and demo/ import nothing from cli/', () => {
    const intoCli = [...graph].flatMap(([file, deps]) =>
      /^src\/(ui|demo)\//.test(file)
        ? deps.filter((d) => d.target.startsWith('src/cli/')).map((d) => `${file} -> ${d.target}`)
        : [],
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
