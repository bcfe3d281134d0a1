/**
 * The demo's mesh joins its hosts the secure way (#9): each with a join token of its own, for
 * one join, naming exactly the services that host serves — never an any-service token. Real
 * processes (src/demo/cluster.ts), on loopback hosts of this file's own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../../src/demo/cluster.js';
import { CLI } from '../helpers/cli.js';
import { HOSTS } from '../helpers/hosts.js';

const [HOST_API, HOST_WEB] = HOSTS.demoScopes;

describe("the demo's hosts join with scoped, single-use tokens", () => {
  let dir: string;
  let mesh: LocalMesh;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-demo-scopes-'));
    mesh = new LocalMesh(dir, { cliEntry: CLI });
    await mesh.startRegistry();
    await mesh.addAgent('demo-api', HOST_API, ['api']);
    await mesh.addAgent('demo-web', HOST_WEB, ['web']);
  });
  afterAll(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('authorizes each host for its own services only', async () => {
    for (const [node, services] of [
      ['demo-api', ['api']],
      ['demo-web', ['web']],
    ] as const) {
      expect((await mesh.admin!.node(node)).authorization).toEqual({ services, anyService: false });
    }
  });

  it('used one join token per host, each used up, none any-service', async () => {
    const joins = (await mesh.admin!.tokens()).filter(
      (t) => t.kind === 'join' && t.description.startsWith('demo host'),
    );
    expect(joins.map((t) => t.description).sort()).toEqual(['demo host demo-api', 'demo host demo-web']);
    for (const t of joins) {
      expect(t).toMatchObject({ maxUses: 1, uses: 1 });
      expect(t.anyService).toBeUndefined();
      expect(t.services).toEqual([t.description === 'demo host demo-api' ? 'api' : 'web']);
    }
  });
});
