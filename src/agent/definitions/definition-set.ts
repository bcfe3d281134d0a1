/**
 * Which services came from which definition file, so each file event turns into exactly the
 * registrations and deregistrations it implies. Rules:
 * - a file's services are replaced as a whole by its next good version (api → api2 means
 *   deregister api, register api2; an unchanged service is not re-registered);
 * - a broken file keeps its last good services;
 * - a service id belongs to one file: a file that claims an id another file holds is refused
 *   (its last good services stay) and retried by itself once the other file lets go of the id,
 *   so the end state does not depend on the order events arrive in (a rename may show up as
 *   "add new" before "remove old").
 */
import { isDeepStrictEqual } from 'node:util';
import type { ServiceRegistration } from '../../api/schemas.js';
import type { DefinitionEvent } from './events.js';
import { instanceId } from './conversion.js';
import type { DefinitionError } from './parse.js';

export interface Deregistration {
  id: string;
  name: string;
  /** The file that had defined it. */
  file: string;
}

/**
 * What to do after one event. Apply `deregister` before `register`: an id can move from one
 * service name to another, and the registry refuses an id held by another name.
 */
export interface DefinitionChanges {
  deregister: Deregistration[];
  register: ServiceRegistration[];
  /** Every problem to tell the user about: the event's own `invalid`, and files refused for a clash. */
  invalid: { file: string; error: DefinitionError }[];
}

export type FileState = 'ok' | 'invalid' | 'conflict';

export interface FileStatus {
  file: string;
  state: FileState;
  /** Ids of the services in force from this file (its last good version). */
  services: string[];
  error?: DefinitionError;
}

interface Entry {
  active: ServiceRegistration[];
  state: FileState;
  error?: DefinitionError;
}

export class DefinitionSet {
  readonly #files = new Map<string, Entry>();
  readonly #owner = new Map<string, string>();
  /** Refused for a clash: the content to retry when the clashing ids are freed. */
  readonly #pending = new Map<string, ServiceRegistration[]>();

  apply(event: DefinitionEvent): DefinitionChanges {
    const ch: DefinitionChanges = { deregister: [], register: [], invalid: [] };
    // Any newer word about a file replaces a refused version waiting for retry.
    this.#pending.delete(event.file);
    switch (event.type) {
      case 'upsert':
        this.#upsert(event.file, event.services, ch);
        break;
      case 'remove':
        this.#remove(event.file, ch);
        break;
      case 'invalid': {
        const entry = this.#files.get(event.file) ?? { active: [], state: 'invalid' };
        entry.state = 'invalid';
        entry.error = event.error;
        this.#files.set(event.file, entry);
        ch.invalid.push({ file: event.file, error: event.error });
        break;
      }
    }
    this.#retryPending(ch);
    return netted(ch);
  }

  /** All services in force, sorted by id. */
  services(): ServiceRegistration[] {
    return [...this.#files.values()].flatMap((e) => e.active).sort((a, b) => cmp(instanceId(a), instanceId(b)));
  }

  /** The file that defines this instance id, if any. */
  fileOf(id: string): string | undefined {
    return this.#owner.get(id);
  }

  files(): FileStatus[] {
    return [...this.#files]
      .sort(([a], [b]) => cmp(a, b))
      .map(([file, e]) => ({
        file,
        state: e.state,
        services: e.active.map(instanceId),
        ...(e.error && { error: e.error }),
      }));
  }

  #clashes(file: string, services: ServiceRegistration[]): string[] {
    const out: string[] = [];
    for (const s of services) {
      const owner = this.#owner.get(instanceId(s));
      if (owner !== undefined && owner !== file)
        out.push(`service id '${instanceId(s)}' is already defined in ${owner}`);
    }
    return out;
  }

  #upsert(file: string, services: ServiceRegistration[], ch: DefinitionChanges): void {
    const clashes = this.#clashes(file, services);
    if (clashes.length > 0) {
      const error: DefinitionError = {
        message: `${file}: ${clashes.join('; ')}: a service id may be defined by one file only (this file's previous services stay in force)`,
      };
      const entry = this.#files.get(file) ?? { active: [], state: 'conflict' };
      entry.state = 'conflict';
      entry.error = error;
      this.#files.set(file, entry);
      this.#pending.set(file, services);
      ch.invalid.push({ file, error });
      return;
    }
    const old = this.#files.get(file)?.active ?? [];
    const oldById = new Map(old.map((s) => [instanceId(s), s]));
    const newIds = new Set(services.map(instanceId));
    for (const s of old) {
      if (newIds.has(instanceId(s))) continue;
      this.#owner.delete(instanceId(s));
      ch.deregister.push({ id: instanceId(s), name: s.name, file });
    }
    for (const s of services) {
      const id = instanceId(s);
      this.#owner.set(id, file);
      const prev = oldById.get(id);
      if (prev && isDeepStrictEqual(prev, s)) continue;
      if (prev && prev.name !== s.name) ch.deregister.push({ id, name: prev.name, file });
      ch.register.push(s);
    }
    this.#files.set(file, { active: services, state: 'ok' });
  }

  #remove(file: string, ch: DefinitionChanges): void {
    const entry = this.#files.get(file);
    if (!entry) return;
    for (const s of entry.active) {
      this.#owner.delete(instanceId(s));
      ch.deregister.push({ id: instanceId(s), name: s.name, file });
    }
    this.#files.delete(file);
  }

  #retryPending(ch: DefinitionChanges): void {
    for (let progress = true; progress;) {
      progress = false;
      for (const [file, services] of this.#pending) {
        if (this.#clashes(file, services).length > 0) continue;
        this.#pending.delete(file);
        this.#upsert(file, services, ch);
        progress = true;
      }
    }
  }
}

/** An id deregistered by one file and registered by another under the same name is just a register. */
function netted(ch: DefinitionChanges): DefinitionChanges {
  const registered = new Map(ch.register.map((s) => [instanceId(s), s.name]));
  ch.deregister = ch.deregister.filter((d) => registered.get(d.id) !== d.name);
  return ch;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
