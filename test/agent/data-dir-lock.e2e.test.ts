/**
 * One agent per data directory and per socket (#11.1): a second agent is refused and names the
 * one that holds it; nothing of the first one's state or socket is touched; a crashed agent's
 * lock and socket are taken over. A named --data-dir is never silently swapped for the default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, stopAllDaemons } from '../helpers/cli.js';
import { HOSTS } from '../helpers/hosts.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';

describe('agent data-dir lock and socket', () => {
  let mesh: TestMesh;
  let scratch: string;
  const [hostA, hostB] = HOSTS.agentLock;

  beforeAll(async () => {
    mesh = await startMesh({ agents: [{ name: 'lock-a', address: hostA }] });
    scratch = await mkdtemp(join(tmpdir(), 'meshctl-lock-'));
  }, 60_000);
  afterAll(async () => {
    await stopAllDaemons();
    await mesh?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const listIds = async (dataDir: string) => {
    const r = await runCli(['services', '--data-dir', dataDir, '--json'], mesh.env);
    expect(r.exitCode, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { services: Array<{ id: string }> }).services.map((s) => s.id).sort();
  };

  const joinHost = async (name: string, address: string, extra: string[]) => {
    const r = await mesh.joinHost(name, address, ['--json', ...extra]);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { socketPath: string; servicesDir: string; dataDir: string };
  };

  it('refuses a second agent on the same data dir, naming the first, and keeps its registrations', async () => {
    const a = mesh.agents[0]!;
    await a.register({ name: 'keep-me', port: 9400, proxy: false });
    const second = await runCli(['agent', 'start', '--data-dir', a.dataDir], mesh.env);
    expect(second.exitCode).toBe(73);
    expect(second.stderr).toContain(`MESH_ERR_ALREADY_RUNNING`);
    expect(second.stderr).toContain(`another agent (pid ${a.daemon!.pid}) uses the data directory ${a.dataDir}`);
    expect(await listIds(a.dataDir)).toEqual(['keep-me']);
    expect(JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8'))).toMatchObject({
      services: expect.arrayContaining([expect.objectContaining({ id: 'keep-me' })]) as unknown,
    });
  });

  it('refuses an agent of another data dir on a live socket, and the first keeps serving it', async () => {
    const a = mesh.agents[0]!;
    const b = await joinHost('lock-b', hostB, ['--data-dir', join(scratch, 'b'), '--socket', a.socket]);
    expect(b.socketPath).toBe(a.socket);
    const second = await runCli(['agent', 'start', '--data-dir', b.dataDir], mesh.env);
    expect(second.exitCode).toBe(73);
    expect(second.stderr).toContain(`another agent (pid ${a.daemon!.pid}) serves ${a.socket}`);
    expect((await stat(a.socket)).isSocket()).toBe(true);
    expect(await listIds(a.dataDir)).toEqual(['keep-me']);
  });

  it("takes over a crashed agent's lock and socket (kill -9), with its state intact", async () => {
    const a = mesh.agents[0]!;
    await a.stop('SIGKILL');
    // Both stay behind after kill -9.
    expect((await stat(join(a.dataDir, 'agent.lock'))).isFile()).toBe(true);
    expect((await stat(a.socket)).isSocket()).toBe(true);
    await a.start();
    expect(await listIds(a.dataDir)).toEqual(['keep-me']);
  });

  it('with --data-dir, init --join puts the socket and the services dir inside it (root or not)', async () => {
    const dir = join(scratch, 'own');
    const res = await joinHost('lock-c', hostB, ['--data-dir', dir]);
    expect(res.socketPath).toBe(join(dir, 'agent.sock'));
    expect(res.servicesDir).toBe(join(dir, 'services.d'));
    const cfg = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as Record<string, unknown>;
    expect([cfg.socketPath, cfg.servicesDir]).toEqual([join(dir, 'agent.sock'), join(dir, 'services.d')]);
  });

  it('a --data-dir without agent.json is an error, not a fall-back to the default socket', async () => {
    const empty = join(scratch, 'empty');
    for (const args of [
      ['services'],
      ['register', 'service', 'x', '--port', '1', '--no-proxy'],
      ['status', '--once'],
    ]) {
      const r = await runCli([...args, '--data-dir', empty], mesh.env);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(78);
      expect(r.stderr).toContain(`no agent in ${empty} (no ${join(empty, 'agent.json')})`);
    }
  });

  it('a second agent in one data dir started while the first runs leaves the first one running', async () => {
    const a = mesh.agents[0]!;
    const d = startCli(['agent', 'start', '--data-dir', a.dataDir], mesh.env);
    await expect(d.waitFor(/agent started/, 15_000)).rejects.toThrow(/exited/);
    expect(a.daemon!.proc.exitCode).toBeNull();
    expect(await listIds(a.dataDir)).toEqual(['keep-me']);
  });
});
