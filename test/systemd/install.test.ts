import { describe, it, expect, beforeEach, afterEach, afterAll } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { MeshError } from '../../src/errors/index.js';
import { runCli } from '../helpers/cli.js';
import { defaultUnitVars, renderUnit, type UnitVars } from '../../src/systemd/render.js';
import {
  checkUnitPathsVisible,
  installUnit,
  isSystemdRunning,
  runSystemctlCommands,
  verifyUnit,
} from '../../src/systemd/install.js';

async function rejection(p: Promise<unknown>): Promise<MeshError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MeshError);
    return e as MeshError;
  }
  throw new Error('expected a MeshError, the call succeeded');
}

const HIDDEN = /^\/(home|root|run\/user|tmp|var\/tmp)(\/|$)/;
const visible = (path: string): boolean => !HIDDEN.test(path) && !HIDDEN.test(realpathSync(path));

/**
 * A node binary the hardened unit can see, so the tests run the same whatever node runs
 * them (an nvm node in a home directory, a node unpacked under /tmp by CI): the running one,
 * else a node on PATH, else a copy of the running one under /var/lib, removed after.
 */
function visibleNode(): { path: string; cleanup: () => void } {
  const onPath = (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'node'));
  const found = [process.execPath, ...onPath].find((p) => existsSync(p) && visible(p));
  if (found) return { path: found, cleanup: () => {} };
  const dir = `/var/lib/meshctl-test-node-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  copyFileSync(process.execPath, join(dir, 'node'));
  return { path: join(dir, 'node'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const node = visibleNode();
afterAll(() => node.cleanup());

describe('installUnit', () => {
  let unitDir: string;
  // Paths the hardened unit can see (not in /tmp or a home directory), so verify can run.
  const dataDir = `/var/lib/meshctl-test-${process.pid}`;
  // root/root: an account every host has (installUnit refuses one the host lacks).
  const vars = (over: Partial<UnitVars> = {}): UnitVars => ({
    ...defaultUnitVars('agent', { dataDir, user: 'root', group: 'root' }),
    node: node.path,
    meshctlBin: '/opt/meshctl/lib/meshctl/bin/meshctl',
    ...over,
  });

  beforeEach(async () => {
    unitDir = await mkdtemp(join(tmpdir(), 'meshctl-units-'));
  });
  afterEach(async () => {
    await rm(unitDir, { recursive: true, force: true });
  });

  it('detects systemd the way sd_booted does', () => {
    expect(isSystemdRunning()).toBe(existsSync('/run/systemd/system'));
    expect(isSystemdRunning(unitDir)).toBe(true);
    expect(isSystemdRunning(join(unitDir, 'absent'))).toBe(false);
  });

  it('writes a 0644 unit and lists the systemctl steps when it does not run them', async () => {
    const v = vars();
    const r = await installUnit({ kind: 'agent', unitDir, vars: v, runSystemctl: false, now: true });
    expect(r.unitPath).toBe(join(unitDir, 'meshctl-agent.service'));
    expect(r.changed).toBe(true);
    expect(r.actions).toEqual([`wrote ${r.unitPath}`]);
    expect((await stat(r.unitPath)).mode & 0o777).toBe(0o644);
    expect(await readFile(r.unitPath, 'utf8')).toBe(renderUnit('agent', v));
    // A temp directory is not where systemd looks for units, so linking comes first.
    expect(r.nextSteps).toEqual([
      `systemctl link ${r.unitPath}`,
      'systemctl daemon-reload',
      'systemctl enable --now meshctl-agent.service',
      'systemctl status meshctl-agent.service',
    ]);
    expect(r.warnings.some((w) => w.includes(`systemd does not load units from ${unitDir}`))).toBe(true);
    expect(r.warnings.some((w) => w.includes(`data directory ${dataDir} does not exist`))).toBe(true);
    expect(await verifyUnit(r.unitPath)).toEqual({ ok: true, output: '' });
  });

  it('is idempotent: a second install changes nothing and leaves no temp files', async () => {
    const first = await installUnit({ kind: 'registry', unitDir, vars: vars(), runSystemctl: false });
    const before = await stat(first.unitPath);
    const second = await installUnit({ kind: 'registry', unitDir, vars: vars(), runSystemctl: false });
    expect(second.changed).toBe(false);
    expect(second.actions).toEqual([`${first.unitPath} is already up to date`]);
    expect(second.nextSteps).toEqual(first.nextSteps);
    expect((await stat(second.unitPath)).ino).toBe(before.ino);
    expect(await readdir(unitDir)).toEqual(['meshctl-registry.service']);
  });

  it('rewrites a unit whose content or mode drifted', async () => {
    const r = await installUnit({ kind: 'agent', unitDir, vars: vars(), runSystemctl: false });
    await chmod(r.unitPath, 0o600);
    const again = await installUnit({ kind: 'agent', unitDir, vars: vars(), runSystemctl: false });
    expect(again.changed).toBe(true);
    expect((await stat(r.unitPath)).mode & 0o777).toBe(0o644);

    await writeFile(r.unitPath, 'edited by hand\n');
    await chmod(r.unitPath, 0o644);
    const third = await installUnit({
      kind: 'agent',
      unitDir,
      vars: vars({ dataDir: '/var/lib/other' }),
      runSystemctl: false,
    });
    expect(third.changed).toBe(true);
    expect(await readFile(r.unitPath, 'utf8')).toContain('--data-dir /var/lib/other');
  });

  it('takes the not-running path for real when systemd is not PID 1', async () => {
    // runSystemctl stays true: only the host's state keeps systemctl from running.
    const r = await installUnit({ kind: 'agent', unitDir, vars: vars() });
    expect(r.systemdRunning).toBe(existsSync('/run/systemd/system'));
    expect(r.actions).toEqual([`wrote ${r.unitPath}`]);
    expect(r.nextSteps).toContain('systemctl daemon-reload');
    expect(r.nextSteps).toContain('systemctl enable meshctl-agent.service');
    expect(r.nextSteps).toContain('systemctl start meshctl-agent.service');
  });

  it('refuses a user or group this host does not have, writing nothing', async () => {
    for (const [over, message] of [
      [{ user: 'meshctl-no-such-user' }, 'user meshctl-no-such-user does not exist on this host'],
      [{ group: 'meshctl-no-such-group' }, 'group meshctl-no-such-group does not exist on this host'],
    ] as const) {
      const err = await rejection(installUnit({ kind: 'agent', unitDir, vars: vars(over), runSystemctl: false }));
      expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
      expect(err.message).toBe(message);
      expect(await readdir(unitDir)).toEqual([]);
    }
    // An existing account and directory outside /tmp and home: nothing to warn about but the unit dir.
    const fine = await installUnit({
      kind: 'agent',
      unitDir,
      vars: vars({ user: 'root', group: 'root', dataDir: '/var' }),
      runSystemctl: false,
    });
    expect(fine.warnings).toHaveLength(1);
    expect(fine.warnings[0]).toContain('systemd does not load units from');
  });

  it('meshctl agent install --user refuses a user that does not exist, with a clear error and no unit', async () => {
    const r = await runCli([
      'agent',
      'install',
      '--user',
      'meshctl-no-such-user',
      '--unit-dir',
      unitDir,
      '--data-dir',
      dataDir,
    ]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('user meshctl-no-such-user does not exist on this host');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(unitDir)).toEqual([]);
  });

  // Needs root to give files away, and a `nobody` account to give them to.
  it.skipIf(process.getuid?.() !== 0 || spawnSync('id', ['nobody'], { stdio: 'ignore' }).status !== 0)(
    'gives the data directory to the account the unit runs as (root only), and says so once (needs root and a nobody account)',
    async () => {
      // Outside /tmp (PrivateTmp would hide it from the unit), made and removed by the test.
      const owned = `/var/lib/meshctl-test-own-${process.pid}`;
      await rm(owned, { recursive: true, force: true });
      try {
        await mkdir(join(owned, 'tls'), { recursive: true, mode: 0o700 });
        await writeFile(join(owned, 'tls', 'node.key'), 'key', { mode: 0o600 });
        // nobody's group is nogroup on Debian, nobody elsewhere: ask this host.
        const group = execFileSync('id', ['-gn', 'nobody'], { encoding: 'utf8' }).trim();
        const ids = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, 'nobody'], { encoding: 'utf8' })));
        const v = vars({ user: 'nobody', group, dataDir: owned });
        const r = await installUnit({ kind: 'agent', unitDir, vars: v, runSystemctl: false, ownDataDir: true });
        expect(r.actions).toContain(`gave ${owned} to nobody:${group} (3 files; the service runs as nobody)`);
        for (const p of [owned, join(owned, 'tls'), join(owned, 'tls', 'node.key')]) {
          const st = await stat(p);
          expect([st.uid, st.gid], p).toEqual(ids);
        }
        expect((await stat(join(owned, 'tls', 'node.key'))).mode & 0o777).toBe(0o600);
        const again = await installUnit({ kind: 'agent', unitDir, vars: v, runSystemctl: false, ownDataDir: true });
        expect(again.actions.some((a) => a.startsWith('gave '))).toBe(false);
        // Without ownDataDir (not root) it only says what to run.
        const other = await installUnit({
          kind: 'agent',
          unitDir,
          vars: vars({ dataDir: owned }),
          runSystemctl: false,
        });
        expect(other.warnings).toContain(
          `data directory ${owned} is not owned by root, whom the service runs as; as root: chown -R root:root ${owned}`,
        );
      } finally {
        await rm(owned, { recursive: true, force: true });
      }
    },
  );

  it('refuses paths the hardened unit would hide from the service, writing nothing', async () => {
    const cases: [Partial<UnitVars>, RegExp][] = [
      [{ dataDir: '/tmp/meshctl' }, /PrivateTmp/],
      [{ dataDir: '/var/tmp/meshctl' }, /PrivateTmp/],
      [{ meshctlBin: '/home/alice/meshctl/bin/meshctl' }, /ProtectHome/],
      [{ node: '/root/.nvm/versions/node/v22.0.0/bin/node' }, /ProtectHome/],
      [{ dataDir: '/run/user/1000/meshctl' }, /ProtectHome/],
    ];
    for (const [over, why] of cases) {
      const err = await rejection(installUnit({ kind: 'agent', unitDir, vars: vars(over), runSystemctl: false }));
      expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
      expect(err.message).toMatch(why);
    }
    expect(() => checkUnitPathsVisible(vars({ dataDir: '/var/lib/tmp' }))).not.toThrow();
    expect(await readdir(unitDir)).toEqual([]);
  });

  it('refuses a unit directory that does not exist, and bad values', async () => {
    let err = await rejection(
      installUnit({ kind: 'agent', unitDir: join(unitDir, 'nope'), vars: vars(), runSystemctl: false }),
    );
    expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
    expect(err.message).toContain('does not exist');
    err = await rejection(
      installUnit({ kind: 'agent', unitDir, vars: vars({ dataDir: 'relative/dir' }), runSystemctl: false }),
    );
    expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
    expect(await readdir(unitDir)).toEqual([]);
  });
});

// systemd is not PID 1 on the test machines, so real systemctl cannot enable anything here.
// A stand-in script on disk plays systemctl: it records its arguments and fails on request,
// which is what runSystemctlCommands has to handle.
describe('runSystemctlCommands', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-systemctl-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function standIn(failOn: string): Promise<string> {
    const path = join(dir, 'systemctl');
    await writeFile(
      path,
      `#!/bin/sh\necho "$*" >> "${dir}/calls"\ncase "$1" in ${failOn}) echo "Failed to $1 unit: Access denied" >&2; exit 1;; esac\nexit 0\n`,
      { mode: 0o755 },
    );
    return path;
  }
  const opts = (systemctl: string) => ({
    systemctl,
    unitName: 'meshctl-agent.service',
    unitPath: '/etc/systemd/system/meshctl-agent.service',
  });

  it('runs the commands in order and reports them', async () => {
    const systemctl = await standIn('never');
    const done = await runSystemctlCommands(
      [['daemon-reload'], ['enable', '--now', 'meshctl-agent.service']],
      opts(systemctl),
    );
    expect(done).toEqual(['systemctl daemon-reload', 'systemctl enable --now meshctl-agent.service']);
    expect(await readFile(join(dir, 'calls'), 'utf8')).toBe('daemon-reload\nenable --now meshctl-agent.service\n');
  });

  it("stops at the first failure with systemctl's stderr", async () => {
    const systemctl = await standIn('enable');
    const err = await rejection(
      runSystemctlCommands([['daemon-reload'], ['enable', 'meshctl-agent.service'], ['start', 'x']], opts(systemctl)),
    );
    expect(err.code).toBe('MESH_ERR_UNAVAILABLE');
    expect(err.message).toBe('systemctl enable meshctl-agent.service failed: Failed to enable unit: Access denied');
    expect(err.hint).toContain('journalctl -u meshctl-agent.service');
    expect(await readFile(join(dir, 'calls'), 'utf8')).toBe('daemon-reload\nenable meshctl-agent.service\n');
  });

  it('reports a systemctl that cannot be run', async () => {
    const err = await rejection(runSystemctlCommands([['daemon-reload']], opts(join(dir, 'missing-systemctl'))));
    expect(err.code).toBe('MESH_ERR_UNAVAILABLE');
    expect(err.message).toContain('systemctl daemon-reload failed');
  });

  it('installUnit leaves systemctl alone for a unit dir systemd does not load, even when systemd runs', async () => {
    const systemctl = await standIn('never');
    const unitDir = await mkdtemp(join(dir, 'units-'));
    const r = await installUnit({
      kind: 'agent',
      unitDir,
      vars: {
        ...defaultUnitVars('agent', { dataDir: '/var/lib/meshctl-x', user: 'root', group: 'root' }),
        node: node.path,
        meshctlBin: '/opt/meshctl/lib/meshctl/bin/meshctl',
      },
      systemdRunning: true,
      systemctl,
    });
    expect(r.systemdRunning).toBe(true);
    expect(existsSync(join(dir, 'calls'))).toBe(false);
    expect(r.nextSteps[0]).toBe(`systemctl link ${r.unitPath}`);
  });
});
