/**
 * The compiled CLI for the dashboard's end-to-end tests. `npm test` builds before running; a
 * test run on its own rebuilds only when the dashboard's sources are newer than dist/. Until the
 * lead registers `status` in program.ts, the command runs through a two-line entry instead.
 */
import { readdir, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import { execa } from 'execa';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (/\.tsx?$/.test(e.name)) out.push(p);
  }
  return out;
}

const mtime = (p: string) =>
  stat(p).then(
    (s) => s.mtimeMs,
    () => 0,
  );

async function staleOutputs(): Promise<string[]> {
  const files = [
    ...(await sources(join(ROOT, 'src/ui'))),
    join(ROOT, 'src/cli/commands/status.ts'),
    join(ROOT, 'src/cli/main.ts'),
  ];
  const stale: string[] = [];
  for (const f of files) {
    const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), f)).replace(/\.tsx?$/, '.js');
    if ((await mtime(out)) < (await mtime(f))) stale.push(out);
  }
  return stale;
}

export async function ensureBuilt(): Promise<void> {
  if ((await staleOutputs()).length === 0) return;
  // Type errors elsewhere in the tree (work in progress) do not stop tsc from emitting.
  const r = await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, reject: false });
  const still = await staleOutputs();
  if (still.length > 0) throw new Error(`build did not produce ${still.join(', ')}:\n${r.stdout}\n${r.stderr}`);
}

/** The node arguments that run `meshctl status`. */
export async function statusEntry(): Promise<string[]> {
  const help = await execa(process.execPath, [MAIN, 'status', '--help'], {
    reject: false,
    env: { MESHCTL_CONFIG_DIR: '/nonexistent' },
  });
  if (help.exitCode === 0 && String(help.stdout).includes('--once')) return [MAIN, 'status'];
  const entry = [
    `const { statusCommand } = await import(${JSON.stringify(join(ROOT, 'dist/cli/commands/status.js'))});`,
    `const { MeshError } = await import(${JSON.stringify(join(ROOT, 'dist/errors/index.js'))});`,
    'try { await statusCommand().exitOverride().parseAsync(process.argv.slice(1), { from: "user" }); process.exit(0); }',
    'catch (e) { if (e instanceof MeshError) { process.stderr.write(`Error: ${e.message}\\n  hint: ${e.hint}\\n`); process.exit(e.exitCode); }',
    '  if (String(e.code ?? "").startsWith("commander.")) process.exit(e.exitCode === 0 ? 0 : 64); throw e; }',
  ].join('\n');
  return ['--input-type=module', '-e', entry, '--'];
}
