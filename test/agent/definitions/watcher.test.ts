import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DefinitionSet,
  DefinitionWatcher,
  isDefinitionFileName,
  type DefinitionEvent,
  type DefinitionWatcherOptions,
} from '../../../src/agent/definitions/index.js';

const WAIT_MS = 15_000;

/** Bounded polling: resolves when `cond` holds, fails the test with `what` when it never does. */
async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Rig {
  dir: string;
  watcher: DefinitionWatcher;
  events: DefinitionEvent[];
  /** Everything emitted, in order, including ready and directory events. */
  log: string[];
  set: DefinitionSet;
  problems: string[];
  /** Path of a file in the watched directory. */
  f(name: string): string;
  /** Services in force, as "id:port". */
  services(): string[];
  last(file: string): DefinitionEvent | undefined;
}

const rigs: Rig[] = [];
const tmpDirs: string[] = [];

afterEach(async () => {
  for (const r of rigs.splice(0)) await r.watcher.close();
  for (const d of tmpDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'meshctl-watch-'));
  tmpDirs.push(d);
  return d;
}

function rig(dir: string, opts: Partial<DefinitionWatcherOptions> = {}): Rig {
  const watcher = new DefinitionWatcher({ dir, dirCheckMs: 100, ...opts });
  const set = new DefinitionSet();
  const events: DefinitionEvent[] = [];
  const log: string[] = [];
  const problems: string[] = [];
  watcher.on('change', (ev) => {
    events.push(ev);
    log.push(`${ev.type} ${ev.file.slice(dir.length + 1)}`);
    for (const p of set.apply(ev).invalid) problems.push(p.error.message);
  });
  watcher.on('ready', () => log.push('ready'));
  watcher.on('directory', (d) => log.push(d.exists ? 'dir present' : 'dir missing'));
  watcher.on('error', (e) => log.push(`error ${e.message}`));
  const r: Rig = {
    dir,
    watcher,
    events,
    log,
    set,
    problems,
    f: (name) => join(dir, name),
    services: () => set.services().map((s) => `${s.id ?? s.name}:${s.port}`),
    last: (file) => events.filter((e) => e.file === file).at(-1),
  };
  rigs.push(r);
  return r;
}

const svc = (name: string, port: number) => `service:\n  name: ${name}\n  port: ${port}\n`;

describe('isDefinitionFileName', () => {
  it('takes .yaml/.yml/.json and leaves editor and hidden files alone', () => {
    for (const n of ['api.yaml', 'api.yml', 'api.json', 'API.YAML']) expect(isDefinitionFileName(n)).toBe(true);
    for (const n of [
      '.api.yaml',
      'api.yaml~',
      'api.yaml.swp',
      '.api.yaml.swx',
      'api.yaml.tmp',
      '#api.yaml#',
      '4913',
      'notes.txt',
      'api',
    ]) {
      expect(isDefinitionFileName(n)).toBe(false);
    }
  });
});

describe('DefinitionWatcher', () => {
  it('initial scan: reports every definition file before ready, ignores the rest', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'api.yaml'), svc('api', 9000));
    await writeFile(join(dir, 'web.json'), JSON.stringify({ service: { name: 'web', port: 8080 } }));
    await writeFile(join(dir, 'broken.yml'), 'service:\n  name: x\n  port: 0\n');
    await writeFile(join(dir, '.hidden.yaml'), svc('hidden', 1));
    await writeFile(join(dir, 'api.yaml.swp'), 'binary junk');
    await writeFile(join(dir, 'README.txt'), 'hello');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'nested.yaml'), svc('nested', 2));

    const r = rig(dir);
    await r.watcher.start();
    expect(r.log).toEqual(['upsert api.yaml', 'invalid broken.yml', 'upsert web.json', 'ready']);
    expect(r.services()).toEqual(['api:9000', 'web:8080']);
    const bad = r.last(r.f('broken.yml'));
    expect(bad).toEqual({
      type: 'invalid',
      file: r.f('broken.yml'),
      error: { message: `${r.f('broken.yml')}:3:9: service.port: must be at least 1`, line: 3, column: 9 },
    });
    expect(r.watcher.files()).toEqual([r.f('api.yaml'), r.f('broken.yml'), r.f('web.json')]);
  });

  it('add, change, broken edit (last good kept), fix, delete', async () => {
    const r = rig(await tmp());
    await r.watcher.start();
    expect(r.log).toEqual(['ready']);

    await writeFile(r.f('api.yaml'), svc('api', 9000));
    await waitFor('upsert of api.yaml', () => r.services().includes('api:9000'));
    expect(r.last(r.f('api.yaml'))).toMatchObject({ type: 'upsert', services: [{ name: 'api', port: 9000 }] });

    await writeFile(r.f('api.yaml'), svc('api', 9001));
    await waitFor('upsert with the new port', () => r.services().includes('api:9001'));

    await writeFile(r.f('api.yaml'), 'service:\n  name: api\n  port: 9001\n  bogus: 1\n');
    await waitFor('invalid api.yaml', () => r.last(r.f('api.yaml'))?.type === 'invalid');
    const inv = r.last(r.f('api.yaml'));
    expect(inv).toEqual({
      type: 'invalid',
      file: r.f('api.yaml'),
      error: { message: `${r.f('api.yaml')}:4:3: service.bogus: unknown key 'bogus'`, line: 4, column: 3 },
    });
    expect(r.services()).toEqual(['api:9001']);
    expect(r.set.files()[0]!.state).toBe('invalid');

    await writeFile(r.f('api.yaml'), svc('api2', 9002));
    await waitFor('api renamed to api2', () => r.services().join() === 'api2:9002');

    await rm(r.f('api.yaml'));
    await waitFor('remove api.yaml', () => r.last(r.f('api.yaml'))?.type === 'remove');
    expect(r.services()).toEqual([]);
    expect(r.watcher.files()).toEqual([]);
    // An invalid report is never followed by a remove unless the file really went away.
    expect(r.log).toEqual([
      'ready',
      'upsert api.yaml',
      'upsert api.yaml',
      'invalid api.yaml',
      'upsert api.yaml',
      'remove api.yaml',
    ]);
    expect(r.problems).toEqual([inv!.type === 'invalid' ? inv!.error.message : '']);
  });

  it('a deleted broken file is removed, and its last good services go with it', async () => {
    const r = rig(await tmp());
    await writeFile(r.f('a.yaml'), svc('api', 1));
    await r.watcher.start();
    await writeFile(r.f('a.yaml'), 'service: [');
    await waitFor('invalid a.yaml', () => r.last(r.f('a.yaml'))?.type === 'invalid');
    expect(r.services()).toEqual(['api:1']);
    await rm(r.f('a.yaml'));
    await waitFor('remove a.yaml', () => r.last(r.f('a.yaml'))?.type === 'remove');
    expect(r.services()).toEqual([]);
  });

  it('rename: the services move to the new file without a conflict', async () => {
    const r = rig(await tmp());
    await writeFile(r.f('old.yaml'), svc('api', 9000));
    await r.watcher.start();
    await rename(r.f('old.yaml'), r.f('new.yaml'));
    await waitFor(
      'new.yaml owns api and old.yaml is gone',
      () => r.set.fileOf('api') === r.f('new.yaml') && r.last(r.f('old.yaml'))?.type === 'remove',
    );
    expect(r.services()).toEqual(['api:9000']);
    expect(r.set.files().map((f) => [f.file, f.state])).toEqual([[r.f('new.yaml'), 'ok']]);
  });

  it('rename to a hidden or backup name is a removal; renaming back is an add', async () => {
    const r = rig(await tmp());
    await writeFile(r.f('api.yaml'), svc('api', 9000));
    await r.watcher.start();
    await rename(r.f('api.yaml'), r.f('api.yaml.disabled'));
    await waitFor('remove api.yaml', () => r.last(r.f('api.yaml'))?.type === 'remove');
    expect(r.services()).toEqual([]);
    await rename(r.f('api.yaml.disabled'), r.f('api.yaml'));
    await waitFor('upsert api.yaml again', () => r.services().includes('api:9000'));
  });

  it('dotfiles, swap, backup and temp files are ignored', async () => {
    const r = rig(await tmp());
    await r.watcher.start();
    for (const n of ['.api.yaml', 'api.yaml~', 'api.yaml.swp', 'x.tmp', '#api.yaml#', 'notes.txt'])
      await writeFile(r.f(n), svc('ignored', 1));
    // A real file written after them: once it is seen, the others have had their chance.
    await writeFile(r.f('zzz.yaml'), svc('real', 2));
    await waitFor('upsert zzz.yaml', () => r.services().includes('real:2'));
    await r.watcher.close();
    expect(r.log).toEqual(['ready', 'upsert zzz.yaml']);
  });

  it('an editor-style save (temp file renamed over) and a burst of writes end with the last content', async () => {
    const r = rig(await tmp());
    await writeFile(r.f('api.yaml'), svc('api', 1));
    await r.watcher.start();
    await writeFile(r.f('.api.yaml.tmp'), svc('api', 2));
    await rename(r.f('.api.yaml.tmp'), r.f('api.yaml'));
    await waitFor('port 2', () => r.services().includes('api:2'));
    for (let port = 3; port <= 8; port++) await writeFile(r.f('api.yaml'), svc('api', port));
    await waitFor('port 8', () => r.services().includes('api:8'));
    // Vim's way: move the original aside, write a new file, delete the backup.
    await rename(r.f('api.yaml'), r.f('api.yaml~'));
    await writeFile(r.f('api.yaml'), svc('api', 9));
    await rm(r.f('api.yaml~'));
    await waitFor('port 9', () => r.services().includes('api:9'));
    expect(r.events.every((e) => e.file === r.f('api.yaml'))).toBe(true);
    expect(r.last(r.f('api.yaml'))?.type).toBe('upsert');
    expect(r.problems).toEqual([]);
  });

  it('a file deleted and quickly recreated ends up upserted with its new content', async () => {
    const r = rig(await tmp());
    await writeFile(r.f('api.yaml'), svc('api', 1));
    await r.watcher.start();
    await rm(r.f('api.yaml'));
    await writeFile(r.f('api.yaml'), svc('api', 2));
    await waitFor('port 2', () => r.services().includes('api:2'));
    expect(r.last(r.f('api.yaml'))?.type).toBe('upsert');
    expect(r.watcher.files()).toEqual([r.f('api.yaml')]);
  });

  it('two files defining the same service: the later one is refused, naming the first', async () => {
    const r = rig(await tmp());
    await writeFile(r.f('a.yaml'), svc('api', 1));
    await r.watcher.start();
    await writeFile(r.f('b.yaml'), svc('api', 2));
    await waitFor('a conflict reported', () => r.problems.length > 0);
    expect(r.problems).toEqual([
      `${r.f('b.yaml')}: service id 'api' is already defined in ${r.f('a.yaml')}: a service id may be defined by one file only (this file's previous services stay in force)`,
    ]);
    expect(r.services()).toEqual(['api:1']);
    // Deleting the first lets the second in.
    await rm(r.f('a.yaml'));
    await waitFor('b.yaml owns api', () => r.set.fileOf('api') === r.f('b.yaml'));
    expect(r.services()).toEqual(['api:2']);
  });

  it('a file over the size limit is invalid', async () => {
    const r = rig(await tmp(), { maxFileBytes: 64 });
    await r.watcher.start();
    await writeFile(r.f('big.yaml'), `${svc('api', 1)}${'#'.repeat(100)}\n`);
    await waitFor('invalid big.yaml', () => r.last(r.f('big.yaml'))?.type === 'invalid');
    expect(r.last(r.f('big.yaml'))).toMatchObject({
      error: { message: `${r.f('big.yaml')}: file is larger than the 1 KiB limit for definition files` },
    });
  });

  it('a missing directory is reported and picked up when it appears; vanishing removes its files', async () => {
    const parent = await tmp();
    const dir = join(parent, 'services.d');
    const r = rig(dir);
    await r.watcher.start();
    expect(r.log).toEqual(['dir missing', 'ready']);

    await mkdir(dir);
    await writeFile(join(dir, 'api.yaml'), svc('api', 9000));
    await waitFor('upsert api.yaml in the new directory', () => r.services().includes('api:9000'));
    expect(r.log).toContain('dir present');

    await rm(dir, { recursive: true });
    await waitFor('remove after the directory vanished', () => r.last(join(dir, 'api.yaml'))?.type === 'remove');
    await waitFor('dir missing again', () => r.log.filter((l) => l === 'dir missing').length === 2);
    expect(r.services()).toEqual([]);

    await mkdir(dir);
    await writeFile(join(dir, 'web.yaml'), svc('web', 8080));
    await waitFor('upsert web.yaml after the directory came back', () => r.services().includes('web:8080'));
  });

  it('a listener that throws is reported as an error and does not stop the others', async () => {
    const r = rig(await tmp());
    r.watcher.on('upsert', () => {
      throw new Error('listener bug');
    });
    await r.watcher.start();
    await writeFile(r.f('api.yaml'), svc('api', 1));
    await waitFor('upsert despite the throwing listener', () => r.services().includes('api:1'));
    expect(r.log).toEqual(['ready', 'error listener bug', 'upsert api.yaml']);
    await writeFile(r.f('api.yaml'), svc('api', 2));
    await waitFor('the watcher still works', () => r.services().includes('api:2'));
  });

  it('close() stops events and leaves no fs watcher or timer behind', async () => {
    const dir = await tmp();
    for (let i = 0; i < 5; i++) await writeFile(join(dir, `s${i}.yaml`), svc(`s${i}`, 1000 + i));
    const watchersBefore = process.getActiveResourcesInfo().filter((t) => t === 'FSEventWrap').length;
    const r = rig(dir);
    await r.watcher.start();
    expect(r.services()).toHaveLength(5);
    expect(process.getActiveResourcesInfo().filter((t) => t === 'FSEventWrap').length).toBeGreaterThan(watchersBefore);
    // A change in flight when close() is called must not be reported afterwards.
    await writeFile(join(dir, 's0.yaml'), svc('s0', 2000));
    await r.watcher.close();
    const count = r.events.length;
    await waitFor(
      'fs watchers closed',
      () => process.getActiveResourcesInfo().filter((t) => t === 'FSEventWrap').length === watchersBefore,
    );
    await writeFile(join(dir, 'late.yaml'), svc('late', 3000));
    await sleep(300);
    expect(r.events.length).toBe(count);
    await r.watcher.close(); // twice is fine
    await expect(r.watcher.start()).rejects.toMatchObject({ code: 'MESH_ERR_INTERNAL' });
  });
});
