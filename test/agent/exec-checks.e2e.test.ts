/**
 * No root through the socket (#9): a member of group meshctl can talk to the agent, and the
 * agent once ran whatever an exec check named. With a real agent: an exec check registered
 * through the socket (`meshctl register ... --check exec:...`) is refused and nothing runs;
 * a definition file with one is refused too while the agent runs without
 * --enable-exec-checks, and `meshctl services` says why.
 */
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTS } from '../helpers/hosts.js';
import { registerArgs, startMesh, type MeshAgent, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [HOST] = HOSTS.execChecks;

interface ServicesView {
  services: Array<{ id: string }>;
  definitionProblems: Array<{ file: string; message: string }>;
}

describe('exec checks are refused by default (real agent)', () => {
  let mesh: TestMesh;
  let agent: MeshAgent;
  let marker: string;

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'deny', leaseTtl: '5s' });
    agent = await mesh.addAgent('host-e', HOST, { services: ['x', 'y'] });
    marker = join(mesh.dir, 'exec-ran');
  });
  afterAll(async () => {
    await mesh?.close();
  });

  async function services(): Promise<ServicesView> {
    const r = await agent.cli(['services', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ServicesView;
  }

  it('refuses an exec check registered through the socket, registers nothing and runs nothing', async () => {
    const r = await agent.cli(
      registerArgs({
        name: 'x',
        port: 9,
        address: agent.address,
        proxy: false,
        extra: ['--check', `exec:sh -c 'id > ${marker}'`, '--interval', '200ms'],
      }),
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("service 'x': exec checks cannot be registered through the agent socket");
    expect(r.stderr).toContain('--enable-exec-checks');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await services()).services).toEqual([]);
    await new Promise((res) => setTimeout(res, 600));
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a definition file with one on an agent started without --enable-exec-checks, and says why', async () => {
    const file = join(agent.servicesDir, 'y.yaml');
    await writeFile(
      file,
      `service:\n  name: y\n  port: 9\n  proxy: false\n  checks:\n    - exec: sh -c 'id > ${marker}'\n      interval: 200ms\n`,
      { mode: 0o644 },
    );
    const view = await eventually(
      async () => {
        const v = await services();
        return v.definitionProblems.length > 0 ? v : undefined;
      },
      { what: 'the refused definition reported', timeoutMs: 20_000 },
    );
    expect(view.definitionProblems).toEqual([
      {
        file,
        message:
          "service 'y' has an exec check: exec checks are off on this agent (start it with --enable-exec-checks)",
        registered: [],
      },
    ]);
    expect(view.services).toEqual([]);
    expect(existsSync(marker)).toBe(false);
  });

  it("keeps its keys from the socket's group: a 0700 data directory, the node key 0600", async () => {
    expect((await stat(agent.dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(agent.dataDir, 'tls'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(agent.dataDir, 'tls', 'node.key'))).mode & 0o777).toBe(0o600);
  });
});
