/**
 * Lease keep-alives over one shared etcd LeaseKeepAlive stream: a registry refreshes
 * thousands of node leases, and one stream carries them all. etcd answers each request on a
 * stream in order, with the lease's TTL (0 when the lease is gone).
 */
import type { ILeaseKeepAliveResponse } from 'etcd3';
import { MeshError } from '../errors/index.js';
import type { EtcdConnection } from './etcd-connection.js';

type KeepAliveStream = Awaited<ReturnType<EtcdConnection['client']['leaseClient']['leaseKeepAlive']>>;

interface Pending {
  readonly id: string;
  resolve(ttl: number): void;
  reject(err: Error): void;
}

const TIMEOUT_MS = 5_000;

export class KeepAliveChannel {
  #current: { stream: KeepAliveStream; pending: Pending[] } | undefined;
  #opening: Promise<{ stream: KeepAliveStream; pending: Pending[] }> | undefined;
  #closed = false;

  readonly #conn: EtcdConnection;

  constructor(conn: EtcdConnection) {
    this.#conn = conn;
  }

  /** Refreshes the lease once; resolves with its TTL in seconds (0: not found). */
  async once(id: number): Promise<number> {
    const ch = await this.#open();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#reset(ch, unavailable('etcd did not answer a lease keep-alive in time'));
      }, TIMEOUT_MS);
      ch.pending.push({
        id: String(id),
        resolve: (ttl) => {
          clearTimeout(timer);
          resolve(ttl);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      ch.stream.write({ ID: id });
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#current) this.#reset(this.#current, unavailable('the store is closed'));
  }

  #open(): Promise<{ stream: KeepAliveStream; pending: Pending[] }> {
    if (this.#closed) return Promise.reject(unavailable('the store is closed'));
    if (this.#current) return Promise.resolve(this.#current);
    this.#opening ??= this.#conn.client.leaseClient
      .leaseKeepAlive(this.#conn.stream())
      .then((stream) => {
        const ch = { stream, pending: [] as Pending[] };
        stream.on('data', (res: ILeaseKeepAliveResponse) => {
          const i = ch.pending.findIndex((p) => p.id === String(res.ID));
          const [p] = i < 0 ? [] : ch.pending.splice(i, 1);
          p?.resolve(Number(res.TTL));
        });
        stream.on('error', (e: Error) => this.#reset(ch, unavailable(e.message)));
        stream.on('end', () => this.#reset(ch, unavailable('etcd ended the keep-alive stream')));
        if (this.#closed) this.#reset(ch, unavailable('the store is closed'));
        else this.#current = ch;
        return ch;
      })
      .finally(() => {
        this.#opening = undefined;
      });
    return this.#opening;
  }

  /** Drops a stream and fails what waits on it; callers retry on a fresh stream. */
  #reset(ch: { stream: KeepAliveStream; pending: Pending[] }, err: MeshError): void {
    if (this.#current === ch) this.#current = undefined;
    const waiting = ch.pending.splice(0);
    for (const p of waiting) p.reject(err);
    ch.stream.on('error', () => {});
    ch.stream.cancel();
  }
}

function unavailable(message: string): MeshError {
  return new MeshError('MESH_ERR_STORE_UNAVAILABLE', message);
}
