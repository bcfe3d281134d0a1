/** Nodes and their liveness lease. A node is alive while `alive/<node>` (attached to its lease) exists. */
import { MeshError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import type { NodeRecord, NodeView } from '../api/schemas.js';
import { decode, getJson } from './json-store.js';
import { keys, parseInstanceKey, PREFIX } from './keys.js';

interface AliveRecord {
  leaseId: number;
  ttlSeconds: number;
  since: string;
  lastSeen: string;
  /** URL of the registry this node's heartbeats reach (several registries share one store). */
  registry?: string;
}

export class Nodes {
  /** Last heartbeat per node as this registry saw it; heartbeats do not write to the store. */
  readonly #seen = new Map<string, string>();

  readonly #store: Store;
  readonly #self: () => string | undefined;

  constructor(
    store: Store,
    /** This registry's URL, recorded on the nodes whose heartbeats it takes. */
    self: () => string | undefined = () => undefined,
  ) {
    this.#store = store;
    this.#self = self;
  }

  async upsert(record: NodeRecord): Promise<number> {
    const res = await this.#store.put(keys.node(record.name), JSON.stringify(record));
    return res.revision;
  }

  async get(name: string): Promise<NodeRecord | undefined> {
    return getJson<NodeRecord>(this.#store, keys.node(name));
  }

  /** Whether the node holds a live lease (it heartbeats). */
  async isAlive(name: string): Promise<boolean> {
    return (await this.#store.get(keys.alive(name))) !== undefined;
  }

  /** When this registry last heard the node's heartbeat. */
  lastSeen(name: string): string | undefined {
    return this.#seen.get(name);
  }

  /**
   * Keeps the node's lease alive, granting a new one when it is missing (first heartbeat,
   * expiry, registry data loss). Idempotent, so an agent only ever calls this one thing.
   */
  async heartbeat(
    name: string,
    ttlSeconds: number,
  ): Promise<{ leaseId: number; ttlSeconds: number; renewed: boolean }> {
    if (!(await this.get(name))) throw new MeshError('MESH_ERR_NOT_FOUND', `node '${name}' has not joined`);
    const key = keys.alive(name);
    const kv = await this.#store.get(key);
    const now = new Date().toISOString();
    this.#seen.set(name, now);
    if (kv) {
      const rec = decode<AliveRecord>(kv);
      if (rec.ttlSeconds === ttlSeconds) {
        try {
          await this.#store.keepAlive(rec.leaseId);
          await this.#noteRegistry(key, kv.modRevision, rec);
          return { leaseId: rec.leaseId, ttlSeconds, renewed: true };
        } catch (e) {
          if (!(e instanceof MeshError && e.code === 'MESH_ERR_LEASE_NOT_FOUND')) throw e;
        }
      } else {
        await this.#store.revokeLease(rec.leaseId).catch(() => undefined);
      }
    }
    const lease = await this.#store.grantLease(ttlSeconds);
    const self = this.#self();
    const rec: AliveRecord = {
      leaseId: lease.id,
      ttlSeconds,
      since: now,
      lastSeen: now,
      ...(self ? { registry: self } : {}),
    };
    const res = await this.#store.txn({
      compare: [{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 }],
      success: [{ type: 'put', key, value: JSON.stringify(rec), lease: lease.id }],
    });
    if (!res.succeeded) {
      // Another heartbeat of the same node won the race; ours is redundant.
      await this.#store.revokeLease(lease.id).catch(() => undefined);
      const cur = await getJson<AliveRecord>(this.#store, key);
      return { leaseId: cur?.leaseId ?? 0, ttlSeconds, renewed: true };
    }
    return { leaseId: lease.id, ttlSeconds, renewed: false };
  }

  /**
   * Records which registry the node is on, writing only when that changed (a failover), so
   * heartbeats stay free of writes. Losing the race to another write is fine: the next
   * heartbeat tries again.
   */
  async #noteRegistry(key: string, modRevision: number, rec: AliveRecord): Promise<void> {
    const self = this.#self();
    if (!self || rec.registry === self) return;
    await this.#store.txn({
      compare: [{ key, target: 'modRevision', op: '=', value: modRevision }],
      success: [{ type: 'put', key, value: JSON.stringify({ ...rec, registry: self }), lease: rec.leaseId }],
    });
  }

  async list(): Promise<{ revision: number; nodes: NodeView[] }> {
    const res = await this.#store.txn({
      compare: [],
      success: [
        { type: 'range', prefix: PREFIX.nodes },
        { type: 'range', prefix: PREFIX.alive },
        { type: 'range', prefix: PREFIX.services },
      ],
    });
    const [nodesR, aliveR, svcR] = res.results;
    const alive = new Map<string, AliveRecord>();
    if (aliveR?.type === 'range')
      for (const kv of aliveR.kvs) alive.set(kv.key.slice(PREFIX.alive.length), decode<AliveRecord>(kv));
    const counts = new Map<string, number>();
    if (svcR?.type === 'range') {
      for (const kv of svcR.kvs) {
        const k = parseInstanceKey(kv.key);
        if (k) counts.set(k.node, (counts.get(k.node) ?? 0) + 1);
      }
    }
    const nodes: NodeView[] =
      nodesR?.type === 'range'
        ? nodesR.kvs.map((kv) => {
            const n = decode<NodeRecord>(kv);
            const a = alive.get(n.name);
            const view: NodeView = { ...n, alive: a !== undefined, services: counts.get(n.name) ?? 0 };
            if (a) view.lastSeen = this.#seen.get(n.name) ?? a.lastSeen;
            if (a?.registry) view.registry = a.registry;
            return view;
          })
        : [];
    return { revision: res.revision, nodes };
  }

  /** `meshctl agent leave` and `meshctl node remove`: the node, its lease and all its instances go in one revision. */
  async remove(name: string): Promise<{ revision: number }> {
    const svc = await this.#store.range(PREFIX.services);
    const mine = svc.kvs.filter((kv) => parseInstanceKey(kv.key)?.node === name);
    const aliveKv = await this.#store.get(keys.alive(name));
    if (aliveKv) await this.#store.revokeLease(decode<AliveRecord>(aliveKv).leaseId).catch(() => undefined);
    const res = await this.#store.txn({
      compare: [],
      success: [
        { type: 'delete', key: keys.node(name) },
        { type: 'delete', key: keys.alive(name) },
        ...mine.map((kv) => ({ type: 'delete' as const, key: kv.key })),
      ],
    });
    this.#seen.delete(name);
    return { revision: res.revision };
  }
}
