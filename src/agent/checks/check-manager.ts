/**
 * CheckManager: runs the health checks of the host's service instances and says when a
 * check's reported status changes. It knows nothing of the registry: the agent listens to
 * `change` and forwards it. Only changes are emitted; a status that stays the same is
 * never re-sent, and the latest output of every check is kept for `states()`.
 *
 * - Each check runs every `intervalMs`; the first run waits a random share of the interval
 *   (bounded by `maxFirstRunDelayMs`) so that many checks registered together spread out.
 * - Runs of one check never overlap: the next run is timed from the start of the last
 *   one and only scheduled once it has finished.
 * - A check starts critical, as the registry assumes of a check never reported.
 * - Thresholds follow Consul (see thresholds.ts); TTL reports bypass them.
 */
import { EventEmitter } from 'node:events';
import { checkDefinitionSchema, checkStatusSchema } from '../../api/schemas.js';
import { MeshError } from '../../errors/index.js';
import { silentLogger, type Logger } from '../../util/log.js';
import type { CheckDefinition, CheckKind, CheckResult, CheckStatus } from './types.js';
import { runnerFor } from './runners.js';
import { StatusFilter } from './thresholds.js';
import { TtlCheck } from './ttl.js';
import { truncateOutput } from './output.js';

/** A change of a check's reported status: what the agent sends to the registry. */
export interface CheckChange {
  instanceId: string;
  checkId: string;
  kind: CheckKind;
  previous: CheckStatus;
  status: CheckStatus;
  /** Output of the run (or TTL report/expiry) that caused the change. */
  output: string;
  /** ISO time of the change. */
  at: string;
}

/** One finished run (or TTL report/expiry), before and after the thresholds. */
export interface CheckRun {
  instanceId: string;
  checkId: string;
  kind: CheckKind;
  result: CheckResult;
  /** The reported status after this run. */
  status: CheckStatus;
  at: string;
}

/** What `meshctl services` shows for one check. */
export interface CheckStateView {
  instanceId: string;
  checkId: string;
  kind: CheckKind;
  target: string;
  /** The reported status (after thresholds). */
  status: CheckStatus;
  /** Output of the latest run, even when it did not change the status. */
  output: string;
  /** ISO time of the latest run or TTL report; null before the first. */
  lastRunAt: string | null;
  /** ISO time the reported status last changed (or the check was added). */
  statusSince: string;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
}

export interface CheckManagerEvents {
  change: [CheckChange];
  run: [CheckRun];
}

export interface CheckManagerOptions {
  logger?: Logger;
  /** Upper bound of the random delay before a check's first run (also bounded by its interval). */
  maxFirstRunDelayMs?: number;
}

const DEFAULT_MAX_FIRST_RUN_DELAY_MS = 2_000;

interface Entry {
  instanceId: string;
  def: CheckDefinition;
  /** Canonical form of `def`, to tell an unchanged definition from a changed one. */
  key: string;
  filter: StatusFilter;
  output: string;
  lastRunAt: Date | null;
  statusSince: Date;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
  /** The run in flight, if any. */
  running: Promise<void> | undefined;
  ttl: TtlCheck | undefined;
  retired: boolean;
}

export class CheckManager extends EventEmitter<CheckManagerEvents> {
  readonly #instances = new Map<string, Map<string, Entry>>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #log: Logger;
  readonly #maxFirstRunDelayMs: number;
  #stopped = false;

  constructor(opts: CheckManagerOptions = {}) {
    super();
    this.#log = opts.logger ?? silentLogger();
    this.#maxFirstRunDelayMs = opts.maxFirstRunDelayMs ?? DEFAULT_MAX_FIRST_RUN_DELAY_MS;
  }

  /**
   * Makes `defs` the checks of `instanceId`: adds new ones, removes missing ones, restarts
   * changed ones. An unchanged definition keeps its state and timer. A changed one (same
   * id) keeps its reported status and output, so editing an interval does not flap the
   * service, but its threshold counters start over. Invalid input throws and changes nothing.
   */
  set(instanceId: string, defs: readonly CheckDefinition[]): void {
    this.#assertRunning();
    if (instanceId === '') throw new MeshError('MESH_ERR_INVALID_ARGUMENT', 'instance id must not be empty');
    const valid = validateDefs(instanceId, defs);
    if (valid.length === 0) {
      this.remove(instanceId);
      return;
    }
    const current = this.#instances.get(instanceId) ?? new Map<string, Entry>();
    const next = new Map<string, Entry>();
    for (const def of valid) {
      const key = canonicalKey(def);
      const old = current.get(def.id);
      if (old && old.key === key) {
        next.set(def.id, old);
        continue;
      }
      const entry = this.#createEntry(instanceId, def, key, old);
      next.set(def.id, entry);
      if (old) this.#retire(old);
      this.#start(entry, old?.running);
    }
    for (const [id, old] of current) if (!next.has(id)) this.#retire(old);
    this.#instances.set(instanceId, next);
  }

  /** Stops and forgets every check of the instance. Returns whether it had any. */
  remove(instanceId: string): boolean {
    const entries = this.#instances.get(instanceId);
    if (!entries) return false;
    for (const entry of entries.values()) this.#retire(entry);
    this.#instances.delete(instanceId);
    return true;
  }

  /**
   * Records a `meshctl check pass|warn|fail` report for a TTL check. Check ids are unique
   * per instance; when several instances use the same id, `instanceId` picks one.
   */
  ttlUpdate(checkId: string, status: CheckStatus, note = '', opts: { instanceId?: string } = {}): CheckStateView {
    this.#assertRunning();
    if (!checkStatusSchema.safeParse(status).success) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `invalid check status '${String(status)}': use passing, warning or critical`,
      );
    }
    const matches: Entry[] = [];
    for (const [instanceId, entries] of this.#instances) {
      if (opts.instanceId !== undefined && opts.instanceId !== instanceId) continue;
      const entry = entries.get(checkId);
      if (entry) matches.push(entry);
    }
    if (matches.length === 0) {
      const where = opts.instanceId === undefined ? '' : ` on instance '${opts.instanceId}'`;
      throw new MeshError('MESH_ERR_NOT_FOUND', `no check '${checkId}'${where}`, {
        hint: 'List the checks with `meshctl services`.',
      });
    }
    if (matches.length > 1) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `check id '${checkId}' is used by instances ${matches.map((e) => `'${e.instanceId}'`).join(', ')}`,
        {
          hint: 'Name the instance the report is for.',
        },
      );
    }
    const entry = matches[0]!;
    if (!entry.ttl) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `check '${checkId}' is of kind ${entry.def.kind}; only TTL checks take pass/warn/fail reports`,
      );
    }
    this.#record(entry, entry.ttl.update(status, note));
    return view(entry);
  }

  /** The state of every check (of one instance, if given), sorted by instance and check id. */
  states(instanceId?: string): CheckStateView[] {
    const out: CheckStateView[] = [];
    for (const [id, entries] of this.#instances) {
      if (instanceId !== undefined && id !== instanceId) continue;
      for (const entry of entries.values()) out.push(view(entry));
    }
    return out.sort((a, b) => a.instanceId.localeCompare(b.instanceId) || a.checkId.localeCompare(b.checkId));
  }

  /** Stops every check, cancels runs in flight and resolves when they have ended. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const id of [...this.#instances.keys()]) this.remove(id);
    await Promise.allSettled([...this.#inflight]);
  }

  #assertRunning(): void {
    if (this.#stopped) throw new MeshError('MESH_ERR_UNAVAILABLE', 'the health checker has been stopped');
  }

  #createEntry(instanceId: string, def: CheckDefinition, key: string, old: Entry | undefined): Entry {
    // TTL reports are taken as they come, so their filter has thresholds of one.
    const isTtl = def.kind === 'ttl';
    const initial = old?.filter.status ?? 'critical';
    return {
      instanceId,
      def,
      key,
      filter: new StatusFilter(isTtl ? 1 : def.successBeforePassing, isTtl ? 1 : def.failuresBeforeCritical, initial),
      output: old?.output ?? '',
      lastRunAt: old?.lastRunAt ?? null,
      statusSince: old?.statusSince ?? new Date(),
      timer: undefined,
      abort: undefined,
      running: undefined,
      ttl: undefined,
      retired: false,
    };
  }

  #start(entry: Entry, predecessor: Promise<void> | undefined): void {
    if (entry.def.kind === 'ttl') {
      entry.ttl = new TtlCheck(entry.def.ttlMs!, (result) => {
        if (!entry.retired) this.#record(entry, result);
      });
      entry.ttl.start();
      return;
    }
    const delay = Math.floor(Math.random() * Math.min(entry.def.intervalMs, this.#maxFirstRunDelayMs));
    // A replaced definition's last run may still be winding down; do not overlap it.
    if (predecessor) void predecessor.then(() => this.#schedule(entry, delay));
    else this.#schedule(entry, delay);
  }

  #schedule(entry: Entry, delayMs: number): void {
    if (entry.retired) return;
    entry.timer = setTimeout(() => this.#run(entry), delayMs);
    // Check timers alone must not keep the process alive; stop() clears them anyway.
    entry.timer.unref();
  }

  #run(entry: Entry): void {
    entry.timer = undefined;
    if (entry.retired) return;
    const runner = runnerFor(entry.def.kind);
    if (!runner) return;
    const abort = new AbortController();
    entry.abort = abort;
    const started = Date.now();
    const done = runner(entry.def, abort.signal)
      .catch((err: unknown): CheckResult => ({
        // Runners do not reject; should one ever, the check fails rather than the agent.
        status: 'critical',
        output: truncateOutput(`check failed: ${err instanceof Error ? err.message : String(err)}`),
      }))
      .then((result) => {
        entry.abort = undefined;
        if (entry.retired) return;
        this.#record(entry, result);
        this.#schedule(entry, Math.max(0, entry.def.intervalMs - (Date.now() - started)));
      })
      .finally(() => {
        this.#inflight.delete(done);
        if (entry.running === done) entry.running = undefined;
      });
    entry.running = done;
    this.#inflight.add(done);
  }

  #record(entry: Entry, result: CheckResult): void {
    const now = new Date();
    const previous = entry.filter.status;
    const status = entry.filter.observe(result.status);
    entry.output = result.output;
    entry.lastRunAt = now;
    const base = { instanceId: entry.instanceId, checkId: entry.def.id, kind: entry.def.kind, at: now.toISOString() };
    this.#guarded('run', () => this.emit('run', { ...base, result, status }));
    if (status !== previous) {
      entry.statusSince = now;
      this.#guarded('change', () => this.emit('change', { ...base, previous, status, output: result.output }));
    }
  }

  /** A throwing listener must not break the check loop (nor surface as an unhandled rejection). */
  #guarded(event: keyof CheckManagerEvents, emit: () => void): void {
    try {
      emit();
    } catch (err) {
      this.#log.error({ err, event }, 'health check listener threw');
    }
  }

  #retire(entry: Entry): void {
    entry.retired = true;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.abort?.abort();
    entry.ttl?.stop();
  }
}

function validateDefs(instanceId: string, defs: readonly CheckDefinition[]): CheckDefinition[] {
  const seen = new Set<string>();
  return defs.map((raw, i) => {
    const parsed = checkDefinitionSchema.safeParse(raw);
    const label = typeof raw?.id === 'string' && raw.id ? `'${raw.id}'` : `#${i + 1}`;
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `instance '${instanceId}', check ${label}: ${where}${issue?.message ?? 'invalid'}`,
      );
    }
    const def = parsed.data;
    if (seen.has(def.id))
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `instance '${instanceId}' has two checks with id '${def.id}'`);
    seen.add(def.id);
    if (def.kind === 'ttl' && def.ttlMs === undefined) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `instance '${instanceId}', check '${def.id}': a TTL check needs ttlMs`,
      );
    }
    return def;
  });
}

function canonicalKey(def: CheckDefinition): string {
  return JSON.stringify([
    def.kind,
    def.target,
    def.intervalMs,
    def.timeoutMs,
    def.ttlMs ?? null,
    def.successBeforePassing,
    def.failuresBeforeCritical,
  ]);
}

function view(entry: Entry): CheckStateView {
  return {
    instanceId: entry.instanceId,
    checkId: entry.def.id,
    kind: entry.def.kind,
    target: entry.def.target,
    status: entry.filter.status,
    output: entry.output,
    lastRunAt: entry.lastRunAt?.toISOString() ?? null,
    statusSince: entry.statusSince.toISOString(),
    consecutiveSuccesses: entry.filter.consecutiveSuccesses,
    consecutiveFailures: entry.filter.consecutiveFailures,
  };
}
