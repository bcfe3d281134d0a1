import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceRegistrationSchema } from '../../src/api/schemas.js';
import { CheckManager } from '../../src/agent/checks/index.js';
import { LocalState } from '../../src/agent/state.js';
import { Registrations } from '../../src/agent/registrations.js';
import { silentLogger } from '../../src/util/log.js';
import type { DefinitionEvent } from '../../src/agent/definitions/index.js';

let dir: string;
let checks: CheckManager;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-registrations-'));
  checks = new CheckManager();
});
afterEach(async () => {
  await checks.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Registrations over a real state file; `published` counts the pushes to registry and proxies. */
async function make(execChecks?: { enabled: boolean; servicesDir: string }, stateFile = 'state.json') {
  const state = new LocalState(join(dir, stateFile));
  await state.load();
  const published: number[] = [];
  const regs = new Registrations({
    state,
    checks,
    advertise: '127.0.0.1',
    log: silentLogger(),
    ...(execChecks ? { execChecks } : {}),
    publish: () => {
      published.push(state.list().length);
      return Promise.resolve(true);
    },
  });
  return { state, regs, published };
}

const svc = (name: string, extra: Record<string, unknown> = {}) =>
  serviceRegistrationSchema.parse({ name, port: 9000, proxy: false, ...extra });
const upsert = (file: string, ...services: ReturnType<typeof svc>[]): DefinitionEvent => ({
  type: 'upsert',
  file,
  services,
});
const settle = () => new Promise((r) => setImmediate(r));

describe('Registrations', () => {
  it('registers from the CLI: persisted before it answers, then published', async () => {
    const { regs, published } = await make();
    expect(await regs.register({ name: 'api', port: 9000, proxy: false })).toEqual({ id: 'api', synced: true });
    const onDisk = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { services: { id: string }[] };
    expect(onDisk.services.map((s) => s.id)).toEqual(['api']);
    expect(published).toEqual([1]);
    expect(regs.services()).toMatchObject([{ id: 'api', status: 'passing', source: { kind: 'cli' } }]);
  });

  it('refuses a bad body with the field that is wrong, and changes nothing', async () => {
    const { regs, state, published } = await make();
    await expect(regs.register({ name: 'api', port: 'ninety' })).rejects.toMatchObject({
      code: 'MESH_ERR_BAD_REQUEST',
      message: expect.stringContaining('invalid service: port:') as string,
    });
    expect(state.list()).toEqual([]);
    expect(published).toEqual([]);
  });

  it('refuses two local services on one upstream port', async () => {
    const { regs } = await make();
    await regs.register({ name: 'web', port: 8080, proxy: false, upstreams: [{ service: 'api', localPort: 18000 }] });
    await expect(
      regs.register({ name: 'admin', port: 8081, proxy: false, upstreams: [{ service: 'db', localPort: 18000 }] }),
    ).rejects.toMatchObject({ code: 'MESH_ERR_CONFLICT', message: expect.stringContaining("'web'") as string });
  });

  it('gives a sidecar service a mesh port from the range and keeps it across re-registration', async () => {
    const { regs, state } = await make();
    await regs.register({ name: 'api', port: 9000 });
    const port = state.get('api')!.registration.meshPort!;
    expect(port).toBeGreaterThanOrEqual(21000);
    expect(port).toBeLessThanOrEqual(21999);
    await regs.register({ name: 'api', port: 9001 });
    expect(state.get('api')!.registration.meshPort).toBe(port);
    await regs.register({ name: 'web', port: 9002 });
    expect(state.get('web')!.registration.meshPort).not.toBe(port);
  });

  it('takes services from definition files; the CLI may not change or deregister them', async () => {
    const { regs, published } = await make();
    await regs.applyDefinitionEvent(upsert('/d/api.yaml', svc('api')));
    await settle();
    expect(regs.services()).toMatchObject([{ id: 'api', source: { kind: 'file', file: '/d/api.yaml' } }]);
    expect(published).toEqual([1]);
    await expect(regs.register({ name: 'api', port: 1, proxy: false })).rejects.toMatchObject({
      code: 'MESH_ERR_CONFLICT',
      hint: 'Edit or delete that file instead.',
    });
    await expect(regs.deregister('api')).rejects.toMatchObject({
      code: 'MESH_ERR_CONFLICT',
      hint: 'Delete that file to deregister it.',
    });
    await expect(regs.deregister('nope')).rejects.toMatchObject({ code: 'MESH_ERR_NOT_FOUND' });
  });

  it('a broken file keeps its last good services and is reported; fixing it clears the problem', async () => {
    const { regs } = await make();
    await regs.applyDefinitionEvent(upsert('/d/api.yaml', svc('api')));
    await regs.applyDefinitionEvent({ type: 'invalid', file: '/d/api.yaml', error: { message: 'bad', line: 3 } });
    expect(regs.services().map((s) => s.id)).toEqual(['api']);
    // What is still in force from the file, so the user is told the truth about it.
    expect(regs.definitionProblems()).toEqual([{ file: '/d/api.yaml', message: 'bad', line: 3, registered: ['api'] }]);
    await regs.applyDefinitionEvent(upsert('/d/api.yaml', svc('api')));
    expect(regs.definitionProblems()).toEqual([]);
    await regs.applyDefinitionEvent({ type: 'remove', file: '/d/api.yaml' });
    expect(regs.services()).toEqual([]);
  });

  it('a file naming a service registered from the CLI is reported, and the CLI one stays', async () => {
    const { regs } = await make();
    await regs.register({ name: 'api', port: 9000, proxy: false });
    await regs.applyDefinitionEvent(upsert('/d/api.yaml', svc('api', { port: 1234 })));
    expect(regs.services()).toMatchObject([{ id: 'api', port: 9000, source: { kind: 'cli' } }]);
    expect(regs.definitionProblems()).toEqual([
      {
        file: '/d/api.yaml',
        message: "service 'api' is already registered from the CLI; deregister it there first",
        registered: [],
      },
    ]);
  });

  it('a brand-new broken file has nothing registered from it', async () => {
    const { regs } = await make();
    await regs.applyDefinitionEvent({ type: 'invalid', file: '/d/new.yaml', error: { message: 'bad', line: 1 } });
    expect(regs.definitionProblems()).toEqual([{ file: '/d/new.yaml', message: 'bad', line: 1, registered: [] }]);
  });

  it('register with replace: false refuses to change a CLI registration, and a dry run changes nothing', async () => {
    const { regs, state } = await make();
    await regs.register({ name: 'api', port: 9000, proxy: false });
    await expect(
      regs.register({ name: 'api', port: 9001, proxy: false }, { kind: 'cli' }, { replace: false }),
    ).rejects.toMatchObject({
      code: 'MESH_ERR_CONFLICT',
    });
    // The same registration is no change, so no conflict.
    await regs.register({ name: 'api', port: 9000, proxy: false }, { kind: 'cli' }, { replace: false });
    expect(await regs.register({ name: 'new', port: 1, proxy: false }, { kind: 'cli' }, { dryRun: true })).toEqual({
      id: 'new',
      synced: false,
    });
    expect(state.get('new')).toBeUndefined();
    expect(state.get('api')!.registration.port).toBe(9000);
  });

  it('reconcile after the first scan drops file services whose file went away, keeps CLI ones and broken files', async () => {
    const first = await make();
    await first.regs.applyDefinitionEvent(upsert('/d/gone.yaml', svc('gone')));
    await first.regs.applyDefinitionEvent(upsert('/d/broken.yaml', svc('kept')));
    await first.regs.register({ name: 'cli', port: 9000, proxy: false });

    // The agent restarts: the scan finds gone.yaml missing and broken.yaml broken.
    const { regs, state } = await make();
    await regs.applyDefinitionEvent({ type: 'invalid', file: '/d/broken.yaml', error: { message: 'bad' } });
    await regs.reconcileFileServices();
    expect(state.list().map((s) => s.id)).toEqual(['cli', 'kept']);
  });

  it('runs changes one at a time: work queued behind a register sees its state change done', async () => {
    const { regs, state } = await make();
    const seen: string[][] = [];
    const a = regs.register({ name: 'api', port: 9000, proxy: false });
    const b = regs.exclusive(() => {
      seen.push(state.list().map((s) => s.id));
      return Promise.resolve();
    });
    await Promise.all([a, b]);
    expect(seen).toEqual([['api']]);
  });

  describe('exec checks (checks/exec-policy.ts)', () => {
    const exec = { id: 'script', kind: 'exec', target: 'touch /tmp/meshctl-never-run' };
    const withExec = () => svc('api', { checks: [exec] });
    let servicesDir: string;
    beforeEach(async () => {
      servicesDir = join(dir, 'services.d');
      await mkdir(servicesDir, { mode: 0o755 });
    });
    /** A definition file with an exec check, written for real: the rule looks at its owner and mode. */
    async function definitionFile(name = 'api.yaml'): Promise<string> {
      const file = join(servicesDir, name);
      await writeFile(file, 'service: {name: api, port: 9000}\n', { mode: 0o644 });
      await chmod(file, 0o644);
      return file;
    }

    it.each([
      ['by default', undefined],
      ['even on an agent started with --enable-exec-checks', true],
    ] as const)('refuses one through the socket (the CLI) %s, and changes nothing', async (_what, enabled) => {
      const { regs, state, published } = await make(enabled ? { enabled, servicesDir } : undefined);
      await expect(regs.register({ name: 'api', port: 9000, proxy: false, checks: [exec] })).rejects.toMatchObject({
        code: 'MESH_ERR_EXEC_CHECKS_DISABLED',
        message: expect.stringContaining('exec checks cannot be registered through the agent socket') as string,
      });
      expect(state.list()).toEqual([]);
      expect(published).toEqual([]);
    });

    it('refuses a definition file with one when the agent runs without --enable-exec-checks, and reports it', async () => {
      const { regs, state } = await make({ enabled: false, servicesDir });
      const file = await definitionFile();
      await regs.applyDefinitionEvent(upsert(file, withExec()));
      expect(state.list()).toEqual([]);
      expect(regs.definitionProblems()).toEqual([
        {
          file,
          message:
            "service 'api' has an exec check: exec checks are off on this agent (start it with --enable-exec-checks)",
          registered: [],
        },
      ]);
    });

    it.skipIf(process.getuid?.() !== 0)(
      'takes one from a root-owned file in a root-owned directory when enabled; refuses group/other-writable or non-root files (needs root to own files)',
      async () => {
        const { regs, state } = await make({ enabled: true, servicesDir });
        const file = await definitionFile();
        await regs.applyDefinitionEvent(upsert(file, withExec()));
        expect(state.list().map((x) => x.registration.checks.map((c) => c.kind))).toEqual([['exec']]);
        expect(regs.definitionProblems()).toEqual([]);

        const other = await make({ enabled: true, servicesDir }, 'other-state.json');
        await chmod(file, 0o666);
        await other.regs.applyDefinitionEvent(upsert(file, withExec()));
        expect(other.state.list()).toEqual([]);
        expect(other.regs.definitionProblems()[0]!.message).toMatch(
          /definition file .* is writable by its group or others \(mode 0666\)/,
        );

        await chmod(file, 0o644);
        await chown(file, 65534, 65534);
        await other.regs.applyDefinitionEvent(upsert(file, withExec()));
        expect(other.state.list()).toEqual([]);
        expect(other.regs.definitionProblems()[0]!.message).toMatch(
          /definition file .* is owned by uid 65534, not root/,
        );

        await chown(file, 0, 0);
        await chmod(servicesDir, 0o777);
        await other.regs.applyDefinitionEvent(upsert(file, withExec()));
        expect(other.state.list()).toEqual([]);
        expect(other.regs.definitionProblems()[0]!.message).toMatch(
          /services directory .* is writable by its group or others/,
        );
      },
    );

    it('does not run exec checks a state file holds for a CLI service (from before the rule)', async () => {
      const { regs } = await make({ enabled: true, servicesDir });
      const stored = { id: 'api', registration: withExec(), source: { kind: 'cli' as const } };
      expect(regs.runnableChecks(stored)).toEqual([]);
      expect(regs.runnableChecks({ ...stored, source: { kind: 'file', file: join(servicesDir, 'a.yaml') } })).toEqual(
        withExec().checks,
      );
    });
  });
});
