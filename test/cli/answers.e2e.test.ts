/**
 * Small CLI answers (#11.6): `intention check` exits 2 when denied; a malformed
 * --ca-fingerprint is refused before anything is contacted; a bad join token's hint is about
 * join tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
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
