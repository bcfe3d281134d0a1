/**
 * Watches the service-definition directory (default /etc/meshctl/services.d) with chokidar and
 * reports, per file, `upsert`, `remove` or `invalid` (see events.ts).
 *
 * How it stays right under editors and renames: a chokidar event only marks a file dirty; after
 * a short quiet period (bounded, so a file rewritten non-stop is still picked up) every dirty file
 * is read from disk and the event follows what is there now, not what chokidar said happened.
 * So a file deleted and recreated between two looks is just a change, an editor's several
 * writes are one event, and removals in a batch are emitted before upserts (a rename frees the
 * old file's services before the new file claims them). Results that change nothing (same
 * services, same error) are not emitted again.
 *
 * The directory itself: the watcher creates nothing. If the directory is missing it says so
 * (`directory` event) and looks again every `dirCheckMs`, starting to watch when it appears; the
 * same look notices it vanishing (its files are then removed) or being replaced by a new one.
 * An agent started before the directory exists thus needs no restart.
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../../util/log.js';
import { isMeshError, MeshError } from '../../errors/index.js';
import type { ServiceRegistration } from '../../api/schemas.js';
import type { DefinitionEvent, InvalidEvent, RemoveEvent, UpsertEvent } from './events.js';
import { DEFINITION_EXTENSIONS, definitionErrorOf, readDefinitionFile, type DefinitionError } from './parse.js';

export const DEFAULT_DEFINITIONS_DIR = '/etc/meshctl/services.d';

const READY_TIMEOUT_MS = 10_000;

export interface DefinitionWatcherOptions {
  dir: string;
  /** Quiet time after the last event on any file before files are read. */
  debounceMs?: number;
  /** Longest a dirty file waits, even while events keep coming. */
  maxDelayMs?: number;
  /** How often to check that the directory exists (and is the same one). */
  dirCheckMs?: number;
  maxFileBytes?: number;
  /** Where watch errors go when nobody listens to 'error'. */
  log?: Logger;
}

export type DefinitionWatcherEvents = {
  upsert: [UpsertEvent];
  remove: [RemoveEvent];
  invalid: [InvalidEvent];
  /** Every upsert/remove/invalid, in order: feed these to DefinitionSet.apply. */
  change: [DefinitionEvent];
  /** The initial scan is done (every file present has had its upsert/invalid). */
  ready: [];
  /** The directory was missing at start, vanished, or (re)appeared. */
  directory: [{ dir: string; exists: boolean }];
  error: [Error];
};

/** Editors' and tools' side files (swap, backup, temp, hidden) are never definitions. */
export function isDefinitionFileName(name: string): boolean {
  if (name.startsWith('.') || name.startsWith('#') || name.endsWith('~')) return false;
  return DEFINITION_EXTENSIONS.includes(extname(name).toLowerCase());
}

type Known = { ok: true; services: ServiceRegistration[] } | { ok: false; message: string };

export class DefinitionWatcher extends EventEmitter<DefinitionWatcherEvents> {
  readonly dir: string;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #dirCheckMs: number;
  readonly #maxFileBytes: number | undefined;
  readonly #log: Logger | undefined;

  #state: 'new' | 'running' | 'closed' = 'new';
  #fsw: FSWatcher | undefined;
  /** dev:ino of the directory being watched; undefined while it is missing. */
  #dirId: string | undefined;
  readonly #dirty = new Set<string>();
  #firstDirtyAt = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #dirTimer: NodeJS.Timeout | undefined;
  /** Files reported so far and what was reported, for removal and for not repeating ourselves. */
  readonly #known = new Map<string, Known>();
  /** All reading and watcher (re)starts run one at a time, in order. */
  #queue: Promise<void> = Promise.resolve();

  constructor(opts: DefinitionWatcherOptions) {
    super();
    this.dir = resolve(opts.dir);
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#maxDelayMs = Math.max(opts.maxDelayMs ?? 1000, this.#debounceMs);
    this.#dirCheckMs = opts.dirCheckMs ?? 2000;
    this.#maxFileBytes = opts.maxFileBytes;
    this.#log = opts.log;
  }

  /**
   * Starts watching and scans the directory: emits upsert/invalid for every file present, then
   * `ready`, then resolves. A missing directory is not an error (see the module comment).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new MeshError('MESH_ERR_INTERNAL', 'DefinitionWatcher.start() called twice or after close()');
    this.#state = 'running';
    await this.#enqueue(() => this.#checkDir(true));
    if (this.#state !== 'running') return;
    this.#armDirCheck();
    this.emit('ready');
  }

  /** Files currently reported (upserted or invalid and not removed). */
  files(): string[] {
    return [...this.#known.keys()].sort();
  }

  /** Stops everything; no events are emitted once this is called. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#dirTimer);
    this.#flushTimer = this.#dirTimer = undefined;
    await this.#queue;
    await this.#stopFs();
  }

  // -------------------------------------------------------------------------------------------

  #enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      if (this.#state === 'closed') return;
      try {
        await job();
      } catch (e) {
        this.#reportError(e);
      }
    });
    this.#queue = run;
    return run;
  }

  #reportError(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (this.#state === 'closed') return;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.#log?.warn({ err, dir: this.dir }, 'service definition watcher error');
  }

  #armDirCheck(): void {
    if (this.#state !== 'running') return;
    this.#dirTimer = setTimeout(() => {
      this.#dirTimer = undefined;
      void this.#enqueue(() => this.#checkDir(false)).then(() => this.#armDirCheck());
    }, this.#dirCheckMs);
    this.#dirTimer.unref();
  }

  /** Compares the directory with the one being watched and (re)starts chokidar as needed. */
  async #checkDir(initial: boolean): Promise<void> {
    const id = await dirIdentity(this.dir);
    if (!initial && id === this.#dirId) return;
    const had = this.#dirId !== undefined;
    if (this.#fsw) await this.#stopFs();
    // Whatever was known may be gone (or different, in a replaced directory): look again.
    for (const file of this.#known.keys()) this.#dirty.add(file);
    this.#dirId = id;
    if (id === undefined) {
      if (initial || had) this.#emit('directory', { dir: this.dir, exists: false });
    } else {
      if (!initial && !had) this.#emit('directory', { dir: this.dir, exists: true });
      await this.#startFs();
    }
    await this.#flush();
  }

  async #startFs(): Promise<void> {
    const fsw = watch(this.dir, {
      depth: 0,
      ignoreInitial: false,
      // We re-read the file after a quiet period anyway; chokidar's own unlink delay would only split renames.
      atomic: false,
      ignored: (p: string) => resolve(p) !== this.dir && !isDefinitionFileName(basename(p)),
    });
    this.#fsw = fsw;
    const mark = (p: string): void => this.#markDirty(resolve(p));
    fsw.on('add', mark).on('change', mark).on('unlink', mark);
    fsw.on('error', (e) => this.#reportError(e));
    // Bounded: should chokidar never get ready (the directory vanishing mid-scan), carry on; the
    // next directory check sorts it out, and files found meanwhile are still marked dirty.
    await new Promise<void>((done) => {
      const t = setTimeout(done, READY_TIMEOUT_MS);
      t.unref();
      fsw.once('ready', () => {
        clearTimeout(t);
        done();
      });
    });
  }

  async #stopFs(): Promise<void> {
    const fsw = this.#fsw;
    this.#fsw = undefined;
    if (fsw) await fsw.close();
  }

  #markDirty(file: string): void {
    if (this.#state === 'closed' || !isDefinitionFileName(basename(file))) return;
    const now = Date.now();
    if (this.#dirty.size === 0) this.#firstDirtyAt = now;
    this.#dirty.add(file);
    clearTimeout(this.#flushTimer);
    const delay = Math.max(0, Math.min(this.#debounceMs, this.#firstDirtyAt + this.#maxDelayMs - now));
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#enqueue(() => this.#flush());
    }, delay);
    this.#flushTimer.unref();
  }

  /** Reads every dirty file and emits what changed: removals first, then the rest, by name. */
  async #flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const files = [...this.#dirty].sort();
    this.#dirty.clear();
    const events: DefinitionEvent[] = [];
    for (const file of files) {
      const ev = await this.#look(file);
      if (ev) events.push(ev);
    }
    for (const ev of events) if (ev.type === 'remove') this.#report(ev);
    for (const ev of events) if (ev.type !== 'remove') this.#report(ev);
  }

  async #look(file: string): Promise<DefinitionEvent | undefined> {
    const prev = this.#known.get(file);
    try {
      const { services } = await readDefinitionFile(
        file,
        this.#maxFileBytes === undefined ? {} : { maxBytes: this.#maxFileBytes },
      );
      if (prev?.ok && isDeepStrictEqual(prev.services, services)) return undefined;
      return { type: 'upsert', file, services };
    } catch (e) {
      if (isMeshError(e) && e.code === 'MESH_ERR_NOT_FOUND') return prev ? { type: 'remove', file } : undefined;
      const error: DefinitionError = definitionErrorOf(e) ?? {
        message: `${file}: ${e instanceof Error ? e.message : String(e)}`,
      };
      if (prev && !prev.ok && prev.message === error.message) return undefined;
      return { type: 'invalid', file, error };
    }
  }

  #report(ev: DefinitionEvent): void {
    if (this.#state === 'closed') return;
    if (ev.type === 'remove') this.#known.delete(ev.file);
    else if (ev.type === 'upsert') this.#known.set(ev.file, { ok: true, services: ev.services });
    else this.#known.set(ev.file, { ok: false, message: ev.error.message });
    // A listener that throws must not stop the other listeners or the watcher.
    if (ev.type === 'upsert') this.#guarded(() => this.emit('upsert', ev));
    else if (ev.type === 'remove') this.#guarded(() => this.emit('remove', ev));
    else this.#guarded(() => this.emit('invalid', ev));
    this.#guarded(() => this.emit('change', ev));
  }

  #guarded(emit: () => void): void {
    try {
      emit();
    } catch (e) {
      this.#reportError(e);
    }
  }

  #emit(event: 'directory', arg: { dir: string; exists: boolean }): void {
    if (this.#state !== 'closed') this.emit(event, arg);
  }
}

async function dirIdentity(dir: string): Promise<string | undefined> {
  try {
    const st = await stat(dir);
    return st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    return undefined;
  }
}
