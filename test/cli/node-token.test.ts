import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startCliRegistry, stopAllDaemons } from '../helpers/cli.js';

/** `meshctl init --server`, `token` and `node` as an admin uses them, against a real registry process. */
describe('meshctl token and node (real registry)', () => {
  let dir: string;
  let env: Record<string, string>;
  let initText: string;
  const cli = (args: string[]) => runCli(args, env);
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cli([...args, '--json']);
    if (r.exitCode !== 0) throw new Error(`meshctl ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    const reg = await startCliRegistry('meshctl-nodecli-');
    ({ dir, env } = reg);
    initText = reg.init.stdout;
  });
  afterAll(async () => {
    await stopAllDaemons();
    await rm(dir, { recursive: true, force: true });
  });

  it('init --server says the first join token is for one host and how to make scoped tokens', () => {
    expect(initText).toMatch(
      /Join token \(one host, expires \S+; the host may serve no services until you allow them\):/,
    );
    expect(initText).toContain("meshctl token create --service api [--service 'batch-*']");
    expect(initText).toContain('meshctl node allow NODE api');
    expect(initText).toMatch(/node certificates 24h/);
  });

  it('makes scoped, counted join tokens and flags any-service ones wherever tokens are listed', async () => {
    const scoped = await cli(['token', 'create', '--service', 'api', '--service', 'batch-*', '--uses', '2']);
    expect(scoped.exitCode, scoped.stderr).toBe(0);
    expect(scoped.stdout).toMatch(
      /^Join token [0-9a-f]{16} \(expires \S+, 2 uses\):\n {2}msh_\S+\n {2}may serve: api,batch-\*$/,
    );
    const any = await cli(['token', 'create', '--any-service']);
    expect(any.stdout).toContain('may serve: ANY SERVICE (--any-service)');
    expect(any.stdout).toContain('warning: a node joining with this token may get a certificate for any service name.');
    const list = await cli(['token', 'list']);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID +KIND +STATE +USES +EXPIRES +MAY SERVE +DESCRIPTION$/);
    expect(list.stdout).toMatch(/join +active +0\/2 +\S+ +api,batch-\*/);
    expect(list.stdout).toMatch(/join +active +- +\S+ +ANY SERVICE \(--any-service\)/);
    expect(list.stdout).toMatch(/admin +active +- +- +\(admin: everything\)/);
  });

  it('refuses bad scopes before contacting the registry', async () => {
    for (const [args, re] of [
      [['token', 'create', '--service', '*'], /not a service name or pattern/],
      [['token', 'create', '--service', 'API'], /not a service name or pattern/],
      [['token', 'create', '--service', 'api', '--any-service'], /not both/],
      [['token', 'create', '--admin', '--service', 'api'], /--admin takes none of/],
      [['token', 'create', '--uses', '0'], /not a valid number of uses/],
    ] as const) {
      const r = await cli([...args, '--registry', 'https://127.0.0.1:1']);
      expect(r.exitCode, r.stderr).toBe(64);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    }
  });

  it('shows, allows, denies and removes a node', async () => {
    const token = await json<{ token: string }>(['token', 'create', '--service', 'api', '--uses', '1']);
    const agentDir = join(dir, 'agent-n1');
    const fp = (await json<{ roots: Array<{ fingerprint: string }> }>(['ca', 'show'])).roots[0]!.fingerprint;
    const j = await cli([
      'init',
      '--join',
      env.MESHCTL_REGISTRY!,
      '--token',
      token.token,
      '--ca-fingerprint',
      fp,
      '--node-name',
      'n1',
      '--advertise',
      '127.0.0.1',
      '--data-dir',
      agentDir,
      '--socket',
      join(agentDir, 'a.sock'),
      '--services-dir',
      join(agentDir, 'services.d'),
    ]);
    expect(j.exitCode, j.stderr).toBe(0);

    const show = await cli(['node', 'show', 'n1']);
    expect(show.stdout).toMatch(
      /^node +n1 \(127\.0\.0\.1\)\nstatus +not alive \(lease expired\)\nmay serve +api\ninstances +\(none\)\ncertificates +1 issued and not expired\njoined +\S+ with token [0-9a-f]{16}$/,
    );
    const allow = await cli(['node', 'allow', 'n1', 'web', 'batch-*']);
    expect(allow.stdout).toBe('Node n1 may serve: api, batch-*, web');
    const nodes = await cli(['catalog', 'nodes']);
    expect(nodes.stdout).toMatch(/n1 +127\.0\.0\.1 +critical \(lease expired\) +0 +- +api, batch-\*, web/);
    const deny = await cli(['node', 'deny', 'n1', 'web']);
    expect(deny.stdout).toBe('Node n1 may serve: api, batch-*');
    const any = await cli(['node', 'allow', 'n1', '--any-service']);
    expect(any.stdout).toBe('Node n1 may serve: ANY SERVICE (--any-service)');
    const noArgs = await cli(['node', 'allow', 'n1']);
    expect(noArgs.exitCode).toBe(64);
    expect(noArgs.stderr).toMatch(/name the services to allow, or pass --any-service/);

    const removed = await cli(['node', 'remove', 'n1']);
    expect(removed.stdout).toBe(
      'Removed node n1: deregistered, 1 certificate revoked.\nIts sidecar peers refuse the revoked certificates as soon as their snapshots update.',
    );
    const gone = await cli(['node', 'show', 'n1']);
    expect(gone.exitCode).toBe(66);
    expect(gone.stderr).toMatch(/node 'n1' has not joined the mesh/);
  });

  it('refuses to revoke the last admin token, and makes another with --admin', async () => {
    const tokens = await json<{ tokens: Array<{ id: string; kind: string }> }>(['token', 'list']);
    const adminId = tokens.tokens.find((t) => t.kind === 'admin')!.id;
    const r = await cli(['token', 'revoke', adminId]);
    expect(r.exitCode).toBe(65);
    expect(r.stderr).toMatch(/is the last admin token; revoking it would lock every admin out/);
    expect(r.stderr).toMatch(/meshctl token create --admin/);
    const made = await cli(['token', 'create', '--admin', '--description', 'second admin']);
    expect(made.stdout).toMatch(/^Admin token [0-9a-f]{16} \(never expires\):\n {2}msh_\S+$/);
  });
});
