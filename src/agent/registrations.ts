/**
 * This host's service registrations: from the CLI (register/deregister) and from definition
 * files (watcher events, and the reconcile after the first scan), each given a mesh port when
 * it has a sidecar. Changes are serialised and persisted in `LocalState` before they are
 * acknowledged; `publish` then brings the registry and the proxies in step.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../util/log.js';
import { MeshError } from '../errors/index.js';
import { serviceRegistrationSchema, type CheckStatus, type ServiceRegistration } from '../api/schemas.js';
import { instanceId, type LocalService, type LocalState, type ServiceSource } from './state.js';
import type { CheckManager } from './checks/index.js';
import { DefinitionSet, type DefinitionError, type DefinitionEvent } from './definitions/index.js';
import { allocateMeshPort } from './proxies/ports.js';
import { execCheckRefusal, hasExecCheck, refuseExecThroughSocket, type ExecCheckPolicy } from './checks/exec-policy.js';
import { canBind } from '../util/net.js';
import type { DefinitionProblem, RegisterOptions, RegistrationResult, ServiceView } from './admin-api.js';

export interface RegistrationsOptions {
  state: LocalState;
  checks: CheckManager;
  /** The address mesh ports are allocated on. */
  advertise: string;
  log: Logger;
  /** Pushes the local state to the registry and the proxies; resolves whether the registry has it. */
  publish(): Promise<boolean>;
  /** Where exec checks may come from (checks/exec-policy.ts); off when absent. */
  execChecks?: ExecCheckPolicy;
}

/** The same registration, ignoring the mesh port the agent filled in. */
function sameRegistration(a: ServiceRegistration, b: ServiceRegistration): boolean {
  const { meshPort: ma, ...ra } = a;
  const { meshPort: mb, ...rb } = b;
  return isDeepStrictEqual(ra, rb) && (mb === undefined || ma === mb);
}

const RANK: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

export class Registrations {
  readonly #opts: RegistrationsOptions;
  readonly #state: LocalState;
  readonly #checks: CheckManager;
  readonly #definitions = new DefinitionSet();
  readonly #problems = new Map<string, DefinitionError>();
  /** Serialises changes to local registrations (CLI and file events). */
  #changing: Promise<unknown> = Promise.resolve();

  constructor(opts: RegistrationsOptions) {
    this.#opts = opts;
    this.#state = opts.state;
    this.#checks = opts.checks;
  }

  async register(
    input: unknown,
    source: ServiceSource = { kind: 'cli' },
    opts: RegisterOptions = {},
  ): Promise<RegistrationResult> {
    const parsed = serviceRegistrationSchema.safeParse(input);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid service: ${i.path.join('.') || '(root)'}: ${i.message}`);
    }
    const reg = parsed.data;
    const id = instanceId(reg);
    if (source.kind === 'cli' && hasExecCheck(reg.checks)) throw refuseExecThroughSocket(id, this.#execPolicy);
    await this.exclusive(async () => {
      const existing = this.#state.get(id);
      if (existing && existing.source.kind === 'file' && source.kind === 'cli') {
        throw new MeshError('MESH_ERR_CONFLICT', `service '${id}' is defined in ${existing.source.file}`, {
          hint: 'Edit or delete that file instead.',
        });
      }
      if (
        existing &&
        existing.source.kind === 'cli' &&
        opts.replace === false &&
        !sameRegistration(existing.registration, reg)
      )
        throw new MeshError(
          'MESH_ERR_CONFLICT',
          `service '${id}' is already registered on this host (from the CLI, port ${existing.registration.port}); not replacing it`,
          { hint: 'Pass --replace to replace it with this definition, or give the service another `id`.' },
        );
      this.#assertPortsFree(reg, id);
      await this.#assertPortsBindable(reg, existing?.registration);
      if (opts.dryRun) return;
      await this.#state.upsert({ id, registration: await this.#withMeshPort(reg, id), source });
      this.#checks.set(id, reg.checks);
    });
    if (opts.dryRun) return { id, synced: false };
    return { id, synced: await this.#opts.publish() };
  }

  async deregister(id: string): Promise<RegistrationResult> {
    await this.exclusive(async () => {
      const existing = this.#state.get(id);
      if (!existing)
        throw new MeshError('MESH_ERR_NOT_FOUND', `no service '${id}' is registered on this host`, {
          hint: 'See `meshctl services`.',
        });
      if (existing.source.kind === 'file') {
        throw new MeshError('MESH_ERR_CONFLICT', `service '${id}' is defined in ${existing.source.file}`, {
          hint: 'Delete that file to deregister it.',
        });
      }
      await this.#state.remove(id);
      this.#checks.remove(id);
    });
    return { id, synced: await this.#opts.publish() };
  }

  /** Runs `fn` with no other registration change in flight (e.g. leaving the mesh). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#changing.catch(() => undefined).then(fn);
    this.#changing = next.catch(() => undefined);
    return next;
  }

  get #execPolicy(): ExecCheckPolicy {
    return this.#opts.execChecks ?? { enabled: false, servicesDir: '' };
  }

  /**
   * The checks to run for a stored service: exec checks only for a file-defined one on an
   * agent that allows them (a state file from before the rule may hold others).
   */
  runnableChecks(svc: LocalService): ServiceRegistration['checks'] {
    const execOk = this.#execPolicy.enabled && svc.source.kind === 'file';
    if (execOk || !hasExecCheck(svc.registration.checks)) return svc.registration.checks;
    this.#opts.log.warn({ service: svc.id }, 'exec checks of this service are not run: not allowed from its source');
    return svc.registration.checks.filter((c) => c.kind !== 'exec');
  }

  services(): ServiceView[] {
    return this.#state.list().map((s) => this.#view(s));
  }

  definitionProblems(): DefinitionProblem[] {
    const inForce = new Map(this.#definitions.files().map((f) => [f.file, f.services]));
    return [...this.#problems].map(([file, e]) => ({
      file,
      message: e.message,
      ...(e.line ? { line: e.line } : {}),
      ...(e.column ? { column: e.column } : {}),
      registered: (inForce.get(file) ?? []).filter((id) => this.#state.get(id)?.source.kind === 'file'),
    }));
  }

  /** A definition watcher event, applied in turn with every other change. */
  applyDefinitionEvent(ev: DefinitionEvent): Promise<void> {
    return this.exclusive(() => this.#applyDefinitions(ev));
  }

  /**
   * After the first scan: file-defined services whose file is gone (or no longer defines
   * them) while the agent was down leave; those of a file that is now broken stay.
   */
  reconcileFileServices(): Promise<void> {
    return this.exclusive(async () => {
      const files = new Map(this.#definitions.files().map((f) => [f.file, f]));
      let changed = false;
      for (const svc of this.#state.list()) {
        if (svc.source.kind !== 'file') continue;
        const f = files.get(svc.source.file);
        const keep = f !== undefined && (f.state !== 'ok' || f.services.includes(svc.id));
        if (!keep) {
          await this.#state.remove(svc.id);
          this.#checks.remove(svc.id);
          changed = true;
        }
      }
      if (changed) this.#publishInBackground();
    });
  }

  /** File events are not waited on by anyone: a failed publish is logged, and the next sync retries. */
  #publishInBackground(): void {
    this.#opts
      .publish()
      .catch((e: unknown) =>
        this.#opts.log.warn({ err: (e as Error).message }, 'could not publish a definition change'),
      );
  }

  /**
   * A file whose services carry an exec check the policy does not allow is taken as a broken
   * file: reported, and whatever it defined before stays as it was.
   */
  async #screenExecChecks(ev: DefinitionEvent): Promise<DefinitionEvent> {
    if (ev.type !== 'upsert') return ev;
    const svc = ev.services.find((r) => hasExecCheck(r.checks));
    if (!svc) return ev;
    const why = await execCheckRefusal(ev.file, this.#execPolicy);
    if (!why) return ev;
    return {
      type: 'invalid',
      file: ev.file,
      error: { message: `service '${instanceId(svc)}' has an exec check: ${why}` },
    };
  }

  async #applyDefinitions(input: DefinitionEvent): Promise<void> {
    const ev = await this.#screenExecChecks(input);
    const changes = this.#definitions.apply(ev);
    if (ev.type !== 'invalid') this.#problems.delete(ev.file);
    for (const inv of changes.invalid) {
      this.#problems.set(inv.file, inv.error);
      this.#opts.log.warn(
        { file: inv.file, line: inv.error.line, err: inv.error.message },
        'invalid service definition; keeping the last good registration from it',
      );
    }
    let changed = false;
    for (const d of changes.deregister) {
      const cur = this.#state.get(d.id);
      if (cur?.source.kind === 'file') {
        await this.#state.remove(d.id);
        this.#checks.remove(d.id);
        changed = true;
      }
    }
    for (const reg of changes.register) {
      const id = instanceId(reg);
      const file = this.#definitions.fileOf(id) ?? ev.file;
      const cur = this.#state.get(id);
      if (cur && cur.source.kind === 'cli') {
        this.#problems.set(file, {
          message: `service '${id}' is already registered from the CLI; deregister it there first`,
        });
        continue;
      }
      await this.#state.upsert({ id, registration: await this.#withMeshPort(reg, id), source: { kind: 'file', file } });
      this.#checks.set(id, reg.checks);
      changed = true;
    }
    if (changed) this.#publishInBackground();
  }

  #view(s: LocalService): ServiceView {
    const checks = this.#checks.states(s.id);
    let status: CheckStatus = 'passing';
    for (const c of checks) if (RANK[c.status] > RANK[status]) status = c.status;
    const r = s.registration;
    return {
      id: s.id,
      name: r.name,
      port: r.port,
      ...(r.address ? { address: r.address } : {}),
      protocol: r.protocol,
      tags: r.tags,
      weight: r.weight,
      upstreams: r.upstreams,
      source: s.source,
      status,
      checks,
    };
  }

  /** Two local services must not claim the same upstream listener port. */
  #assertPortsFree(reg: ServiceRegistration, id: string): void {
    for (const other of this.#state.list()) {
      if (other.id === id) continue;
      for (const u of reg.upstreams) {
        if (
          other.registration.upstreams.some((o) => o.localPort === u.localPort && o.localAddress === u.localAddress)
        ) {
          throw new MeshError(
            'MESH_ERR_CONFLICT',
            `upstream port ${u.localPort} is already used by service '${other.id}' on this host`,
            { hint: 'Pick another local port for the upstream.' },
          );
        }
      }
    }
  }

  /**
   * The ports the sidecar will listen on must be free before the registration is accepted: a
   * sidecar that cannot bind an upstream's port would leave the app with nothing listening
   * there while everything says passing. Ports this service's own sidecar holds already (a
   * re-registration) are not probed.
   */
  async #assertPortsBindable(reg: ServiceRegistration, had: ServiceRegistration | undefined): Promise<void> {
    if (!reg.proxy) return;
    for (const u of reg.upstreams) {
      const ours =
        had?.proxy && had.upstreams.some((o) => o.localPort === u.localPort && o.localAddress === u.localAddress);
      if (ours || (await canBind(u.localAddress, u.localPort))) continue;
      throw new MeshError(
        'MESH_ERR_CONFLICT',
        `upstream ${u.service}: ${u.localAddress}:${u.localPort} is in use by another process on this host`,
        {
          hint: 'Pick another local port for the upstream (SERVICE:LOCALPORT), or stop what listens there (`ss -ltnp`).',
        },
      );
    }
    if (reg.meshPort !== undefined && !(had?.proxy && had.meshPort === reg.meshPort)) {
      if (!(await canBind(this.#opts.advertise, reg.meshPort)))
        throw new MeshError(
          'MESH_ERR_CONFLICT',
          `mesh port ${this.#opts.advertise}:${reg.meshPort} is in use by another process on this host`,
          { hint: 'Pick another --mesh-port, or leave it out to get a free one from 21000-21999.' },
        );
    }
  }

  /**
   * A service with a sidecar needs a mesh port: the one it asked for, the one it already had
   * (stable across restarts and file edits), or a free one from the range.
   */
  async #withMeshPort(reg: ServiceRegistration, id: string): Promise<ServiceRegistration> {
    if (!reg.proxy || reg.meshPort !== undefined) return reg;
    const had = this.#state.get(id)?.registration.meshPort;
    if (had !== undefined) return { ...reg, meshPort: had };
    const taken = new Set(
      this.#state.list().flatMap((s) => (s.registration.meshPort === undefined ? [] : [s.registration.meshPort])),
    );
    const port = await allocateMeshPort(this.#opts.advertise, taken);
    if (port === undefined)
      throw new MeshError('MESH_ERR_CONFLICT', 'no free mesh port left in 21000-21999 on this host', {
        hint: 'Give the service a --mesh-port, or deregister unused services.',
      });
    return { ...reg, meshPort: port };
  }
}
