/** Service instances and their health, over the store. */
import { MeshError } from '../errors/index.js';
import type { KeyValue, OpResult, Store } from '../store/types.js';
import type {
  CheckStatus,
  InstanceView,
  ServiceInstance,
  ServiceRegistration,
  ServiceSummary,
} from '../api/schemas.js';
import { decode, updateJson } from './json-store.js';
import { keys, parseInstanceKey, PREFIX } from './keys.js';
import { isHealthy, toView } from './health.js';

/** The registry's own SPIFFE identity uses this service name, so no instance may take it. */
export const REGISTRY_SERVICE = 'meshctl-registry';

export class Catalog {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Creates or updates the instance (node, id); keeps reported check states for checks that remain. */
  async register(
    node: string,
    nodeAddress: string,
    reg: ServiceRegistration,
  ): Promise<{ instance: ServiceInstance; revision: number }> {
    if (reg.name === REGISTRY_SERVICE) {
      throw new MeshError(
        'MESH_ERR_BAD_REQUEST',
        `invalid request body: service.name: '${REGISTRY_SERVICE}' is reserved for the registry itself`,
      );
    }
    const id = reg.id ?? reg.name;
    // An id belongs to one service per node: refuse re-using it for another name.
    const other = await this.#findById(node, id);
    if (other && other.name !== reg.name) {
      throw new MeshError(
        'MESH_ERR_CONFLICT',
        `instance id '${id}' on node '${node}' is already used by service '${other.name}'`,
      );
    }
    const now = new Date().toISOString();
    const key = keys.instance(reg.name, node, id);
    const res = await updateJson<ServiceInstance>(this.#store, key, (cur) => {
      const checkStates: ServiceInstance['checkStates'] = {};
      for (const c of reg.checks) {
        const prev = cur?.checkStates[c.id];
        if (prev) checkStates[c.id] = prev;
      }
      const { id: _id, address, ...rest } = reg;
      const next: ServiceInstance = {
        ...rest,
        id,
        node,
        address: address ?? nodeAddress,
        checkStates,
        // A drain outlasts a re-registration: only the agent's draining update ends it.
        ...(cur?.drainingSince !== undefined ? { drainingSince: cur.drainingSince } : {}),
        registeredAt: cur?.registeredAt ?? now,
        updatedAt: now,
      };
      // Re-registering the same definition must not bump the revision (agents re-sync often).
      if (cur && sameRegistration(cur, next)) return undefined;
      return next;
    });
    return { instance: res.value!, revision: res.revision };
  }

  async deregister(node: string, id: string): Promise<{ revision: number; deleted: boolean }> {
    const inst = await this.#findById(node, id);
    if (!inst) throw new MeshError('MESH_ERR_NOT_FOUND', `no instance '${id}' on node '${node}'`);
    const res = await this.#store.delete(keys.instance(inst.name, node, id));
    return { revision: res.revision, deleted: res.deleted > 0 };
  }

  async updateCheck(
    node: string,
    id: string,
    checkId: string,
    status: CheckStatus,
    output: string,
  ): Promise<{ revision: number; changed: boolean }> {
    const inst = await this.#findById(node, id);
    if (!inst) throw new MeshError('MESH_ERR_NOT_FOUND', `no instance '${id}' on node '${node}'`);
    if (!inst.checks.some((c) => c.id === checkId)) {
      throw new MeshError('MESH_ERR_NOT_FOUND', `instance '${id}' on node '${node}' has no check '${checkId}'`);
    }
    const res = await updateJson<ServiceInstance>(this.#store, keys.instance(inst.name, node, id), (cur) => {
      if (!cur) return undefined;
      const prev = cur.checkStates[checkId];
      if (prev && prev.status === status && prev.output === output) return undefined;
      return {
        ...cur,
        checkStates: { ...cur.checkStates, [checkId]: { status, output, updatedAt: new Date().toISOString() } },
      };
    });
    if (!res.value) throw new MeshError('MESH_ERR_NOT_FOUND', `no instance '${id}' on node '${node}'`);
    return { revision: res.revision, changed: res.changed };
  }

  /**
   * Marks the instance draining (critical, so callers drop it) or serving again. Unchanged
   * states do not bump the revision.
   */
  async setDraining(node: string, id: string, draining: boolean): Promise<{ revision: number; changed: boolean }> {
    const inst = await this.#findById(node, id);
    if (!inst) throw new MeshError('MESH_ERR_NOT_FOUND', `no instance '${id}' on node '${node}'`);
    const res = await updateJson<ServiceInstance>(this.#store, keys.instance(inst.name, node, id), (cur) => {
      if (!cur || (cur.drainingSince !== undefined) === draining) return undefined;
      const { drainingSince: _since, ...rest } = cur;
      const now = new Date().toISOString();
      return draining ? { ...rest, drainingSince: now, updatedAt: now } : { ...rest, updatedAt: now };
    });
    if (!res.value) throw new MeshError('MESH_ERR_NOT_FOUND', `no instance '${id}' on node '${node}'`);
    return { revision: res.revision, changed: res.changed };
  }

  /** Instances of one service with computed health, read at one revision. */
  async instances(
    service: string,
    opts: { healthyOnly?: boolean } = {},
  ): Promise<{ revision: number; instances: InstanceView[] }> {
    const res = await this.#store.txn({
      compare: [],
      success: [
        { type: 'range', prefix: keys.servicePrefix(service) },
        { type: 'range', prefix: PREFIX.alive },
      ],
    });
    const [svcRange, aliveRange] = res.results;
    const alive = aliveNodes(aliveRange);
    const views = rangeKvs(svcRange).map((kv) => {
      const inst = decode<ServiceInstance>(kv);
      return toView(inst, alive.has(inst.node));
    });
    return { revision: res.revision, instances: opts.healthyOnly ? views.filter(isHealthy) : views };
  }

  async allInstances(): Promise<{ revision: number; instances: InstanceView[] }> {
    const res = await this.#store.txn({
      compare: [],
      success: [
        { type: 'range', prefix: PREFIX.services },
        { type: 'range', prefix: PREFIX.alive },
      ],
    });
    const alive = aliveNodes(res.results[1]);
    const instances = rangeKvs(res.results[0]).map((kv) => {
      const inst = decode<ServiceInstance>(kv);
      return toView(inst, alive.has(inst.node));
    });
    return { revision: res.revision, instances };
  }

  async services(): Promise<{ revision: number; services: ServiceSummary[] }> {
    const { revision, instances } = await this.allInstances();
    const byName = new Map<string, ServiceSummary>();
    for (const inst of instances) {
      let s = byName.get(inst.name);
      if (!s) {
        s = { name: inst.name, instances: 0, healthy: 0, tags: [], protocols: [] };
        byName.set(inst.name, s);
      }
      s.instances += 1;
      if (isHealthy(inst)) s.healthy += 1;
      for (const t of inst.tags) if (!s.tags.includes(t)) s.tags.push(t);
      if (!s.protocols.includes(inst.protocol)) s.protocols.push(inst.protocol);
    }
    return { revision, services: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)) };
  }

  /** Instances registered on one node (keys are service-first, so this is a scan). */
  async onNode(node: string): Promise<ServiceInstance[]> {
    const r = await this.#store.range(PREFIX.services);
    return r.kvs.filter((kv) => parseInstanceKey(kv.key)?.node === node).map((kv) => decode<ServiceInstance>(kv));
  }

  async #findById(node: string, id: string): Promise<ServiceInstance | undefined> {
    return (await this.onNode(node)).find((i) => i.id === id);
  }
}

function rangeKvs(r: OpResult | undefined): KeyValue[] {
  return r?.type === 'range' ? r.kvs : [];
}

function aliveNodes(r: OpResult | undefined): Set<string> {
  return new Set(rangeKvs(r).map((kv) => kv.key.slice(PREFIX.alive.length)));
}

function sameRegistration(a: ServiceInstance, b: ServiceInstance): boolean {
  const strip = (i: ServiceInstance) => ({ ...i, updatedAt: '' });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
