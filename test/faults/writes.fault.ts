/**
 * Acknowledged writes survive: kill -9 of the registry in a loop of writes, and a full disk
 * under its store (a small tmpfs). Every write the registry answered 200 to must be there
 * after a restart; a write refused for lack of space gets a clear error, and once space is back
 * the registry takes writes again without a restart.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, readFile, rm, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/api/registry-client.js';
import { runCli, startCli, stopAllDaemons, type CliDaemon } from '../helpers/cli.js';
import { recordAndCheck, recordFault } from './record.js';

const run = promisify(execFile);

interface Reg {
  dir: string;
  env: Record<string, string>;
  port: number;
  d: CliDaemon | undefined;
  client: RegistryClient | undefined;
  start(): Promise<void>;
  kill(): Promise<void>;
}

async function makeRegistry(dataDir: string): Promise<Reg> {
  const env = { MESHCTL_CONFIG_DIR: join(dataDir, '..', `cli-${Date.now()}`) };
  const init = await runCli(
    [
      'init',
      '--server',
      '--data-dir',
      dataDir,
      '--bind',
      '127.0.0.1:0',
      '--advertise',
      '127.0.0.1',
      '--json',
      '--no-save',
    ],
    env,
  );
  if (init.exitCode !== 0) throw new Error(init.stderr);
  const made = JSON.parse(init.stdout) as { adminToken: string; caCertPath: string };
  const ca = await readFile(made.caCertPath, 'utf8');
  const reg: Reg = {
    dir: dataDir,
    env,
    port: 0,
    d: undefined,
    client: undefined,
    async start() {
      const d = startCli(['registry', 'start', '--data-dir', dataDir, '--bind', `127.0.0.1:${reg.port}`], env);
      const m = await d.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/);
      reg.port = Number(m[1]);
      reg.d = d;
      reg.client?.close();
      reg.client = new RegistryClient({
        baseUrl: `https://127.0.0.1:${reg.port}`,
        ca,
        token: made.adminToken,
        timeoutMs: 3000,
      });
    },
    async kill() {
      await reg.d?.kill('SIGKILL');
      reg.d = undefined;
    },
  };
  await reg.start();
  return reg;
}

/** One write: an intention whose source names the write. Resolves to whether the registry acknowledged it. */
async function write(reg: Reg, i: number): Promise<{ ok: boolean; code?: string; message?: string }> {
  try {
    await reg.client!.putIntention(`w-${i}`, 'api', 'allow', 'x'.repeat(200));
    return { ok: true };
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code ?? '', message: (e as Error).message };
  }
}

async function present(reg: Reg): Promise<Set<string>> {
  const r = await reg.client!.intentions();
  return new Set(r.intentions.map((i) => i.source));
}

describe('acknowledged writes', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    await stopAllDaemons();
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it('kill -9 of the registry in a loop of writes: every acknowledged write is there after restart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'meshctl-faults-writes-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    const reg = await makeRegistry(join(root, 'reg'));
    cleanup.push(async () => reg.client?.close());
    const acked = new Set<string>();
    let sent = 0;
    let failed = 0;
    // Kill -9 twice mid-loop; writes that failed while it was down are not acknowledged and not counted as lost.
    for (let i = 0; i < 300; i++) {
      if (i === 100 || i === 200) {
        const inflight = write(reg, 100_000 + i);
        await reg.kill();
        sent += 1;
        if ((await inflight).ok) acked.add(`w-${100_000 + i}`);
        else failed += 1;
        await reg.start();
      }
      sent += 1;
      const r = await write(reg, i);
      if (r.ok) acked.add(`w-${i}`);
      else failed += 1;
    }
    await reg.kill();
    await reg.start();
    const have = await present(reg);
    const lost = [...acked].filter((k) => !have.has(k));
    recordAndCheck(
      {
        scenario: 'kill -9 registry in a write loop',
        load: '300 intention writes, one at a time',
        fault: 'SIGKILL the registry at write 100 and 200 (one write in flight), restart',
        sent,
        failed,
        lostWrites: lost.length,
        expected: '0 acknowledged writes lost',
      },
      lost.length === 0 && acked.size >= 298,
      lost.length ? `lost ${lost.slice(0, 5).join(', ')}` : `only ${acked.size} acknowledged`,
    );
  });

  it('a full disk under the store: clear errors, nothing acknowledged lost, writes again once space is back', async () => {
    const root = await mkdtemp(join(tmpdir(), 'meshctl-faults-disk-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    const mnt = join(root, 'tmpfs');
    await mkdir(mnt);
    const row = {
      scenario: 'disk full under the registry store',
      load: 'intention writes, one at a time',
      fault: '8 MB tmpfs filled to the last byte, then the filler removed',
      expected: 'writes fail with MESH_ERR_STORE while full; 0 acknowledged lost; writes work again',
    };
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    } catch (e) {
      recordFault({
        ...row,
        sent: 0,
        failed: 0,
        lostWrites: '—',
        result: `PENDING (cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]})`,
      });
      return;
    }
    cleanup.push(async () => {
      await run('umount', ['-l', mnt]);
    });
    const reg = await makeRegistry(join(mnt, 'reg'));
    cleanup.push(async () => reg.client?.close());
    const acked = new Set<string>();
    let sent = 0;
    let failed = 0;
    const codes = new Map<string, number>();
    const one = async (i: number) => {
      sent += 1;
      const r = await write(reg, i);
      if (r.ok) acked.add(`w-${i}`);
      else {
        failed += 1;
        codes.set(`${r.code}: ${r.message}`, (codes.get(`${r.code}: ${r.message}`) ?? 0) + 1);
      }
      return r;
    };
    for (let i = 0; i < 20; i++) await one(i);
    // Fill what is left.
    const filler = join(mnt, 'filler');
    const fh = await open(filler, 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) await fh.write(chunk);
    } catch {
      // ENOSPC: full.
    }
    for (let n = 1; n < 4096; n *= 2) {
      try {
        await fh.write(Buffer.alloc(Math.max(1, 4096 / n)));
      } catch {
        // Squeezing out the last pages.
      }
    }
    await fh.close();
    const whileFull: Array<{ ok: boolean; code?: string }> = [];
    for (let i = 20; i < 120; i++) whileFull.push(await one(i));
    const refusedWhileFull = whileFull.filter((r) => !r.ok);
    // The registry still answers reads while full.
    const status = await reg.client!.status().then(
      () => true,
      () => false,
    );
    await rm(filler);
    let after = 0;
    for (let i = 120; i < 140; i++) if ((await one(i)).ok) after += 1;
    await reg.kill();
    await reg.start();
    const have = await present(reg);
    const lost = [...acked].filter((k) => !have.has(k));
    const clear = refusedWhileFull.every((r) => r.code === 'MESH_ERR_STORE');
    const ok = lost.length === 0 && refusedWhileFull.length > 0 && clear && status && after === 20;
    recordAndCheck(
      { ...row, sent, failed, lostWrites: lost.length },
      ok,
      [...codes].map(([k, n]) => `${n} × ${k}`).join('; ') +
        (status ? '' : '; status failed while full') +
        `; ${after}/20 after`,
    );
    expect(lost).toEqual([]);
  });
});
