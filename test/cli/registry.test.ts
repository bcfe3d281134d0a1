import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, stat, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCli, startCli, stopAllDaemons, type CliDaemon } from '../helpers/cli.js';
import { parseToken } from '../../src/registry/tokens.js';

describe('meshctl init --server and registry start (real processes)', () => {
  let dir: string;
  let env: Record<string, string>;
  let dataDir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-cli-'));
    dataDir = join(dir, 'm');
    env = { MESHCTL_CONFIG_DIR: join(dir, 'config') };
  });
  afterEach(async () => {
    await stopAllDaemons();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const startRegistry = async (port = 0): Promise<{ d: CliDaemon; url: string }> => {
    const d = startCli(['registry', 'start', '--data-dir', dataDir, '--bind', `127.0.0.1:${port}`], env);
    const m = await d.waitFor(/listening on (https:\/\/127\.0\.0\.1:(\d+))/);
    return { d, url: m[1]! };
  };

  it('makes a mesh: keys 0600 in a 0700 dir, JSON output, settings saved', async () => {
    const r = await runCli(['init', '--server', '--data-dir', dataDir, '--bind', '127.0.0.1:7443', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ trustDomain: 'mesh.local', defaultIntention: 'deny' });
    expect(out.adminToken).toMatch(/^msh_/);
    expect(out.caFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    for (const f of ['ca/root.key', 'tls/server.key', 'registry.json'])
      expect((await stat(join(dataDir, f))).mode & 0o777).toBe(0o600);
    const config = await readFile(join(dataDir, 'registry.json'), 'utf8');
    // The secret part (it may itself contain '_', so parsed, not split).
    expect(config).not.toContain(parseToken(out.adminToken)!.secret);
    // The defaults: a node lease of 15 s, service certificates for a day.
    expect(JSON.parse(config)).toMatchObject({ leaseTtlSeconds: 15, leafTtlSeconds: 86_400 });
  });

  it('takes the node lease and the certificate lifetime from --lease-ttl and --leaf-ttl', async () => {
    const d = join(dir, 'ttl');
    const r = await runCli(
      [
        'init',
        '--server',
        '--data-dir',
        d,
        '--bind',
        '127.0.0.1:0',
        '--lease-ttl',
        '4s',
        '--leaf-ttl',
        '2h',
        '--json',
        '--no-save',
      ],
      env,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ leaseTtlSeconds: 4, leafTtlSeconds: 7200 });
    expect(JSON.parse(await readFile(join(d, 'registry.json'), 'utf8'))).toMatchObject({
      leaseTtlSeconds: 4,
      leafTtlSeconds: 7200,
    });
    const text = await runCli(
      [
        'init',
        '--server',
        '--data-dir',
        join(dir, 'ttl-text'),
        '--bind',
        '127.0.0.1:0',
        '--leaf-ttl',
        '2h',
        '--no-save',
      ],
      env,
    );
    expect(text.stdout).toContain('lifetimes          node lease 15s, service certificates 2h');
  });

  it('refuses to overwrite an existing mesh without --force, changing nothing', async () => {
    const before = await readFile(join(dataDir, 'ca/root.pem'), 'utf8');
    const r = await runCli(['init', '--server', '--data-dir', dataDir], env);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('already exists');
    expect(r.stderr).toContain('--force');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readFile(join(dataDir, 'ca/root.pem'), 'utf8')).toBe(before);
  });

  it('serves: 401 without a token, the catalog with the admin token, TLS 1.3 with the mesh CA', async () => {
    const { url } = await startRegistry();
    const anon = await runCli(['catalog', 'services', '--registry', url, '--token', ''], { ...env, MESHCTL_TOKEN: '' });
    expect(anon.exitCode).toBe(77);
    expect(anon.stderr).toContain('authentication required');
    const ok = await runCli(['catalog', 'services', '--registry', url], env);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain('no services registered');
    const json = await runCli(['catalog', 'services', '--registry', url, '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ services: [] });

    const port = new URL(url).port;
    const s = await execa(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', join(dataDir, 'ca/root.pem')],
      { input: '', reject: false },
    );
    expect(s.stdout).toMatch(/TLSv1\.3/);
    expect(s.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(s.stdout).toMatch(/meshctl CA mesh\.local/);
  });

  it('keeps an acknowledged registration across kill -9 of the registry', async () => {
    const first = await startRegistry();
    const port = new URL(first.url).port;
    // Join a node and register through the API as the admin (the agent does this for real later).
    const intention = await runCli(['intention', 'allow', 'web', 'api', '--registry', first.url], env);
    expect(intention.exitCode).toBe(0);
    const token = await runCli(
      ['token', 'create', '--description', 'survives', '--registry', first.url, '--json'],
      env,
    );
    expect(token.exitCode).toBe(0);
    const tokenId = JSON.parse(token.stdout).info.id as string;
    await first.d.kill('SIGKILL');

    const second = await startRegistry(Number(port));
    const list = await runCli(['intention', 'list', '--registry', second.url, '--json'], env);
    expect(JSON.parse(list.stdout).intentions).toEqual([
      expect.objectContaining({ source: 'web', destination: 'api', action: 'allow' }),
    ]);
    const tokens = await runCli(['token', 'list', '--registry', second.url, '--json'], env);
    expect(JSON.parse(tokens.stdout).tokens.map((t: { id: string }) => t.id)).toContain(tokenId);
  });

  it('stops cleanly on SIGTERM', async () => {
    const { d } = await startRegistry();
    await d.kill('SIGTERM');
    expect(d.proc.exitCode).toBe(0);
  });

  it('says what is wrong for bad flags and a missing data dir, without a stack trace', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['init', '--server', '--data-dir', join(dir, 'x'), '--default-intention', 'maybe'], 64, /maybe/],
      [['init', '--server', '--data-dir', join(dir, 'y'), '--trust-domain', 'Bad_Domain'], 64, /trust domain/],
      [['init', '--server', '--data-dir', join(dir, 'z'), '--bind', 'nonsense'], 64, /bind/],
      [['init'], 64, /--server/],
      [
        ['init', '--server', '--data-dir', join(dir, 'w'), '--leaf-ttl', '30s'],
        64,
        /'30s' is out of range: use 2m to 365d/,
      ],
      [['init', '--server', '--data-dir', join(dir, 'v'), '--lease-ttl', 'soon'], 64, /'soon' is not a duration/],
      [['registry', 'start', '--data-dir', join(dir, 'missing')], 78, /meshctl init --server/],
      [['catalog', 'services', '--bogus'], 64, /unknown option/],
      [['intention', 'allow', 'Web', 'api'], 64, /not a valid service name/],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli(args, env);
      expect(r.exitCode, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('registry install --store etcd refuses a data directory set up for sqlite, or none, and writes no unit', async () => {
    const units = join(dir, 'units');
    await mkdir(units, { recursive: true });
    const sqliteDir = join(dir, 'for-install');
    expect(
      (await runCli(['init', '--server', '--data-dir', sqliteDir, '--bind', '127.0.0.1:0', '--json'], env)).exitCode,
    ).toBe(0);
    const wrong = await runCli(
      ['registry', 'install', '--store', 'etcd', '--data-dir', sqliteDir, '--unit-dir', units],
      env,
    );
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toContain('MESH_ERR_USAGE');
    expect(wrong.stderr).toContain('initialised for store sqlite, not etcd');
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
    const none = await runCli(
      ['registry', 'install', '--store', 'etcd', '--data-dir', join(dir, 'no-such-registry'), '--unit-dir', units],
      env,
    );
    expect(none.exitCode).not.toBe(0);
    expect(none.stderr).toContain('MESH_ERR_NOT_INITIALIZED');
    expect(none.stderr).toContain('meshctl init --server --store etcd');
    const bad = await runCli(['registry', 'install', '--store', 'zookeeper', '--unit-dir', units], env);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain('zookeeper');
    expect(await readdir(units)).toEqual([]);
  });
});
