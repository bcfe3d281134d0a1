import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  access,
  constants,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { execa } from 'execa';

const repo = fileURLToPath(new URL('../../', import.meta.url));
// What install.sh copies from a checkout (plus install.sh itself).
const CHECKOUT_ENTRIES = [
  'package.json',
  'package-lock.json',
  'bin',
  'src',
  'templates',
  'scripts',
  'tsconfig.json',
  'tsconfig.build.json',
  'install.sh',
];
// npm ci compiles better-sqlite3 from source when no prebuilt binary can be fetched:
// minutes on a two-core machine.
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/**
 * better-sqlite3's installer (prebuild-install) takes a binary from a local prebuilds
 * directory before it tries to download or compile. We hand it the one the suite's own
 * `npm ci` compiled, same version and Node ABI, so the install's `npm ci` runs in full (every
 * lifecycle script) without compiling SQLite a second time, which took four of CI's minutes.
 * Empty when this checkout has no compiled binary: then the install compiles.
 */
async function prebuildsFromCheckout(dir: string): Promise<Record<string, string>> {
  const pkgDir = join(repo, 'node_modules', 'better-sqlite3');
  const binary = join(pkgDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(binary)) return {};
  const { version } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const stage = join(dir, 'stage');
  await mkdir(join(stage, 'build', 'Release'), { recursive: true });
  await cp(binary, join(stage, 'build', 'Release', 'better_sqlite3.node'));
  await mkdir(dir, { recursive: true });
  const tarball = join(
    dir,
    `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`,
  );
  await execa('tar', ['-czf', tarball, '-C', stage, 'build']);
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

// Root with permission to make a mount namespace (CI and the dev machines run tests as root).
const canUseMountNamespace =
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { stdio: 'ignore' }).status === 0;

/** Quotes a path for bash. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

let prebuildEnv: Record<string, string> = {};

async function runInstall(checkout: string, args: string[], env: Record<string, string> = {}) {
  // Own process group, so npm and the compilers it starts can all be ended together.
  const child = execa('bash', [join(checkout, 'install.sh'), ...args], {
    reject: false,
    all: true,
    env: { ...prebuildEnv, ...env },
    stdin: 'ignore',
    detached: true,
    timeout: INSTALL_TIMEOUT_MS,
  });
  try {
    return await child;
  } finally {
    killGroup(child.pid);
  }
}

/** Ends whatever is left of a process group (nothing, when the run finished normally). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already empty.
  }
}

describe('install.sh', () => {
  let work: string;
  let checkout: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'meshctl-install-'));
    // A snapshot of the checkout, so edits made to the repo while this runs cannot make the
    // second install rebuild, and with a stale node_modules/ and dist/ of its own, which
    // must not reach the install.
    checkout = join(work, 'checkout');
    for (const entry of CHECKOUT_ENTRIES) {
      if (existsSync(join(repo, entry))) await cp(join(repo, entry), join(checkout, entry), { recursive: true });
    }
    await mkdir(join(checkout, 'node_modules', 'stale-marker'), { recursive: true });
    await writeFile(
      join(checkout, 'node_modules', 'stale-marker', 'package.json'),
      '{"name":"stale-marker","version":"0.0.0"}\n',
    );
    await mkdir(join(checkout, 'dist'), { recursive: true });
    await writeFile(join(checkout, 'dist', 'stale.js'), 'throw new Error("stale build");\n');
    prebuildEnv = await prebuildsFromCheckout(join(work, 'prebuilds'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('refuses a node older than 20.19 and says how to get a newer one', async () => {
    const fakeBin = join(work, 'old-node');
    await mkdir(fakeBin, { recursive: true });
    await writeFile(join(fakeBin, 'node'), '#!/bin/sh\necho v18.0.0\n', { mode: 0o755 });
    const prefix = join(work, 'old-node-prefix');
    const r = await runInstall(checkout, ['--prefix', prefix, '--no-system'], {
      PATH: `${fakeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('node 18.0.0');
    expect(r.stderr).toContain('too old');
    expect(r.stderr).toContain('Node 20.19+');
    expect(r.stderr).toMatch(/distribution or from NodeSource/);
    expect(existsSync(prefix)).toBe(false);
  });

  it('refuses unknown options with the usage exit code', async () => {
    const r = await runInstall(checkout, ['--frobnicate']);
    expect(r.exitCode).toBe(64);
    expect(r.stderr).toContain('unknown option: --frobnicate');
    const help = await runInstall(checkout, ['--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('--prefix DIR');
    expect(help.stdout).toContain('--uninstall');
    expect(help.stdout).toContain('--no-system');
  });

  it('will not take over or remove a directory it did not install', async () => {
    const prefix = join(work, 'foreign');
    await mkdir(join(prefix, 'lib', 'meshctl'), { recursive: true });
    await writeFile(join(prefix, 'lib', 'meshctl', 'precious'), 'keep me\n');
    const inst = await runInstall(checkout, ['--prefix', prefix, '--no-system']);
    expect(inst.exitCode).toBe(1);
    expect(inst.stderr).toContain('was not installed by install.sh');
    const un = await runInstall(checkout, ['--prefix', prefix, '--uninstall']);
    expect(un.exitCode).toBe(1);
    expect(await readFile(join(prefix, 'lib', 'meshctl', 'precious'), 'utf8')).toBe('keep me\n');
  });

  // One npm ci for the whole file: these three run in order on one prefix.
  describe('on one prefix', () => {
    let prefix: string;
    let app: string;
    let link: string;
    beforeAll(() => {
      prefix = join(work, 'prefix');
      app = join(prefix, 'lib', 'meshctl');
      link = join(prefix, 'bin', 'meshctl');
    });

    it('installs a clean build and re-runs without rebuilding', { timeout: INSTALL_TIMEOUT_MS + 60_000 }, async () => {
      const first = await runInstall(checkout, ['--prefix', prefix, '--no-system']);
      expect(first.exitCode, first.all).toBe(0);
      expect(first.stdout).toContain(`installing meshctl from ${checkout} into ${app}`);
      expect(first.stdout).toContain('Next steps:');
      expect(first.stdout).toContain(`${join(prefix, 'bin')} is not on your PATH`);

      expect((await lstat(link)).isSymbolicLink()).toBe(true);
      expect(await readlink(link)).toBe(join(app, 'bin', 'meshctl'));
      await access(link, constants.X_OK);
      // Built in the prefix from the sources, not copied from the checkout's own build.
      await access(join(app, 'dist', 'systemd', 'render.js'), constants.R_OK);
      expect(existsSync(join(app, 'dist', 'stale.js'))).toBe(false);
      expect(existsSync(join(app, 'node_modules', 'stale-marker'))).toBe(false);
      // Runtime dependencies only: the compiler was pruned after the build.
      expect(existsSync(join(app, 'node_modules', 'commander', 'package.json'))).toBe(true);
      expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);
      expect((await stat(app)).mode & 0o777).toBe(0o755);

      // The compiled renderer finds templates/ from dist/systemd/, two levels below the root.
      const rendered = await execa(process.execPath, [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(join(app, 'dist', 'systemd', 'render.js'))}); process.stdout.write(m.renderUnit('agent', m.defaultUnitVars('agent')));`,
      ]);
      expect(rendered.stdout).toContain(
        `ExecStart=${process.execPath} ${join(app, 'bin', 'meshctl')} agent start --data-dir /var/lib/meshctl`,
      );

      const help = await execa(link, ['--help'], { reject: false, all: true, stdin: 'ignore' });
      expect(help.exitCode, help.all).toBe(0);
      expect(help.stdout).toContain('meshctl');
      // The native store engine loads in the install (the registry's default sqlite store).
      const sqlite = await execa(
        process.execPath,
        [
          '-e',
          `const D = require(${JSON.stringify(join(app, 'node_modules', 'better-sqlite3'))}); console.log(new D(':memory:').prepare('select 41 + 1 as n').get().n);`,
        ],
        { reject: false, all: true },
      );
      expect(sqlite.stdout, sqlite.all).toBe('42');

      const stamp = await readFile(join(app, '.install-stamp'), 'utf8');
      const appInode = (await stat(app)).ino;
      const second = await runInstall(checkout, ['--prefix', prefix, '--no-system']);
      expect(second.exitCode, second.all).toBe(0);
      expect(second.stdout).toContain('is up to date');
      expect(second.stdout).not.toContain('npm ci');
      expect((await stat(app)).ino).toBe(appInode);
      expect(await readFile(join(app, '.install-stamp'), 'utf8')).toBe(stamp);
      expect(await readlink(link)).toBe(join(app, 'bin', 'meshctl'));
    });

    // The root-only part (system user, /etc/meshctl, /var/lib/meshctl) runs in a private
    // mount namespace over copies of /etc (without any meshctl account the host has) and an
    // empty /var/lib, so the host's accounts stay untouched and do not change the result.
    it.skipIf(!canUseMountNamespace)(
      'as root creates the meshctl user and directories, idempotently',
      { timeout: INSTALL_TIMEOUT_MS + 60_000 },
      async () => {
        // Runs on the install made above, which is up to date: no second npm ci.
        expect(existsSync(join(app, '.install-stamp')), 'the install from the previous test').toBe(true);
        const hostBefore = (await execa('getent', ['passwd', 'meshctl'], { reject: false })).stdout;
        const root = join(work, 'sysroot');
        await mkdir(join(root, 'varlib'), { recursive: true });
        const script = [
          'set -e',
          `cp -a /etc ${q(join(root, 'etc'))}`,
          `mount --bind ${q(join(root, 'etc'))} /etc`,
          `mount --bind ${q(join(root, 'varlib'))} /var/lib`,
          // A host that already has a meshctl account (an earlier install) must not change what
          // the first run does: the copy starts without one.
          "for f in /etc/passwd /etc/shadow /etc/group /etc/gshadow; do if [ -f $f ]; then sed -i '/^meshctl:/d' $f; fi; done",
          `bash ${q(join(checkout, 'install.sh'))} --prefix ${q(prefix)}`,
          'echo "--- second run"',
          `bash ${q(join(checkout, 'install.sh'))} --prefix ${q(prefix)}`,
          'echo "--- state"',
          'getent passwd meshctl',
          'getent group meshctl',
          'stat -c "%a %U %G %n" /etc/meshctl /etc/meshctl/services.d /var/lib/meshctl',
        ].join('\n');
        const child = execa('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], {
          reject: false,
          all: true,
          stdin: 'ignore',
          detached: true,
          timeout: INSTALL_TIMEOUT_MS,
        });
        const r = await child.finally(() => killGroup(child.pid));
        expect(r.exitCode, r.all).toBe(0);
        const [firstRun, secondRun, state] = r.stdout.split(/^--- .*$/m);
        expect(firstRun).toContain('created group meshctl');
        expect(firstRun).toContain('created user meshctl');
        expect(secondRun).not.toContain('created');
        expect(secondRun).toContain('is up to date');
        const [passwd, group, ...dirs] = state!.trim().split('\n');
        const fields = passwd!.split(':');
        expect(fields[0]).toBe('meshctl');
        expect(Number(fields[2])).toBeLessThan(1000); // a system account
        expect(fields[5]).toBe('/var/lib/meshctl');
        expect(fields[6]).toMatch(/\/nologin$/);
        expect(group!.split(':')[0]).toBe('meshctl');
        expect(dirs).toEqual([
          '750 root meshctl /etc/meshctl',
          '750 root meshctl /etc/meshctl/services.d',
          '700 meshctl meshctl /var/lib/meshctl',
        ]);
        // The host's own account database did not change.
        expect((await execa('getent', ['passwd', 'meshctl'], { reject: false })).stdout).toBe(hostBefore);
      },
    );

    it('uninstalls, and uninstalling again is harmless', async () => {
      const removed = await runInstall(checkout, ['--prefix', prefix, '--uninstall']);
      expect(removed.exitCode, removed.all).toBe(0);
      expect(existsSync(app)).toBe(false);
      expect(existsSync(link)).toBe(false);
      // The directories it made are gone too once empty.
      expect(existsSync(prefix)).toBe(false);

      const again = await runInstall(checkout, ['--prefix', prefix, '--uninstall']);
      expect(again.exitCode).toBe(0);
      expect(again.stdout).toContain('nothing installed');
    });
  });
});
