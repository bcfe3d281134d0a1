/**
 * The registries serving one mesh, as the store knows them: each running registry keeps a
 * key `registry/peers/<id>` on a lease of its own, so a registry that dies drops out of the
 * list when its lease runs out, without anyone deciding it. Agents and the CLI read the list
 * from `/v1/status/peers` to learn where to fail over. On sqlite the list is just this one.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../util/log.js';
import type { Store } from '../store/types.js';

export const PEERS_PREFIX = 'registry/peers/';
const LEASE_TTL_SECONDS = 10;
/** Keep-alive every third of the TTL; after a failure, retry with backoff and jitter, capped. */
const KEEPALIVE_MS = (LEASE_TTL_SECONDS * 1000) / 3;
const RETRY_CAP_MS = 2_000;

const peerSchema = z.object({ id: z.string(), url: z.string(), startedAt: z.string(), store: z.string() });
export type Peer = z.infer<typeof peerSchema>;

export function peerId(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

export class PeerDirectory {
  self: Peer;
  #lease = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failures = 0;

  readonly #store: Store;
  readonly #log: Logger;

  constructor(store: Store, url: string, log: Logger) {
    this.#store = store;
    this.#log = log;
    this.self = { id: peerId(url), url, startedAt: new Date().toISOString(), store: store.kind };
  }

  /**
   * Registers this registry; resolves once it is listed (so peers see it at once). `url`
   * replaces the configured one when the registry listens elsewhere (`--bind` override).
   */
  async start(url?: string): Promise<void> {
    if (url !== undefined && url !== this.self.url) this.self = { ...this.self, id: peerId(url), url };
    await this.#announce();
    this.#schedule(KEEPALIVE_MS);
  }

  async list(): Promise<Peer[]> {
    const { kvs } = await this.#store.range(PEERS_PREFIX);
    const out: Peer[] = [];
    for (const kv of kvs) {
      try {
        const p = peerSchema.safeParse(JSON.parse(kv.value));
        if (p.success) out.push(p.data);
      } catch {
        // Not ours to judge: skip a record this version cannot read.
      }
    }
    return out.sort((a, b) => a.url.localeCompare(b.url));
  }

  /** Leaves the list at once (a clean stop), rather than when the lease runs out. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#lease) await this.#store.revokeLease(this.#lease).catch(() => undefined);
  }

  async #announce(): Promise<void> {
    const lease = await this.#store.grantLease(LEASE_TTL_SECONDS);
    await this.#store.put(`${PEERS_PREFIX}${this.self.id}`, JSON.stringify(this.self), { lease: lease.id });
    this.#lease = lease.id;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#beat(), ms);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    try {
      try {
        await this.#store.keepAlive(this.#lease);
      } catch (e) {
        // The lease ran out (store away longer than the TTL): list ourselves again.
        if ((e as { code?: string }).code !== 'MESH_ERR_LEASE_NOT_FOUND') throw e;
        await this.#announce();
      }
      this.#failures = 0;
      this.#schedule(KEEPALIVE_MS);
    } catch (e) {
      this.#failures += 1;
      if (this.#failures === 1) this.#log.warn({ err: e }, 'cannot keep this registry listed among its peers');
      this.#schedule(Math.random() * Math.min(RETRY_CAP_MS, 100 * 2 ** this.#failures));
    }
  }
}
