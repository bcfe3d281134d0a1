/**
 * Golden files pin what every command prints, as text and as --json, against one real mesh
 * (a registry and an agent on 127.0.12.2). What differs between runs (tokens, ids, fingerprints,
 * times, ports, temp paths) is replaced by placeholders; everything else must match the file in
 * test/cli/testdata/ to the byte. UPDATE_GOLDEN=1 rewrites the files after an intended change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startEtcdCluster } from '../helpers/etcd.js';
import { expectGolden, scrub, sortRows } from '../helpers/golden.js';
import { ETCD_PORTS, HOSTS } from '../helpers/hosts.js';
import { startMesh, type MeshAgent, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [HOST, JOIN_TEXT, JOIN_JSON] = HOSTS.golden;
/** No etcd listens here (structure's port block): the refusal of an endpoint nobody answers on. */
const UNUSED_ETCD = `http://${HOSTS.golden[3]}:${ETCD_PORTS.goldenUnused}`;

describe('golden output of every command (real processes)', () => {
  let mesh: TestMesh;
  let agent: MeshAgent;
  const ids = new Map<string, string>();

  /** Every run's own values out, so only what the command chose to print is left. */
  const clean = (text: string): string =>
    scrub(text, [
      [mesh.dir, '<DIR>'],
      [mesh.registryUrl, 'https://127.0.0.1:<PORT>'],
    ])
      // Token and registry ids are random: the first one seen is <id-1>, and so on, so a golden
      // still says which is which (padded to the id's length, for the tables).
      .replace(/\b[0-9a-f]{16}\b/g, (id) => {
        if (!ids.has(id)) ids.set(id, `<id-${ids.size + 1}>`.padEnd(16, '.'));
        return ids.get(id)!;
      })
      // How many writes the registry has seen, how many watches are held, the agent's pid: timing.
      .replace(/"(revision|createRevision|modRevision|pid|blockingQueries)": \d+/g, '"$1": "<N>"')
      .replace(/\b(rev|revision) \d+/g, '$1 <N>')
      .replace(/( +)(\d+)s ago\b/g, (_m, sp: string, n: string) => `${' '.repeat(sp.length + n.length - 1)}Ns ago`);

  /** Runs one command twice, as text and as --json, and pins both; the JSON is an object at the top. */
  const pin = async (
    name: string,
    run: (args: string[]) => Promise<CliResult>,
    args: string[],
    opts: { json?: boolean; again?: () => Promise<unknown> } = {},
  ) => {
    const text = await run(args);
    expect(text.stderr, `${name}: ${text.stderr}`).toBe('');
    expect(text.exitCode).toBe(0);
    await expectGolden(`${name}.txt`, clean(text.stdout));
    if (opts.json === false) return;
    // A command that changes something: put the state back so the --json run does the same.
    await opts.again?.();
    const j = await run([...args, '--json']);
    expect(j.stderr, `${name} --json: ${j.stderr}`).toBe('');
    expect(j.exitCode).toBe(0);
    const data = JSON.parse(j.stdout) as unknown;
    expect(typeof data === 'object' && data !== null && !Array.isArray(data), `${name} --json is an object`).toBe(true);
    await expectGolden(`${name}.json`, clean(j.stdout));
  };

  const admin = (args: string[]) => mesh.admin(args);
  const onAgent = (args: string[]) => agent.cli(args);

  beforeAll(async () => {
    mesh = await startMesh({ leaseTtl: '5s' });
    agent = await mesh.addAgent('golden-a', HOST!, { services: ['api', 'web'] });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('ca show', async () => {
    await pin('ca-show', admin, ['ca', 'show']);
    await pin('ca-show-pem', admin, ['ca', 'show', '--pem'], { json: false });
  });

  it('register, services, check, deregister (through the agent)', async () => {
    await pin('register-service', onAgent, [
      'register',
      'service',
      'api',
      '--port',
      '9000',
      '--tag',
      'v1',
      '--check',
      'ttl:1m',
      '--no-proxy',
    ]);
    const file = join(mesh.dir, 'web.yaml');
    await writeFile(
      file,
      ['services:', '  - name: web', '    port: 8080', '    proxy: false', '    checks:', '      - ttl: 1m', ''].join(
        '\n',
      ),
    );
    await pin('register-file', onAgent, ['register', '-f', file]);
    await pin('services', onAgent, ['services']);
    for (const verb of ['pass', 'warn', 'fail'])
      await pin(`check-${verb}`, onAgent, ['check', verb, 'api-ttl', '--note', `said ${verb}`]);
    await pin('agent-info', onAgent, ['agent', 'info']);
  });

  it('catalog services, nodes, instances', async () => {
    // The agent passes check states on to the registry on its own time: wait for the last one.
    await eventually(
      async () => {
        const r = await mesh.adminJson<{ instances: Array<{ checkStates: Record<string, { output: string }> }> }>([
          'catalog',
          'instances',
          'api',
        ]);
        return r.instances[0]?.checkStates['api-ttl']?.output === 'said fail';
      },
      { what: "the registry to hear of 'meshctl check fail'" },
    );
    await pin('catalog-services', admin, ['catalog', 'services']);
    await pin('catalog-nodes', admin, ['catalog', 'nodes']);
    await pin('catalog-instances', admin, ['catalog', 'instances', 'api']);
    await pin('catalog-instances-healthy', admin, ['catalog', 'instances', 'web', '--healthy']);
  });

  it('intention allow, deny, list, check, delete', async () => {
    await pin('intention-allow', admin, ['intention', 'allow', 'web', 'api', '--description', 'web calls api']);
    await pin('intention-deny', admin, ['intention', 'deny', '*', 'api']);
    await pin('intention-list', admin, ['intention', 'list']);
    await pin('intention-check', admin, ['intention', 'check', 'web', 'api']);
    await pin('intention-delete', admin, ['intention', 'delete', '*', 'api'], {
      again: () => admin(['intention', 'deny', '*', 'api']),
    });
  });

  it('node show, allow, deny', async () => {
    await pin('node-allow', admin, ['node', 'allow', 'golden-a', 'db']);
    await pin('node-deny', admin, ['node', 'deny', 'golden-a', 'db']);
    await pin('node-show', admin, ['node', 'show', 'golden-a']);
  });

  it('token create, list, revoke', async () => {
    await pin('token-create', admin, [
      'token',
      'create',
      '--service',
      'api',
      '--uses',
      '2',
      '--description',
      'api hosts',
    ]);
    await pin('token-create-admin', admin, ['token', 'create', '--admin', '--ttl', '1h', '--description', 'ci']);
    const made = JSON.parse((await admin(['token', 'create', '--service', 'db', '--json'])).stdout) as {
      info: { id: string };
    };
    await pin('token-revoke', admin, ['token', 'revoke', made.info.id], { json: false });
    const again = JSON.parse((await admin(['token', 'create', '--service', 'db', '--json'])).stdout) as {
      info: { id: string };
    };
    const revoked = await admin(['token', 'revoke', again.info.id, '--json']);
    await expectGolden('token-revoke.json', clean(revoked.stdout));
  });

  it('apply, get config, config history, delete config', async () => {
    const file = join(mesh.dir, 'api-defaults.yaml');
    await writeFile(
      file,
      ['kind: service-defaults', 'name: api', 'protocol: http', 'load_balancer:', '  policy: least_request', ''].join(
        '\n',
      ),
    );
    await pin('apply-dry-run', admin, ['apply', '-f', file, '--dry-run']);
    await pin('apply', admin, ['apply', '-f', file], {
      again: () => admin(['delete', 'config', 'service-defaults', 'api']),
    });
    await pin('get-config', admin, ['get', 'config']);
    await pin('get-config-yaml', admin, ['get', 'config', 'service-defaults', 'api', '-o', 'yaml'], { json: false });
    await pin('config-history', admin, ['config', 'history']);
    await pin('delete-config', admin, ['delete', 'config', 'service-defaults', 'api'], {
      again: () => admin(['apply', '-f', file]),
    });
  });

  it('token list (rows sorted: the store lists tokens by their random ids)', async () => {
    const text = await admin(['token', 'list']);
    expect(text.exitCode, text.stderr).toBe(0);
    await expectGolden('token-list.txt', clean(sortRows(text.stdout, (id) => ids.get(id) ?? '')));
    const json = await admin(['token', 'list', '--json']);
    expect(json.exitCode, json.stderr).toBe(0);
    const { tokens } = JSON.parse(json.stdout) as { tokens: Array<{ id: string }> };
    const key = (t: { id: string }) => JSON.stringify({ ...t, id: ids.get(t.id) ?? '', createdAt: '', expiresAt: '' });
    tokens.sort((a, b) => key(a).localeCompare(key(b)));
    await expectGolden('token-list.json', clean(`${JSON.stringify({ tokens }, null, 2)}\n`));
  });

  it('status, once and as JSON', async () => {
    await pin('status', admin, ['status', '--once']);
  });

  it('init --server', async () => {
    const init = (dir: string) => (args: string[]) =>
      runCli(
        [
          'init',
          '--server',
          '--data-dir',
          join(mesh.dir, dir),
          '--bind',
          '127.0.0.1:0',
          '--advertise',
          '127.0.0.1',
          '--no-save',
          ...args,
        ],
        mesh.env,
      );
    const text = await init('init-text')([]);
    expect(text.exitCode, text.stderr).toBe(0);
    await expectGolden('init-server.txt', clean(text.stdout));
    const json = await init('init-json')(['--json']);
    expect(json.exitCode, json.stderr).toBe(0);
    await expectGolden('init-server.json', clean(json.stdout));
  });

  it('init --join, and node remove of a joined host', async () => {
    const join_ = async (name: string, address: string, json: boolean) => {
      const dataDir = join(mesh.dir, `agent-${name}`);
      await mkdir(dataDir, { recursive: true });
      const args = ['--data-dir', dataDir, '--socket', join(dataDir, 'agent.sock')];
      return mesh.joinHost(name, address, [
        ...args,
        '--services-dir',
        join(dataDir, 'services.d'),
        ...(json ? ['--json'] : []),
      ]);
    };
    const text = await join_('golden-b', JOIN_TEXT!, false);
    expect(text.exitCode, text.stderr).toBe(0);
    await expectGolden('init-join.txt', clean(text.stdout));
    const json = await join_('golden-c', JOIN_JSON!, true);
    expect(json.exitCode, json.stderr).toBe(0);
    await expectGolden('init-join.json', clean(json.stdout));
    await pin('node-remove', admin, ['node', 'remove', 'golden-b'], { json: false });
    const removed = await admin(['node', 'remove', 'golden-c', '--json']);
    await expectGolden('node-remove.json', clean(removed.stdout));
  });

  it('deregister, then agent leave', async () => {
    await pin('deregister-service', onAgent, ['deregister', 'service', 'web'], {
      again: () => onAgent(['register', 'service', 'web', '--port', '8080', '--no-proxy']),
    });
    await pin('agent-leave', onAgent, ['agent', 'leave'], { json: false });
  });

  /**
   * A refused command, run as text and as --json: nothing on stdout, the same exit code, a
   * MESH_ERR_ code in the JSON; both pinned with their exit code.
   */
  const pinRefusal = async (
    name: string,
    run: (args: string[]) => Promise<CliResult>,
    args: readonly string[],
    /** What the JSON carries that differs between runs (its own placeholder). */
    varies: ReadonlyArray<readonly [RegExp, string]> = [],
  ) => {
    const text = await run([...args]);
    const json = await run([...args, '--json']);
    const stderr = varies.reduce((out, [re, to]) => out.replace(re, to), json.stderr);
    expect(text.exitCode, `${name}: ${text.stderr}`).not.toBe(0);
    expect(json.exitCode).toBe(text.exitCode);
    expect(text.stdout + json.stdout).toBe('');
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: expect.stringMatching(/^MESH_ERR_/) } });
    await expectGolden(`${name}.txt`, clean(`exit ${text.exitCode}\n${text.stderr}`));
    await expectGolden(`${name}.json`, clean(`exit ${json.exitCode}\n${stderr}`));
  };

  it('errors: text and --json', async () => {
    await pinRefusal('error-usage', admin, ['catalog', 'instances', 'api', '--bogus']);
    await pinRefusal('error-bad-flag', admin, ['token', 'create', '--ttl', '10']);
    await pinRefusal('error-not-found', admin, ['node', 'show', 'nosuch']);
  });

  it('daemons: a bad flag is refused before anything starts, as text and as JSON', async () => {
    // Their output once running is one stderr line (not pinned); a refused flag is pinned, and
    // --json after it makes the error JSON as for every other command.
    await pinRefusal('error-registry-start', runCli, ['registry', 'start', '--bogus']);
    await pinRefusal('error-agent-start', runCli, ['agent', 'start', '--bogus']);
    await pinRefusal('error-proxy-run', runCli, ['proxy', 'run', '--drain', '10']);
  });

  it('demo: its bad flags, refused before anything starts', async () => {
    // A run's own summary (request counts, latencies) differs every time: test/demo pins it.
    await pinRefusal('error-demo-rps', runCli, ['demo', '--rps', '0']);
    await pinRefusal('error-demo-duration', runCli, ['demo', '--duration', '10']);
  });

  it('agent install, registry install: what they refuse, before writing a unit', async () => {
    // What an install prints depends on the machine (systemd running, where node and meshctl
    // live: the unit refuses paths under /tmp or a home): test/systemd covers it.
    const units = join(mesh.dir, 'units');
    await mkdir(units, { recursive: true });
    const cli = (args: string[]) => runCli(args, mesh.env);
    const agentInstall = ['agent', 'install', '--unit-dir', units, '--data-dir', join(mesh.dir, 'agent-x')];
    const registryInstall = ['registry', 'install', '--unit-dir', units];
    await pinRefusal('error-agent-install-user', cli, [...agentInstall, '--user', 'meshctl-no-such-user']);
    await pinRefusal('error-registry-install-store', cli, [...registryInstall, '--store', 'bogus']);
    // The mesh's registry is on sqlite: a unit for etcd would fail at its first start.
    const sqliteDir = join(mesh.dir, 'registry');
    await pinRefusal('error-registry-install-mismatch', cli, [
      ...registryInstall,
      '--store',
      'etcd',
      '--data-dir',
      sqliteDir,
    ]);
    const none = join(mesh.dir, 'no-registry');
    await pinRefusal('error-registry-install-uninit', cli, [...registryInstall, '--store', 'etcd', '--data-dir', none]);
    expect(await readdir(units)).toEqual([]);
  });

  it('init --server --store etcd: what it refuses, writing nothing', async () => {
    const dataDir = join(mesh.dir, 'etcd-refused');
    const init = (args: string[]) =>
      runCli(['init', '--server', '--data-dir', dataDir, '--no-save', ...args], mesh.env);
    await pinRefusal('error-init-etcd-endpoints', init, ['--store', 'etcd']);
    await pinRefusal('error-init-etcd-store', init, ['--etcd-endpoints', UNUSED_ETCD]);
    // Which of gRPC's errors comes first (refused, no connection yet, breaker open) varies: the
    // message does not; gRPC's own is kept under details.
    await pinRefusal(
      'error-init-etcd-unreachable',
      init,
      ['--store', 'etcd', '--etcd-endpoints', UNUSED_ETCD],
      [[/"details":\{"error":"[^"]*"\}/, '"details":{"error":"<gRPC error>"}']],
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  it('init --server --store etcd: a new mesh, and a second registry joining it (text and --json)', async () => {
    const etcd = await startEtcdCluster({ basePort: ETCD_PORTS.golden, dir: join(mesh.dir, 'etcd'), size: 1 });
    try {
      // Text and JSON each make their own mesh (their own key prefix) and join it with its mesh key.
      const init = (host: string, prefix: string, args: string[]) =>
        runCli(
          [
            'init',
            '--server',
            '--store',
            'etcd',
            '--etcd-endpoints',
            etcd.endpoints.join(','),
            '--etcd-prefix',
            prefix,
            '--data-dir',
            join(mesh.dir, `etcd-${host}`),
            '--bind',
            '127.0.0.1:0',
            '--advertise',
            '127.0.0.1',
            '--no-save',
            ...args,
          ],
          mesh.env,
        );
      for (const [suffix, json] of [
        ['txt', []],
        ['json', ['--json']],
      ] as const) {
        const prefix = `/golden-${suffix}/`;
        const made = await init(`first-${suffix}`, prefix, [...json]);
        expect(made.exitCode, made.stderr).toBe(0);
        await expectGolden(`init-server-etcd.${suffix}`, clean(made.stdout));
        const meshKey = join(mesh.dir, `etcd-first-${suffix}`, 'mesh.key');
        const joined = await init(`second-${suffix}`, prefix, ['--mesh-key', meshKey, ...json]);
        expect(joined.exitCode, joined.stderr).toBe(0);
        await expectGolden(`init-server-etcd-join.${suffix}`, clean(joined.stdout));
      }
    } finally {
      await etcd.stop();
    }
  });

  it("registry admin-token (recovery from the registry's own files; last, as it adds tokens)", async () => {
    const cli = (args: string[]) => runCli(args, mesh.env);
    const dataDir = ['--data-dir', join(mesh.dir, 'registry')];
    // It writes the store itself, so it refuses while the registry holds it.
    await pinRefusal('error-registry-admin-token-running', cli, ['registry', 'admin-token', ...dataDir]);
    await mesh.stopRegistry();
    await pin('registry-admin-token', cli, ['registry', 'admin-token', ...dataDir, '--description', 'lost them all']);
  });
});
