import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, access, constants } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../src/errors/index.js';
import {
  defaultUnitVars,
  packageRoot,
  renderTemplate,
  renderUnit,
  templatePath,
  UNIT_KINDS,
  type UnitKind,
  type UnitVars,
} from '../../src/systemd/render.js';
import { verifyUnit } from '../../src/systemd/install.js';

/** Section → key → values, as systemd reads a unit (comments and blank lines skipped). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `line outside key=value: ${line}`).toBeGreaterThan(0);
    expect(current, `key before any section: ${line}`).toBeDefined();
    const key = line.slice(0, eq);
    current!.set(key, [...(current!.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

function catchMeshError(fn: () => unknown): MeshError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MeshError);
    return e as MeshError;
  }
  throw new Error('expected a MeshError, nothing was thrown');
}

describe('systemd unit rendering', () => {
  let dir: string;
  // The data dir only has to be a plausible absolute path: rendering and verify do not
  // touch it. It is outside /tmp on purpose (the unit's PrivateTmp would hide /tmp).
  const dataDir = `/var/lib/meshctl-test-${process.pid}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-systemd-render-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the templates and the launcher from the module location', async () => {
    for (const kind of UNIT_KINDS) await access(templatePath(kind), constants.R_OK);
    await access(join(packageRoot(), 'bin', 'meshctl'), constants.X_OK);
    const vars = defaultUnitVars('agent');
    expect(vars.node).toBe(process.execPath);
    expect(vars.meshctlBin).toBe(join(packageRoot(), 'bin', 'meshctl'));
    expect(vars).toMatchObject({
      dataDir: '/var/lib/meshctl',
      configDir: '/etc/meshctl',
      user: 'meshctl',
      group: 'meshctl',
      envFile: '/etc/meshctl/agent.env',
    });
    expect(defaultUnitVars('registry', { user: 'root', configDir: '/etc/mesh2' })).toMatchObject({
      user: 'root',
      group: 'root',
      envFile: '/etc/mesh2/registry.env',
    });
  });

  for (const kind of ['agent', 'registry'] as UnitKind[]) {
    it(`renders a ${kind} unit that systemd-analyze verify accepts`, async () => {
      const vars = defaultUnitVars(kind, { dataDir });
      const text = renderUnit(kind, vars);
      expect(text).not.toMatch(/\{\{|\}\}/);

      const unit = parseUnit(text);
      const service = unit.get('Service')!;
      // The registry's node flags (a smaller young generation) go before the launcher; the agent has none.
      const node = kind === 'registry' ? `${vars.node} --max-semi-space-size=4` : vars.node;
      expect(vars.nodeFlags).toBe(kind === 'registry' ? '--max-semi-space-size=4' : '');
      expect(service.get('ExecStart')).toEqual([`${node} ${vars.meshctlBin} ${kind} start --data-dir ${dataDir}`]);
      expect(service.get('Type')).toEqual(['simple']);
      expect(service.get('User')).toEqual(['meshctl']);
      expect(service.get('Group')).toEqual(['meshctl']);
      expect(service.get('EnvironmentFile')).toEqual([`-/etc/meshctl/${kind}.env`]);
      expect(service.get('ReadWritePaths')).toEqual([dataDir]);
      for (const [key, value] of Object.entries({
        Restart: 'on-failure',
        RestartSec: '2',
        LimitNOFILE: '65536',
        // The agent waits for its sidecars' drain (30 s by default) plus 5 s.
        TimeoutStopSec: kind === 'agent' ? '45' : '15',
        NoNewPrivileges: 'yes',
        ProtectSystem: 'strict',
        ProtectHome: 'yes',
        PrivateTmp: 'yes',
        ProtectKernelTunables: 'yes',
        ProtectControlGroups: 'yes',
        RestrictSUIDSGID: 'yes',
        LockPersonality: 'yes',
      })) {
        expect(service.get(key), key).toEqual([value]);
      }
      expect(unit.get('Unit')!.get('After')).toEqual(['network-online.target']);
      expect(unit.get('Unit')!.get('Wants')).toEqual(['network-online.target']);
      expect(unit.get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
      if (kind === 'agent') {
        // Restarting the agent must leave its proxies running so it can adopt them.
        expect(service.get('KillMode')).toEqual(['process']);
        expect(service.get('RuntimeDirectory')).toEqual(['meshctl']);
        expect(service.get('RuntimeDirectoryPreserve')).toEqual(['yes']);
        expect(service.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
      } else {
        expect(service.get('KillMode')).toBeUndefined();
        expect(service.get('RuntimeDirectory')).toBeUndefined();
        // `meshctl registry start` has no SIGHUP handler: a reload would end it.
        expect(service.get('ExecReload')).toBeUndefined();
      }

      const path = join(dir, `meshctl-${kind}.service`);
      await writeFile(path, text);
      const result = await verifyUnit(path);
      expect(result.output).toBe('');
      expect(result.ok).toBe(true);
    });
  }

  it('renders the registry unit for etcd (registry install --store etcd) ordered after etcd.service, and verify accepts it', async () => {
    const vars = defaultUnitVars('registry', { dataDir, etcd: true });
    const text = renderUnit('registry', vars);
    const unit = parseUnit(text);
    expect(unit.get('Unit')!.get('After')).toEqual(['network-online.target etcd.service']);
    // Ordering only: etcd usually runs on other hosts, so the registry does not pull it in.
    expect(unit.get('Unit')!.get('Wants')).toEqual(['network-online.target']);
    expect(unit.get('Unit')!.get('Requires')).toBeUndefined();
    expect(unit.get('Service')!.get('ExecStart')).toEqual([
      `${vars.node} --max-semi-space-size=4 ${vars.meshctlBin} registry start --data-dir ${dataDir}`,
    ]);
    // The agent's unit has no etcd, whatever is asked.
    expect(defaultUnitVars('agent', { dataDir, etcd: true }).after).toBe('network-online.target');
    const path = join(dir, 'meshctl-registry.service');
    await writeFile(path, text);
    expect(await verifyUnit(path)).toEqual({ ok: true, output: '' });
  });

  it('verify reports a unit whose ExecStart binary does not exist', async () => {
    const vars = { ...defaultUnitVars('agent', { dataDir }), node: `/nonexistent-${process.pid}/node` };
    const path = join(dir, 'meshctl-agent.service');
    await writeFile(path, renderUnit('agent', vars));
    const result = await verifyUnit(path);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(vars.node);
  });

  it('verify reports unknown keys even though systemd-analyze exits 0 for them', async () => {
    const path = join(dir, 'meshctl-registry.service');
    await writeFile(path, `${renderUnit('registry', defaultUnitVars('registry', { dataDir }))}NoSuchKey=1\n`);
    const result = await verifyUnit(path);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('NoSuchKey');
  });

  describe('refuses values systemd would misread', () => {
    const good = (): UnitVars => defaultUnitVars('agent', { dataDir });
    const cases: [keyof UnitVars, string, RegExp][] = [
      ['dataDir', 'var/lib/meshctl', /absolute/],
      ['dataDir', '', /empty/],
      ['dataDir', '/var/lib/mesh\nExecStartPre=/bin/sh', /control character/],
      ['configDir', '/etc/mesh\tctl', /control character/],
      ['meshctlBin', '/opt/mesh ctl/bin/meshctl', /whitespace/],
      ['dataDir', '/var/lib/%n', /"%"/],
      ['dataDir', '/var/lib/$HOME', /"\$"/],
      ['envFile', '/etc/meshctl/"agent".env', /"\\""/],
      ['dataDir', '/var/lib/../tmp', /normal form; use \/var\/tmp/],
      ['dataDir', '/var/lib/meshctl/', /normal form/],
      ['node', '/usr//bin/node', /normal form/],
      ['user', 'mesh ctl', /user or group name/],
      ['group', 'root\nUser=root', /user or group name/],
      ['user', '', /user or group name/],
      ['user', 'a'.repeat(33), /user or group name/],
      ['after', 'etcd.service\nExecStartPre=/bin/sh', /unit names/],
      ['after', 'etcd', /unit names/],
      ['after', '', /unit names/],
      ['nodeFlags', '--max-semi-space-size=4\nExecStartPre=/bin/sh', /--flag/],
      ['nodeFlags', '--inspect=0.0.0.0:9229', /--flag/],
      ['nodeFlags', '-e process.exit()', /--flag/],
      ['nodeFlags', '--a  --b', /--flag/],
    ];
    for (const [field, value, why] of cases) {
      it(`${field}=${JSON.stringify(value)}`, () => {
        const err = catchMeshError(() => renderUnit('agent', { ...good(), [field]: value }));
        expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
        expect(err.message).toMatch(why);
        expect(err.details).toEqual({ field });
      });
    }

    it('accepts numeric ids and ordinary names', () => {
      expect(() => renderUnit('agent', { ...good(), user: '0', group: 'meshctl-ops' })).not.toThrow();
    });

    it('refuses an unknown kind', () => {
      const err = catchMeshError(() => renderUnit('proxy' as UnitKind, good()));
      expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
    });
  });

  it('fails loudly on a template placeholder without a value', () => {
    const template = readFileSync(templatePath('agent'), 'utf8').replace(
      '--data-dir {{DATA_DIR}}',
      '--data-dir {{DATA_DIR}} --port {{PORT}}',
    );
    const err = catchMeshError(() => renderTemplate(template, defaultUnitVars('agent', { dataDir })));
    expect(err.code).toBe('MESH_ERR_INTERNAL');
    expect(err.message).toContain('{{PORT}}');
  });
});
