/**
 * The services this host owns, persisted under the data dir before any change is acknowledged,
 * so registrations survive an agent restart or a host reboot, and nothing is registered twice
 * (an instance is keyed by its id on this node).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { serviceRegistrationSchema, type ServiceRegistration } from '../api/schemas.js';
import { writeFileAtomic } from '../util/fs.js';

export type ServiceSource = { kind: 'cli' } | { kind: 'file'; file: string };

export interface LocalService {
  id: string;
  registration: ServiceRegistration;
  source: ServiceSource;
}

const stateSchema = z
  .object({
    version: z.literal(1),
    services: z.array(
      z
        .object({
          id: z.string(),
          registration: serviceRegistrationSchema,
          source: z.union([
            z.object({ kind: z.literal('cli') }).strict(),
            z.object({ kind: z.literal('file'), file: z.string() }).strict(),
          ]),
        })
        .strict(),
    ),
  })
  .strict();

export class LocalState {
  #services = new Map<string, LocalService>();
  /** Writes are serialised so a later state never lands before an earlier one. */
  #writing: Promise<void> = Promise.resolve();

  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let parsed;
    try {
      parsed = stateSchema.parse(JSON.parse(text));
    } catch (e) {
      throw new MeshError(
        'MESH_ERR_CONFIG',
        `the agent state file ${this.#file} is damaged: ${(e as Error).message.slice(0, 200)}`,
        {
          hint: "Restore it from backup, or move it away and re-register this host's services.",
        },
      );
    }
    this.#services = new Map(parsed.services.map((s) => [s.id, s]));
  }

  list(): LocalService[] {
    return [...this.#services.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  get(id: string): LocalService | undefined {
    return this.#services.get(id);
  }

  /** Adds or replaces, then persists; resolves only once the new state is on disk. */
  async upsert(svc: LocalService): Promise<void> {
    this.#services.set(svc.id, svc);
    await this.#persist();
  }

  async remove(id: string): Promise<boolean> {
    const had = this.#services.delete(id);
    if (had) await this.#persist();
    return had;
  }

  async clear(): Promise<void> {
    this.#services.clear();
    await this.#persist();
  }

  #persist(): Promise<void> {
    const snapshot = JSON.stringify({ version: 1, services: this.list() }, null, 2) + '\n';
    this.#writing = this.#writing.catch(() => undefined).then(() => writeFileAtomic(this.#file, snapshot, 0o600));
    return this.#writing;
  }
}

export function instanceId(reg: ServiceRegistration): string {
  return reg.id ?? reg.name;
}
