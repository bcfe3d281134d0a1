/**
 * The agent's connection to the control plane: one client per configured registry URL,
 * authenticated by the node certificate, failing over to the next URL when one is down.
 */
import { readFile } from 'node:fs/promises';
import { MeshError } from '../errors/index.js';
import { RegistryClient } from '../api/registry-client.js';
import type { AgentConfig, AgentPaths } from './config.js';

const FAILOVER_CODES = new Set(['MESH_ERR_UNAVAILABLE', 'MESH_ERR_TIMEOUT']);

export class RegistryLink {
  private clients: RegistryClient[] = [];
  private current = 0;
  private registries: string[];

  constructor(
    config: AgentConfig,
    private readonly paths: AgentPaths,
  ) {
    this.registries = [...config.registries];
  }

  /** New registry addresses (config reload); takes effect with the next `load()`. */
  setRegistries(urls: readonly string[]): void {
    this.registries = [...urls];
    this.current = 0;
  }

  /** (Re)reads the node certificate, key and roots, e.g. after renewal. */
  async load(): Promise<void> {
    const [cert, key, roots] = await Promise.all(
      [this.paths.nodeCert, this.paths.nodeKey, this.paths.roots].map((p) => readFile(p, 'utf8')),
    );
    const next = this.registries.map(
      (baseUrl) => new RegistryClient({ baseUrl, ca: roots!, cert: cert!, key: key!, timeoutMs: 10_000 }),
    );
    const old = this.clients;
    this.clients = next;
    for (const c of old) c.close();
  }

  get url(): string {
    return this.registries[this.current] ?? this.registries[0]!;
  }

  /** Runs `fn` against the current registry, trying the others in turn when it is unreachable. */
  async call<T>(fn: (c: RegistryClient) => Promise<T>): Promise<T> {
    if (this.clients.length === 0) throw new MeshError('MESH_ERR_UNAVAILABLE', 'registry link not loaded');
    let last: unknown;
    for (let i = 0; i < this.clients.length; i++) {
      const idx = (this.current + i) % this.clients.length;
      try {
        const res = await fn(this.clients[idx]!);
        this.current = idx;
        return res;
      } catch (e) {
        if (!(e instanceof MeshError && FAILOVER_CODES.has(e.code))) throw e;
        last = e;
      }
    }
    throw last;
  }

  close(): void {
    for (const c of this.clients) c.close();
    this.clients = [];
  }
}
