/**
 * Small CLI answers (#11.6): `intention check` exits 2 when denied, and with `intention list`
 * says when L7 permissions decide each request (#14); a malformed
 * --ca-fingerprint is refused before anything is contacted; a bad join token's hint is about
 * join tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';

describe('small CLI answers', () => {
  let mesh: TestMesh;
  let scratch: string;
  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'deny' });
    scratch = await mkdtemp(join(tmpdir(), 'meshctl-answers-'));
  }, 60_000);
  afterAll(async () => {
    await mesh?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('intention check exits 0 when allowed and 2 when denied, by an intention or by the default', async () => {
    const byDefault = await mesh.admin(['intention', 'check', 'web', 'api']);
    expect(byDefault.exitCode).toBe(2);
    expect(byDefault.stdout).toContain('Denied: web -> api (decided by the default policy)');
    expect((await mesh.admin(['intention', 'allow', 'web', 'api'])).exitCode).toBe(0);
    const allowed = await mesh.admin(['intention', 'check', 'web', 'api']);
    expect(allowed.exitCode).toBe(0);
    expect(allowed.stdout).toContain('Allowed: web -> api');
    expect((await mesh.admin(['intention', 'deny', 'web', 'db'])).exitCode).toBe(0);
    const json = await mesh.admin(['intention', 'check', 'web', 'db', '--json']);
    expect(json.exitCode).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ action: 'deny' });
  });

  it('intention list and check say when L7 permissions decide each request, not a bare allow', async () => {
    const file = join(scratch, 'intentions.yaml');
    await writeFile(
      file,
      `kind: service-intentions
name: billing
sources:
  - name: web
    permissions:
      - { action: deny, http: { path_prefix: /admin } }
      - { action: allow, http: { path_prefix: /api/, methods: [GET] } }
  - name: batch
    action: allow
`,
    );
    expect((await mesh.admin(['apply', '-f', file])).exitCode).toBe(0);
    const list = await mesh.admin(['intention', 'list']);
    expect(list.stdout).toMatch(/^web\s+billing\s+allow, 2 L7 permissions\s*$/m);
    expect(list.stdout).toMatch(/^batch\s+billing\s+allow\s*$/m);
    const check = await mesh.admin(['intention', 'check', 'web', 'billing']);
    expect(check.exitCode).toBe(0);
    expect(check.stdout).toContain(
      'Allowed: web -> billing (decided by intention web -> billing; 2 L7 permissions decide each request)',
    );
    const json = await mesh.admin(['intention', 'check', 'web', 'billing', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ matched: { source: 'web', permissions: 2 } });
    const plain = await mesh.admin(['intention', 'check', 'batch', 'billing', '--json']);
    expect(JSON.parse(plain.stdout).matched).toEqual({ source: 'batch', destination: 'billing', action: 'allow' });
  });

  it('refuses a malformed --ca-fingerprint before contacting anyone, and makes nothing', async () => {
    const dir = join(scratch, 'fp');
    // Port 1 on loopback: nobody answers there, so contacting it would fail differently.
    for (const fp of ['abc', 'AB:CD', `${'A'.repeat(63)}G`]) {
      const r = await runCli(
        ['init', '--join', 'https://127.0.0.1:1', '--token', 'x', '--ca-fingerprint', fp, '--data-dir', dir],
        mesh.env,
      );
      expect(r.exitCode, fp).toBe(64);
      expect(r.stderr).toContain(`malformed --ca-fingerprint '${fp}'`);
      expect(r.stderr).toContain('MESH_ERR_INVALID_ARGUMENT');
    }
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('says a wrong join token is a join token problem, in the hint', async () => {
    const r = await runCli(
      [
        'init',
        '--join',
        mesh.registryUrl,
        '--token',
        'mjt_nope_wrongwrongwrong',
        '--ca-fingerprint',
        mesh.caFingerprint,
        '--node-name',
        'nobody',
        '--advertise',
        '127.0.8.9',
        '--data-dir',
        join(scratch, 'tok'),
      ],
      mesh.env,
    );
    expect(r.exitCode).toBe(77);
    expect(r.stderr).toMatch(/hint: .*join token/);
    expect(r.stderr).not.toMatch(/hint: Pass the admin token/);
  });
});
