/**
 * The recovery path (src/registry/recovery.ts, `meshctl registry admin-token`): with every
 * admin token it knows lost or revoked, the registry host's operator makes a new one from the
 * local files. Real processes: `init --server`, `registry start`, the CLI.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';

let mesh: TestMesh;
let regDir: string;

beforeAll(async () => {
  mesh = await startMesh();
  regDir = join(mesh.dir, 'registry');
});
afterAll(async () => {
  await mesh?.close();
});

/** `meshctl token list` with `token` instead of the mesh's admin token. */
function tokenList(token: string) {
  return runCli(['token', 'list', '--json'], { ...mesh.env, MESHCTL_TOKEN: token, MESHCTL_REGISTRY: mesh.registryUrl });
}

describe('meshctl registry admin-token', () => {
  it('makes a working admin token from the local files when the known ones are gone, and audits it', async () => {
    // The operator's admin token is replaced by one that is then lost: no usable token known.
    const spare = await mesh.adminJson<{ token: string; info: { id: string } }>(['token', 'create', '--admin']);
    const firstId = (
      await mesh.adminJson<{ tokens: Array<{ id: string; kind: string }> }>(['token', 'list'])
    ).tokens.find((t) => t.kind === 'admin' && t.id !== spare.info.id)!.id;
    const revoke = await runCli(['token', 'revoke', firstId], {
      ...mesh.env,
      MESHCTL_TOKEN: spare.token,
      MESHCTL_REGISTRY: mesh.registryUrl,
    });
    expect(revoke.exitCode, revoke.stderr).toBe(0);
    expect((await tokenList(mesh.env.MESHCTL_TOKEN!)).exitCode).not.toBe(0);

    // While the registry runs it holds its sqlite store: the command says what to do, changes nothing.
    const busy = await runCli(['registry', 'admin-token', '--data-dir', regDir], mesh.env);
    expect(busy.exitCode).not.toBe(0);
    expect(busy.stderr).toContain(`the registry is running on ${regDir} and holds its store`);
    expect(busy.stderr).toContain('systemctl stop meshctl-registry');
    expect(busy.stderr).not.toMatch(/\n\s+at /);

    await mesh.stopRegistry();
    const made = await runCli(['registry', 'admin-token', '--data-dir', regDir, '--json'], mesh.env);
    expect(made.exitCode, made.stderr).toBe(0);
    const out = JSON.parse(made.stdout) as { token: string; info: { id: string; kind: string } };
    expect(out.info.kind).toBe('admin');
    expect(out.token).toMatch(new RegExp(`^msh_${out.info.id}_`));
    await mesh.startRegistry();

    const listed = await tokenList(out.token);
    expect(listed.exitCode, listed.stderr).toBe(0);
    const tokens = (JSON.parse(listed.stdout) as { tokens: Array<{ id: string; description: string }> }).tokens;
    expect(tokens.find((t) => t.id === out.info.id)?.description).toMatch(/^recovery by .+ on the registry host$/);
    // Only the one made after the registry stopped: the refused attempt made none.
    expect(tokens.filter((t) => t.description.startsWith('recovery by'))).toHaveLength(1);

    const audit = (await readFile(join(regDir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toContainEqual(
      expect.objectContaining({
        tokenId: 'recovery',
        kind: 'recovery',
        action: 'registry admin-token',
        detail: expect.objectContaining({ created: out.info.id }) as unknown,
      }),
    );
    // And what the new token does is audited under its own id.
    expect(
      (
        await runCli(['intention', 'allow', 'web', 'api'], {
          ...mesh.env,
          MESHCTL_TOKEN: out.token,
          MESHCTL_REGISTRY: mesh.registryUrl,
        })
      ).exitCode,
    ).toBe(0);
    const after = await readFile(join(regDir, 'audit.log'), 'utf8');
    expect(after).toContain(`"tokenId":"${out.info.id}","kind":"admin","action":"PUT /v1/intentions`);
  });

  it('refuses a directory that holds no registry, with a clear error', async () => {
    const r = await runCli(['registry', 'admin-token', '--data-dir', join(mesh.dir, 'nothing-here')], mesh.env);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('no registry configuration at');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
