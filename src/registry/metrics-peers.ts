/**
 * Figures of the whole mesh from whichever registry is asked. Each agent reports its sidecars'
 * figures to the registry it is on, so with several registries (etcd) each holds only its own
 * agents' samples. Asked for the overview, a registry fetches the samples its peers hold
 * (`GET /v1/metrics/local` on each, listed by the peer directory) and merges them with its own.
 *
 * Why fetch on read rather than share through the store: the samples are a few KB per node
 * every 2 s, throwaway telemetry that a consensus store should not replicate, keep in its
 * history and compact (Consul keeps such figures out of Raft too); a read costs one request
 * per peer and only when someone looks. A peer that does not answer within PEER_TIMEOUT_MS is
 * named in the answer's `registries.missing`, so the figures never silently cover less than the
 * mesh; its agents move to a living registry within seconds and are counted there again.
 *
 * Who may read a registry's raw samples: only another registry of the mesh. Registries share
 * the mesh key (DATA_DIR/mesh.key), so each derives the same peer key from it (HMAC, never the
 * mesh key itself on the wire) and sends it as a bearer token over TLS checked against the mesh
 * CA. A registry without a mesh key (sqlite, memory: one registry) has no peers to ask.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../util/log.js';
import { HttpClient } from '../api/http-client.js';
import { MeshError } from '../errors/index.js';
import type { MeshKey } from './mesh-key.js';
import type { NodeSamples } from './metrics.js';
import type { PeerDirectory } from './peers.js';

const PEER_TIMEOUT_MS = 2_000;
const PEER_KEY_CONTEXT = 'meshctl registry peer metrics v1';

/** The bearer token registries of one mesh show each other: derived from the mesh key. */
export function peerKeyOf(meshKey: MeshKey): string {
  return `mpk.${createHmac('sha256', meshKey).update(PEER_KEY_CONTEXT).digest('base64url')}`;
}

export interface PeerFigures {
  samples: NodeSamples[];
  /** Peer registries whose samples are in (this one not counted). */
  answered: string[];
  /** Peer registries listed in the store that did not answer. */
  missing: string[];
}

export class PeerMetrics {
  readonly #clients = new Map<string, HttpClient>();

  readonly #peers: PeerDirectory;
  readonly #caPem: string;
  readonly #peerKey: string | undefined;
  readonly #log: Logger;

  constructor(
    peers: PeerDirectory,
    caPem: string,
    /** Undefined on a registry without a mesh key: then it has no peers to ask. */
    peerKey: string | undefined,
    log: Logger,
  ) {
    this.#peers = peers;
    this.#caPem = caPem;
    this.#peerKey = peerKey;
    this.#log = log;
  }

  /** Whether this registry takes part (it has a mesh key). */
  get enabled(): boolean {
    return this.#peerKey !== undefined;
  }

  /** Throws unless the request carries this mesh's peer key. */
  checkPeer(authorization: string | undefined): void {
    const want = this.#peerKey === undefined ? undefined : Buffer.from(`Bearer ${this.#peerKey}`);
    const got = Buffer.from(authorization ?? '');
    if (want === undefined || got.length !== want.length || !timingSafeEqual(got, want))
      throw new MeshError(
        'MESH_ERR_UNAUTHENTICATED',
        "only the mesh's other registries may read this registry's samples (with the key derived from mesh.key)",
      );
  }

  /** The samples every other registry of the mesh holds, asked side by side. */
  async fetch(): Promise<PeerFigures> {
    const out: PeerFigures = { samples: [], answered: [], missing: [] };
    if (this.#peerKey === undefined) return out;
    const others = (await this.#peers.list().catch(() => [])).filter((p) => p.id !== this.#peers.self.id);
    await Promise.all(
      others.map(async (p) => {
        try {
          const r = await this.#client(p.url).get<NodeSamples>('/v1/metrics/local', { timeoutMs: PEER_TIMEOUT_MS });
          if (typeof r.body?.nodes !== 'object' || r.body.nodes === null) throw new Error('not a samples answer');
          out.samples.push(r.body);
          out.answered.push(p.url);
        } catch (e) {
          this.#log.debug({ peer: p.url, err: (e as Error).message }, "could not read a peer registry's figures");
          out.missing.push(p.url);
        }
      }),
    );
    // Peers gone from the directory: drop their connections.
    for (const [url, c] of this.#clients)
      if (!others.some((p) => p.url === url)) {
        c.close();
        this.#clients.delete(url);
      }
    out.answered.sort();
    out.missing.sort();
    return out;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  #client(url: string): HttpClient {
    let c = this.#clients.get(url);
    if (!c) {
      c = new HttpClient({ baseUrl: url, ca: this.#caPem, token: this.#peerKey!, timeoutMs: PEER_TIMEOUT_MS });
      this.#clients.set(url, c);
    }
    return c;
  }
}
