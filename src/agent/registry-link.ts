/**
 * The agent's connection to the control plane: one client per known registry, authenticated
 * by the node certificate. It stays on one registry while that answers and moves to the next
 * when it is unreachable or has lost its store's quorum; the callers' loops add backoff with
 * jitter between whole rounds. Registries are those configured at join plus those the
 * registries themselves list (`/v1/status/peers`), so an agent joined through one registry
 * learns of the others. Revisions are the shared store's, so a blocking query resumes on
 * another registry from the index it had.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../util/log.js';
import { MeshError } from '../errors/index.js';
import { FAILOVER_CODES, RegistryClient } from '../api/registry-client.js';
import { SharedTlsSession } from '../api/resuming-agent.js';
import type { AgentPaths, AgentRuntimeConfig } from './config.js';

export class RegistryLink {
  #clients: RegistryClient[] = [];
  #current = 0;
  #configured: string[];
  #discovered: string[] = [];
  /** The node certificate, key and roots, with the TLS session every registry's client shares. */
  #material: { cert: string; key: string; roots: string; session: SharedTlsSession } | undefined;

  readonly #paths: AgentPaths;
  readonly #log: Logger | undefined;

  constructor(config: Pick<AgentRuntimeConfig, 'registries'>, paths: AgentPaths, log?: Logger) {
    this.#paths = paths;
    this.#log = log;
    this.#configured = [...config.registries];
  }

  /** New registry addresses (config reload); takes effect with the next `load()`. */
  setRegistries(urls: readonly string[]): void {
    this.#configured = [...urls];
    this.#current = 0;
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
    this.#rebuild(this.url);
  }

  get url(): string {
    const all = this.registries;
    return all[this.#current] ?? all[0]!;
  }

  /**
   * Learns the registries serving the mesh from the current one. Those no registry lists any
   * more are forgotten (the configured ones are kept whatever happens).
   */
  async refreshPeers(): Promise<void> {
    const { peers } = await this.call((c) => c.peers());
    const urls = peers.map((p) => p.url).sort();
    if (JSON.stringify(urls) === JSON.stringify([...this.#discovered].sort())) return;
    this.#discovered = urls;
    if (this.#material) this.#rebuild(this.url);
  }

  /** Runs `fn` against the current registry, trying the others in turn when it is unreachable. */
  async call<T>(fn: (c: RegistryClient) => Promise<T>): Promise<T> {
    if (this.#clients.length === 0) throw new MeshError('MESH_ERR_UNAVAILABLE', 'registry link not loaded');
    let last: unknown;
    const clients = this.#clients;
    for (let i = 0; i < clients.length; i++) {
      const idx = (this.#current + i) % clients.length;
      try {
        const res = await fn(clients[idx]!);
        if (clients === this.#clients && idx !== this.#current) {
          this.#log?.info({ from: this.url, to: this.registries[idx] }, 'moved to another registry');
          this.#current = idx;
        }
        return res;
      } catch (e) {
        if (!(e instanceof MeshError && FAILOVER_CODES.has(e.code))) throw e;
        last = e;
      }
    }
    throw last;
  }

  close(): void {
    for (const c of this.#clients) c.close();
    this.#clients = [];
  }

  /** New clients for the current registry list, staying on `keep` if it is still listed. */
  #rebuild(keep: string | undefined): void {
    const m = this.#material;
    if (!m) return;
    const all = this.registries;
    const next = all.map(
      // One session for all: a failover to another registry of the mesh resumes it.
      (baseUrl) =>
        new RegistryClient({
          baseUrl,
          ca: m.roots,
          cert: m.cert,
          key: m.key,
          timeoutMs: 10_000,
          tlsSession: m.session,
        }),
    );
    const old = this.#clients;
    this.#clients = next;
    this.#current = Math.max(0, keep === undefined ? 0 : all.indexOf(keep));
    // In-flight calls on the old clients finish first; a closed pool would fail them.
    setTimeout(() => {
      for (const c of old) c.close();
    }, 15_000).unref();
  }
}
