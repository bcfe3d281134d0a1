/**
 * The agent's connection to the control plane: one client per known registry, authenticated
 * by the node certificate. It stays on one registry while that answers and moves to the next
 * when it is unreachable or has lost its store's quorum; the callers' loops add backoff with
 * jitter between whole rounds. Registries are those configured at join plus those the
 * registries themselves list (`/v1/status/peers`), so an agent joined through one registry
 * learns of the others. Revisions are the shared store's, so a blocking query resumes on
 * another registry from the index it had.
 *
 * One truth: the registry the link is on (`url`, what `/v1/agent/self` reports) is a URL, not a
 * position in a list, so a peer list that is reordered or grows never moves the agent; and it
 * is where the agent's calls start and its blocking queries are held. A held query on any other
 * registry (one the link moved away from, or a client replaced since) is cut and asked again,
 * the same question from the same index, on the registry the link is on.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../util/log.js';
import { MeshError } from '../errors/index.js';
import { FAILOVER_CODES, RegistryClient } from '../api/registry-client.js';
import { SharedTlsSession } from '../api/resuming-agent.js';
import type { AgentPaths, AgentRuntimeConfig } from './config.js';

/** A blocking query in flight: the client it is held through, and how to cut it. */
interface Held {
  client: RegistryClient;
  cut: AbortController;
}

/** Thrown inside `watch` when its query must be asked again elsewhere; never leaves `watch`. */
const REASK = Symbol('re-ask on the registry the link is on');

/** Thrown inside `watch` when its caller stopped it, carrying the request's error out of `call`. */
class Stopped {
  constructor(readonly error: unknown) {}
}

export class RegistryLink {
  #clients: RegistryClient[] = [];
  /** The registry this agent is on (one of `registries`). */
  #current: string;
  #configured: string[];
  #discovered: string[] = [];
  readonly #held = new Set<Held>();
  /** Status reads in flight, one per client, shared by the watches failing over together. */
  readonly #probes = new Map<RegistryClient, Promise<void>>();
  /** The node certificate, key and roots, with the TLS session every registry's client shares. */
  #material: { cert: string; key: string; roots: string; session: SharedTlsSession } | undefined;

  readonly #paths: AgentPaths;
  readonly #log: Logger | undefined;

  constructor(config: Pick<AgentRuntimeConfig, 'registries'>, paths: AgentPaths, log?: Logger) {
    this.#paths = paths;
    this.#log = log;
    this.#configured = [...config.registries];
    this.#current = this.registries[0]!;
  }

  /**
   * New registry addresses (config reload). The link stays on its registry if it is still
   * listed (configured or learned from the peers); a new certificate takes effect with `load()`.
   */
  setRegistries(urls: readonly string[]): void {
    this.#relist(() => (this.#configured = [...urls]));
  }

  /** Every registry this agent may use, configured ones first. */
  get registries(): string[] {
    return [...this.#configured, ...this.#discovered.filter((u) => !this.#configured.includes(u))];
  }

  /** (Re)reads the node certificate, key and roots, e.g. after renewal. */
  async load(): Promise<void> {
    const [cert, key, roots] = await Promise.all(
      [this.#paths.nodeCert, this.#paths.nodeKey, this.#paths.roots].map((p) => readFile(p, 'utf8')),
    );
    // A new certificate gets a new session: a resumed old one would show the registry the old certificate.
    this.#material = { cert: cert!, key: key!, roots: roots!, session: new SharedTlsSession() };
    this.#rebuild(true);
  }

  /** The registry this agent is on: its calls start there and its blocking queries are held there. */
  get url(): string {
    return this.#current;
  }

  /**
   * Learns the registries serving the mesh from the current one. Those no registry lists any
   * more are forgotten (the configured ones are kept whatever happens). The link stays on its
   * registry whatever order the list comes in and whatever joins it.
   */
  async refreshPeers(): Promise<void> {
    const { peers } = await this.call((c) => c.peers());
    const urls = peers.map((p) => p.url).sort();
    if (JSON.stringify(urls) === JSON.stringify([...this.#discovered].sort())) return;
    this.#relist(() => (this.#discovered = urls));
    this.#log?.info({ registries: this.registries, on: this.#current }, 'registries changed');
  }

  /** Runs `fn` against the current registry, trying the others in turn when it is unreachable. */
  async call<T>(fn: (c: RegistryClient) => Promise<T>): Promise<T> {
    const clients = this.#clients;
    if (clients.length === 0) throw new MeshError('MESH_ERR_UNAVAILABLE', 'registry link not loaded');
    const from = this.#current;
    const start = Math.max(
      0,
      clients.findIndex((c) => c.baseUrl === from),
    );
    let last: unknown;
    for (let i = 0; i < clients.length; i++) {
      const client = clients[(start + i) % clients.length]!;
      try {
        const res = await fn(client);
        // Only a call that failed over from the registry the link is still on moves it: a call
        // that outlived someone else's move (a blocking query answering late, say) must not
        // move the link back, or the link and its held queries would be on two registries.
        if (client.baseUrl !== from && this.#current === from && this.registries.includes(client.baseUrl))
          this.#moveTo(client.baseUrl);
        return res;
      } catch (e) {
        if (!(e instanceof MeshError && FAILOVER_CODES.has(e.code))) throw e;
        last = e;
      }
    }
    throw last;
  }

  /**
   * A blocking query (`fn` passes `signal` on to its request): like `call`, and held only on
   * the registry the link is on. When the link moves (another call failed over, the peer list
   * dropped this registry) or its clients are replaced (a new certificate), the held request
   * is cut and the very same question is asked on the registry the link is on now: the caller
   * sees one answer, from the index it gave, so no change is missed or repeated. `signal`
   * aborting (the watch stopped) ends it with the request's error.
   */
  async watch<T>(fn: (c: RegistryClient, signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    for (;;) {
      const from = this.#current;
      try {
        return await this.call(async (client) => {
          // A failover step of a call that began before the link moved elsewhere, or through a
          // replaced client: ask where the link is now instead.
          if (!this.#clients.includes(client) || (client.baseUrl !== this.#current && this.#current !== from))
            throw REASK;
          if (client.baseUrl !== this.#current) {
            // A failover step: the link moves with the query once this registry is seen to
            // serve (its status reads the store), so the query is never held on a registry the
            // link does not report. Failing, the call goes on to the next.
            await this.#probe(client);
            if (this.#current === from) this.#moveTo(client.baseUrl);
            else if (this.#current !== client.baseUrl) throw REASK;
          }
          const held: Held = { client, cut: new AbortController() };
          const stop = (): void => held.cut.abort();
          if (signal.aborted) throw new Stopped(new MeshError('MESH_ERR_TIMEOUT', 'the watch was stopped'));
          signal.addEventListener('abort', stop, { once: true });
          this.#held.add(held);
          try {
            return await fn(client, held.cut.signal);
          } catch (e) {
            // Stopped: not a registry's failure, so no other registry is tried.
            if (signal.aborted) throw new Stopped(e);
            if (held.cut.signal.aborted) throw REASK;
            throw e;
          } finally {
            this.#held.delete(held);
            signal.removeEventListener('abort', stop);
          }
        });
      } catch (e) {
        if (e instanceof Stopped) throw e.error;
        if (e !== REASK) throw e;
        // Bounded: a re-ask happens only after the link moved or was rebuilt, each of which
        // follows a real answer or a peer/config change, never in a loop of its own.
      }
    }
  }

  close(): void {
    for (const h of this.#held) h.cut.abort();
    for (const c of this.#clients) c.close();
    this.#clients = [];
  }

  /**
   * Changes the lists with `change`, staying on the current registry if it is still listed: the
   * registry is kept by URL, so nothing computed from the old list meets the new one.
   */
  #relist(change: () => void): void {
    change();
    this.#rebuild(false);
  }

  #moveTo(to: string): void {
    if (to !== this.#current) {
      this.#log?.info({ from: this.#current, to }, 'moved to another registry');
      this.#current = to;
    }
    this.#cutStrays();
  }

  /** Whether `client`'s registry serves (answers its status from the store): one read at a time per client. */
  #probe(client: RegistryClient): Promise<void> {
    let p = this.#probes.get(client);
    if (!p) {
      p = client.status().then(() => undefined);
      this.#probes.set(client, p);
      // Every caller awaits `p` itself; this only forgets it once settled.
      p.catch(() => undefined).finally(() => this.#probes.delete(client));
    }
    return p;
  }

  /** Cuts the blocking queries held anywhere but through the current registry's client. */
  #cutStrays(): void {
    for (const h of this.#held)
      if (h.client.baseUrl !== this.#current || !this.#clients.includes(h.client)) h.cut.abort();
  }

  /**
   * Clients for the current registry list: new ones for all (`fresh`, a new certificate) or
   * only for registries not known before, so a peer list change leaves held queries alone.
   */
  #rebuild(fresh: boolean): void {
    const all = this.registries;
    // The link stays where it is while that registry is listed (never a position in the list).
    if (!all.includes(this.#current)) this.#moveTo(all[0]!);
    const m = this.#material;
    if (!m) return;
    const old = this.#clients;
    const next = all.map(
      (baseUrl) =>
        (!fresh && old.find((c) => c.baseUrl === baseUrl)) ||
        // One session for all: a failover to another registry of the mesh resumes it.
        new RegistryClient({
          baseUrl,
          ca: m.roots,
          cert: m.cert,
          key: m.key,
          timeoutMs: 10_000,
          tlsSession: m.session,
        }),
    );
    this.#clients = next;
    this.#cutStrays();
    const dropped = old.filter((c) => !next.includes(c));
    // In-flight calls on the old clients finish first (held queries were cut and asked again);
    // a closed pool would fail them.
    if (dropped.length > 0)
      setTimeout(() => {
        for (const c of dropped) c.close();
      }, 15_000).unref();
  }
}
