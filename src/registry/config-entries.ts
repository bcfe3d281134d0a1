/**
 * Config entries in the store: `config/<kind>/<name>` for four kinds; `service-intentions` are
 * the intention records (`intentions/<source>/<destination>`), so `meshctl intention` and
 * `meshctl apply` edit the same objects. Agents watch `config/` like the catalog.
 *
 * Every change is one store transaction holding the entries, a history record per entry
 * changed (`config-history/…`: time, who, what; its revision is the key's create revision)
 * and a bump of `meta/config-version`, which every write compares: an apply validated
 * against one state can never commit over another (it re-reads and validates again).
 */
import { MeshError } from '../errors/index.js';
import type { KeyValue, Op, Store } from '../store/types.js';
import {
  entryRef,
  type ApplyResult,
  type ConfigChangeOp,
  type ConfigEntry,
  type ConfigHistoryRecord,
  type ConfigKind,
  type IntentionPermission,
  type IntentionSource,
  type ServiceIntentions,
  type StoredConfigEntry,
} from '../api/config-entries.js';
import type { Intention, IntentionAction } from '../api/schemas.js';
import { validateConfigSet, type ConfigIssue } from './config-validate.js';
import { summarize } from '../api/config-summary.js';
import { PREFIX, keys } from './keys.js';
import type { Principal } from './auth.js';

/** A stored intention record; L7 sources keep their permissions with it. */
export interface IntentionRecord extends Intention {
  permissions?: IntentionPermission[];
}

/** One document of an apply: the parsed entry and where it came from, for messages. */
export interface ApplyDocument {
  entry: ConfigEntry;
  /** `document 2 (service-splitter/api)` or `web.yaml document 2`: said in every error about it. */
  label: string;
}

const VERSION_KEY = 'meta/config-version';
const MAX_TRIES = 8;

export function who(p: Principal | undefined): string {
  if (!p) return 'unknown';
  return p.kind === 'node' ? `node ${p.node}` : `${p.kind} token ${p.tokenId}`;
}

interface Live {
  revision: number;
  versionMod: number;
  /** ref → stored entry (intentions synthesized per destination). */
  entries: Map<string, StoredConfigEntry>;
  intentions: Map<string, { record: IntentionRecord; kv: KeyValue }>;
}

export class ConfigEntries {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Every live entry, sorted by kind then name, with the revision read at. */
  async list(kind?: ConfigKind, name?: string): Promise<{ revision: number; entries: StoredConfigEntry[] }> {
    const live = await this.#read();
    const entries = [...live.entries.values()]
      .filter((s) => (kind === undefined || s.entry.kind === kind) && (name === undefined || s.entry.name === name))
      .sort((a, b) => cmp(a.entry.kind, b.entry.kind) || cmp(a.entry.name, b.entry.name));
    return { revision: live.revision, entries };
  }

  async get(kind: ConfigKind, name: string): Promise<{ revision: number; entry: StoredConfigEntry }> {
    const r = await this.list(kind, name);
    const entry = r.entries[0];
    if (!entry)
      throw new MeshError('MESH_ERR_NOT_FOUND', `no config entry ${kind} ${name}`, {
        hint: 'List what is live with `meshctl get config`.',
      });
    return { revision: r.revision, entry };
  }

  /**
   * Applies documents all or nothing. Each document replaces the entry of its kind and name;
   * an entry equal to the live one is left alone (so re-applying `get config` output writes
   * nothing). With dryRun, validates against the live state and answers the diff only.
   */
  async apply(docs: readonly ApplyDocument[], opts: { dryRun: boolean; who: string }): Promise<ApplyResult> {
    const seen = new Map<string, string>();
    for (const d of docs) {
      const ref = entryRef(d.entry);
      const prev = seen.get(ref);
      if (prev) throw invalid(`${d.label}: ${ref} is also given by ${prev}; give each entry once`);
      seen.set(ref, d.label);
    }
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const live = await this.#read();
      const next = new Map([...live.entries].map(([k, v]) => [k, v.entry]));
      const changes: ApplyResult['changes'] = [];
      const changed: ConfigEntry[] = [];
      for (const d of docs) {
        const entry = normalize(d.entry);
        const ref = entryRef(entry);
        const cur = live.entries.get(ref)?.entry;
        if (cur && JSON.stringify(cur) === JSON.stringify(entry)) {
          changes.push({ kind: entry.kind, name: entry.name, op: 'unchanged' });
          continue;
        }
        next.set(ref, entry);
        changed.push(entry);
        changes.push({ kind: entry.kind, name: entry.name, op: cur ? 'update' : 'create' });
      }
      const labels = new Map(docs.map((d) => [entryRef(d.entry), d.label]));
      const issues = relevant(validateConfigSet([...next.values()]), new Set(changed.map(entryRef)));
      if (issues.length > 0) throw invalidIssues(issues, labels);
      const diff = await entryDiffs(changed.map((e) => [live.entries.get(entryRef(e))?.entry, e]));
      if (opts.dryRun || changed.length === 0) return { dryRun: opts.dryRun, revision: live.revision, changes, diff };
      const ops = changed.flatMap((e) =>
        this.#writeOps(e, live, opts.who, live.entries.has(entryRef(e)) ? 'update' : 'create'),
      );
      const res = await this.#commit(live, ops);
      if (res !== undefined) return { dryRun: false, revision: res, changes, diff };
    }
    throw new MeshError('MESH_ERR_CONFLICT', 'config entries kept changing while this apply was validated; try again');
  }

  /** Deletes one entry, refused with MESH_ERR_CONFIG_IN_USE while another entry names it. */
  async delete(kind: ConfigKind, name: string, whoDid: string): Promise<{ revision: number }> {
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const live = await this.#read();
      const ref = entryRef({ kind, name });
      const cur = live.entries.get(ref);
      if (!cur)
        throw new MeshError('MESH_ERR_NOT_FOUND', `no config entry ${kind} ${name}`, {
          hint: 'List what is live with `meshctl get config`.',
        });
      const rest = [...live.entries.values()].map((s) => s.entry).filter((e) => entryRef(e) !== ref);
      const users = validateConfigSet(rest).filter((i) => i.references === ref);
      if (users.length > 0) {
        throw new MeshError(
          'MESH_ERR_CONFIG_IN_USE',
          `${kind} ${name} is in use: ${users.map((u) => `${u.ref} ${u.path}: ${u.reason}`).join('; ')}`,
          { details: users },
        );
      }
      const ops: Op[] = [...this.#deleteOps(cur.entry, live), history(whoDid, kind, name, 'delete', '')];
      const res = await this.#commit(live, ops);
      if (res !== undefined) return { revision: res };
    }
    throw new MeshError('MESH_ERR_CONFLICT', 'config entries kept changing during the delete; try again');
  }

  /** `meshctl intention allow|deny`: one source of one destination's service-intentions. */
  async setIntention(
    source: string,
    destination: string,
    action: IntentionAction,
    description: string,
    whoDid: string,
  ): Promise<{ intention: Intention; revision: number }> {
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const live = await this.#read();
      const ref = entryRef({ kind: 'service-intentions', name: destination });
      const cur = live.entries.get(ref)?.entry as ServiceIntentions | undefined;
      const src: IntentionSource = { name: source, action, ...(description ? { description } : {}) };
      const sources = [...(cur?.sources ?? []).filter((s) => s.name !== source), src];
      const entry = normalize({ kind: 'service-intentions', name: destination, sources });
      const ops = this.#writeOps(entry, live, whoDid, cur ? 'update' : 'create');
      const res = await this.#commit(live, ops);
      if (res !== undefined) {
        const kv = await this.#store.get(keys.intention(source, destination));
        return { intention: toIntention(JSON.parse(kv!.value) as IntentionRecord), revision: res };
      }
    }
    throw new MeshError('MESH_ERR_CONFLICT', 'intentions kept changing; try again');
  }

  /** `meshctl intention delete`. */
  async removeIntention(source: string, destination: string, whoDid: string): Promise<{ revision: number }> {
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const live = await this.#read();
      if (!live.intentions.has(keys.intention(source, destination)))
        throw new MeshError('MESH_ERR_NOT_FOUND', `no intention ${source} -> ${destination}`, {
          hint: 'List intentions with `meshctl intention list`.',
        });
      const ref = entryRef({ kind: 'service-intentions', name: destination });
      const cur = live.entries.get(ref)!.entry as ServiceIntentions;
      const sources = cur.sources.filter((s) => s.name !== source);
      const ops =
        sources.length === 0
          ? [...this.#deleteOps(cur, live), history(whoDid, cur.kind, cur.name, 'delete', '')]
          : this.#writeOps({ ...cur, sources }, live, whoDid, 'update');
      const res = await this.#commit(live, ops);
      if (res !== undefined) return { revision: res };
    }
    throw new MeshError('MESH_ERR_CONFLICT', 'intentions kept changing; try again');
  }

  /** Every change, oldest first; of one entry when kind and name are given. */
  async history(kind?: ConfigKind, name?: string): Promise<{ revision: number; changes: ConfigHistoryRecord[] }> {
    const r = await this.#store.range(PREFIX.configHistory);
    const changes = r.kvs
      .map((kv) => ({
        ...(JSON.parse(kv.value) as Omit<ConfigHistoryRecord, 'revision'>),
        revision: kv.createRevision,
      }))
      .filter((h) => (kind === undefined || h.kind === kind) && (name === undefined || h.name === name))
      .sort((a, b) => a.revision - b.revision);
    return {
      revision: r.revision,
      changes: changes.map((h) => ({
        revision: h.revision,
        time: h.time,
        who: h.who,
        kind: h.kind,
        name: h.name,
        op: h.op,
        summary: h.summary,
      })),
    };
  }

  async #read(): Promise<Live> {
    // One transaction of reads: entries, intentions and the version from the same revision.
    const r = await this.#store.txn({
      compare: [],
      success: [
        { type: 'range', prefix: PREFIX.config },
        { type: 'range', prefix: PREFIX.intentions },
        { type: 'get', key: VERSION_KEY },
      ],
    });
    const [cfg, ints, ver] = r.results as [
      { type: 'range'; kvs: KeyValue[] },
      { type: 'range'; kvs: KeyValue[] },
      { type: 'get'; kv?: KeyValue },
    ];
    const entries = new Map<string, StoredConfigEntry>();
    for (const kv of cfg.kvs) {
      const entry = JSON.parse(kv.value) as ConfigEntry;
      entries.set(entryRef(entry), { entry, createRevision: kv.createRevision, modRevision: kv.modRevision });
    }
    const intentions = new Map<string, { record: IntentionRecord; kv: KeyValue }>();
    const byDest = new Map<string, { sources: IntentionSource[]; create: number; mod: number }>();
    for (const kv of ints.kvs) {
      const record = JSON.parse(kv.value) as IntentionRecord;
      intentions.set(kv.key, { record, kv });
      const d = byDest.get(record.destination) ?? { sources: [], create: kv.createRevision, mod: 0 };
      d.sources.push(sourceOf(record));
      d.create = Math.min(d.create, kv.createRevision);
      d.mod = Math.max(d.mod, kv.modRevision);
      byDest.set(record.destination, d);
    }
    for (const [dest, d] of byDest) {
      const entry = normalize({ kind: 'service-intentions', name: dest, sources: d.sources });
      entries.set(entryRef(entry), { entry, createRevision: d.create, modRevision: d.mod });
    }
    return { revision: r.revision, versionMod: ver.kv?.modRevision ?? 0, entries, intentions };
  }

  /** Commits ops if no config write came in since `live` was read; the new revision, or undefined to retry. */
  async #commit(live: Live, ops: Op[]): Promise<number | undefined> {
    const res = await this.#store.txn({
      compare: [{ key: VERSION_KEY, target: 'modRevision', op: '=', value: live.versionMod }],
      success: [...ops, { type: 'put', key: VERSION_KEY, value: new Date().toISOString() }],
    });
    return res.succeeded ? res.revision : undefined;
  }

  #writeOps(entry: ConfigEntry, live: Live, whoDid: string, op: ConfigChangeOp): Op[] {
    const out: Op[] = [];
    if (entry.kind === 'service-intentions') {
      const now = new Date().toISOString();
      const keep = new Set<string>();
      for (const s of entry.sources) {
        const key = keys.intention(s.name, entry.name);
        keep.add(key);
        const prev = live.intentions.get(key)?.record;
        const record: IntentionRecord = {
          source: s.name,
          destination: entry.name,
          // An L7 source lets the connection in; its permissions then decide each request.
          action: s.action ?? 'allow',
          description: s.description ?? '',
          createdAt: prev?.createdAt ?? now,
          updatedAt: now,
          ...(s.permissions ? { permissions: s.permissions } : {}),
        };
        if (prev && JSON.stringify(sourceOf(prev)) === JSON.stringify(sourceOf(record))) continue;
        out.push({ type: 'put', key, value: JSON.stringify(record) });
      }
      for (const [key, { record }] of live.intentions)
        if (record.destination === entry.name && !keep.has(key)) out.push({ type: 'delete', key });
    } else {
      out.push({ type: 'put', key: configKey(entry.kind, entry.name), value: JSON.stringify(entry) });
    }
    out.push(history(whoDid, entry.kind, entry.name, op, summarize(entry)));
    return out;
  }

  #deleteOps(entry: ConfigEntry, live: Live): Op[] {
    if (entry.kind !== 'service-intentions') return [{ type: 'delete', key: configKey(entry.kind, entry.name) }];
    return [...live.intentions]
      .filter(([, v]) => v.record.destination === entry.name)
      .map(([key]) => ({ type: 'delete' as const, key }));
  }
}

export function configKey(kind: ConfigKind, name: string): string {
  return `${PREFIX.config}${kind}/${name}`;
}

let historySeq = 0;
function history(whoDid: string, kind: ConfigKind, name: string, op: ConfigChangeOp, summary: string): Op {
  const time = new Date().toISOString();
  // Sortable by time; the random tail keeps two registries writing at one millisecond apart.
  const id = `${String(Date.now()).padStart(15, '0')}-${String(historySeq++ % 1e6).padStart(6, '0')}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    type: 'put',
    key: `${PREFIX.configHistory}${id}`,
    value: JSON.stringify({ time, who: whoDid, kind, name, op, summary }),
  };
}

function sourceOf(r: IntentionRecord): IntentionSource {
  return {
    name: r.source,
    ...(r.permissions ? { permissions: r.permissions } : { action: r.action }),
    ...(r.description ? { description: r.description } : {}),
  };
}

function toIntention(r: IntentionRecord): Intention {
  const { permissions: _p, ...rest } = r;
  return rest;
}

/** The stored form: intention sources sorted by name (their order means nothing), empty descriptions left out. */
export function normalize<E extends ConfigEntry>(e: E): E {
  if (e.kind !== 'service-intentions') return e;
  const sources = e.sources
    .map((s) => {
      const { description, ...rest } = s;
      return description ? { ...rest, description } : rest;
    })
    .sort((a, b) => cmp(a.name, b.name));
  return { ...e, sources };
}

/**
 * The unified diff of each entry's YAML, live against applied. The diff and YAML libraries are
 * loaded here, at the first apply, not when the registry starts: most registries never take an
 * apply, and every MB an idle registry holds counts against its RSS goal (issue 12).
 */
async function entryDiffs(pairs: Array<[before: ConfigEntry | undefined, after: ConfigEntry]>): Promise<string> {
  if (pairs.length === 0) return '';
  const [{ createPatch }, { entryYaml }] = await Promise.all([import('diff'), import('../api/config-yaml.js')]);
  return pairs
    .map(([before, after]) =>
      createPatch(
        entryRef(after),
        before ? entryYaml(before) : '',
        entryYaml(after),
        before ? 'live' : '(none)',
        'applied',
      ),
    )
    .join('');
}

function relevant(issues: ConfigIssue[], changed: Set<string>): ConfigIssue[] {
  // Issues of live entries nobody touched are not this apply's doing (and cannot block it),
  // unless the entry breaks because it names one this apply changed.
  return issues.filter((i) => changed.has(i.ref) || (i.references !== undefined && changed.has(i.references)));
}

function invalid(message: string, details?: unknown): MeshError {
  return new MeshError('MESH_ERR_INVALID_CONFIG', message, details === undefined ? {} : { details });
}

function invalidIssues(issues: ConfigIssue[], labels: Map<string, string>): MeshError {
  const text = issues
    .slice(0, 5)
    .map((i) => `${labels.get(i.ref) ?? `live ${i.ref}`}: ${i.path}: ${i.reason}`)
    .join('; ');
  return invalid(`${text}${issues.length > 5 ? `; and ${issues.length - 5} more` : ''}`, issues.slice(0, 50));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
