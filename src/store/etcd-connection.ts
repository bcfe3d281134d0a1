/**
 * The etcd client the store talks through: endpoints, TLS, per-call deadlines, the
 * require-leader flag, error translation, and which failures may be retried.
 *
 * etcd3's own pool would retry any call three times on a network error; a write whose answer
 * was lost may then be applied twice (a CAS would report a conflict it caused itself), so
 * that policy is switched off here and `EtcdConnection.call` retries reads freely but writes
 * only when they provably never reached a server.
 */
import { readFileSync } from 'node:fs';
import { InterceptingCall, type CallOptions, type Interceptor } from '@grpc/grpc-js';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, noop } from 'cockatiel';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { MeshError } from '../errors/index.js';
import { closedError } from './revisioned-store.js';
import { sleep } from '../util/async.js';

export interface EtcdTlsFiles {
  /** CA that signed the etcd servers' certificates. */
  readonly caFile: string;
  /** Client certificate and key, for etcd run with --client-cert-auth. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface EtcdConnectionOptions {
  /** Client URLs, e.g. http://10.0.0.1:2379 (all http or all https). */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTlsFiles;
  /** Deadline of one call, ms (default 5,000). */
  readonly requestTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const RETRY_BASE_MS = 50;
const RETRY_CAP_MS = 1_000;

/**
 * Asks every etcd member to refuse work while it has no leader (etcd's `hasleader` metadata):
 * a member cut off from the quorum then fails calls and ends watch streams at once instead of
 * serving what it last knew as if it were current.
 */
const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('hasleader', 'true');
      next(metadata, listener);
    },
  });

export type CallKind = 'read' | 'write';

export class EtcdConnection {
  readonly client: Etcd3;
  readonly endpoints: readonly string[];
  readonly #timeoutMs: number;
  readonly #options: IOptions;
  #watchAt: number;
  readonly #watchClients = new Map<number, Etcd3>();
  #closed = false;

  constructor(opts: EtcdConnectionOptions) {
    this.endpoints = checkEndpoints(opts.endpoints);
    this.#timeoutMs = opts.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const secure = this.endpoints[0]?.startsWith('https:') ?? false;
    if (opts.tls && !secure) {
      throw new MeshError('MESH_ERR_CONFIG', 'etcd TLS files are set but the etcd endpoints are http://', {
        hint: 'Use https:// endpoints with --etcd-ca (and --etcd-cert/--etcd-key for client certificates).',
      });
    }
    const options: IOptions = {
      hosts: [...this.endpoints],
      grpcOptions: {
        // A whole revision (e.g. a lease expiry deleting many keys) arrives as one message.
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        // Find a dead TCP connection (host gone, no RST) in seconds, not at the OS timeout.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
      },
      faultHandling: {
        global: noop,
        // A member that failed three calls in a row is skipped for a second, then tried again.
        host: () =>
          circuitBreaker(
            handleWhen((e) => isRecoverableError(e)),
            { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(3) },
          ),
      },
    };
    if (opts.tls) options.credentials = readTls(opts.tls);
    this.client = new Etcd3(options);
    this.#options = options;
    this.#watchAt = Math.floor(Math.random() * this.endpoints.length);
  }

  /**
   * The member every watch of this store streams from, with a client of its own: two watches
   * of one store then see a revision at the same moment, as on the embedded backends. Which
   * member is random per store, so registries spread out; `watchMemberFailed` moves all of
   * this store's watches to the next member.
   */
  watchMember(): { client: Etcd3; index: number } {
    const index = this.#watchAt;
    let client = this.#watchClients.get(index);
    if (!client) {
      client = new Etcd3({ ...this.#options, hosts: [this.endpoints[index] as string] });
      this.#watchClients.set(index, client);
    }
    return { client, index };
  }

  /** A watch stream on member `index` failed: the store's watches move on (once per failure of that member). */
  watchMemberFailed(index: number): void {
    if (index === this.#watchAt) this.#watchAt = (index + 1) % this.endpoints.length;
  }

  /** Options of one unary call: a deadline and the require-leader flag. */
  unary(): CallOptions {
    return { deadline: Date.now() + this.#timeoutMs, interceptors: [requireLeader] };
  }

  /** Options of a long-lived stream (watch, keep-alive): no deadline. */
  stream(): CallOptions {
    return { interceptors: [requireLeader] };
  }

  /**
   * Runs a call, translating errors to MeshErrors. Reads are retried on any transient failure
   * (on another member, with backoff and jitter) until the deadline; writes only when the
   * failure shows the request never left this process or was refused before being proposed.
   */
  async call<T>(kind: CallKind, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#timeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw closedError();
      try {
        return await fn();
      } catch (e) {
        if (this.#closed) throw closedError();
        const retry = kind === 'read' ? isTransient(e) : neverSent(e);
        const delay = Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt);
        if (!retry || Date.now() + delay > deadline) throw toStoreError(e);
        await sleep(delay);
      }
    }
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.client.close();
    for (const c of this.#watchClients.values()) c.close();
  }
}

function checkEndpoints(endpoints: readonly string[]): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw new MeshError('MESH_ERR_CONFIG', 'the etcd store needs at least one endpoint', {
      hint: 'Pass --etcd-endpoints http://HOST:2379[,http://HOST2:2379,...].',
    });
  }
  const out: string[] = [];
  for (const raw of endpoints) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw badEndpoint(raw, 'it is not a URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badEndpoint(raw, 'use http:// or https://');
    if (!url.port) throw badEndpoint(raw, 'give the client port, e.g. :2379');
    if (url.pathname !== '/' || url.search || url.hash || url.username) {
      throw badEndpoint(raw, 'give only scheme, host and port');
    }
    out.push(`${url.protocol}//${url.host}`);
  }
  if (new Set(out.map((u) => u.split(':')[0])).size > 1) {
    throw new MeshError('MESH_ERR_CONFIG', 'etcd endpoints mix http:// and https://', {
      hint: 'Use one scheme for every endpoint.',
    });
  }
  return out;
}

function badEndpoint(raw: string, why: string): MeshError {
  return new MeshError('MESH_ERR_CONFIG', `bad etcd endpoint ${JSON.stringify(raw)}: ${why}`, {
    hint: 'Pass --etcd-endpoints http://HOST:2379[,http://HOST2:2379,...].',
  });
}

function readTls(tls: EtcdTlsFiles): NonNullable<IOptions['credentials']> {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new MeshError('MESH_ERR_CONFIG', 'an etcd client certificate needs both its certificate and its key file', {
      hint: 'Pass both --etcd-cert and --etcd-key, or neither.',
    });
  }
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new MeshError('MESH_ERR_CONFIG', `cannot read the etcd ${what} ${file}: ${(e as Error).message}`, {
        hint: 'Check the path and that the registry user can read it.',
      });
    }
  };
  const creds: NonNullable<IOptions['credentials']> = { rootCertificate: read(tls.caFile, 'CA file') };
  if (tls.certFile !== undefined && tls.keyFile !== undefined) {
    creds.certChain = read(tls.certFile, 'client certificate');
    creds.privateKey = read(tls.keyFile, 'client key');
  }
  return creds;
}

const text = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A failure that says nothing about the data: another member, or the same one later, may answer. */
export function isTransient(e: unknown): boolean {
  if (e instanceof MeshError) return e.code === 'MESH_ERR_STORE_UNAVAILABLE';
  if (isBrokenCircuitError(e)) return true;
  if (isRecoverableError(e as Error)) return true;
  return /no leader|leader changed|request timed out|timed out|unavailable|ECONNREFUSED|ECONNRESET|No connection established|not capable|too many requests/i.test(
    text(e),
  );
}

/** The request provably did not reach a member that could apply it. */
export function neverSent(e: unknown): boolean {
  if (isBrokenCircuitError(e)) return true;
  return /No connection established|ECONNREFUSED|etcdserver: no leader|Failed to connect/i.test(text(e));
}

export function toStoreError(e: unknown): MeshError {
  if (e instanceof MeshError) return e;
  const message = text(e);
  if (/requested lease not found/.test(message)) {
    return new MeshError('MESH_ERR_LEASE_NOT_FOUND', 'lease not found (expired or revoked)', { cause: e });
  }
  if (/required revision has been compacted/.test(message)) {
    return new MeshError('MESH_ERR_STORE_COMPACTED', 'the requested revision is compacted in etcd', { cause: e });
  }
  if (/permission denied|invalid auth token|authentication failed|certificate|handshake/i.test(message)) {
    return new MeshError('MESH_ERR_STORE', `etcd refused the registry: ${message}`, {
      cause: e,
      hint: "Check the registry's etcd TLS files (--etcd-ca, --etcd-cert, --etcd-key) and etcd's client-cert settings.",
    });
  }
  if (isTransient(e)) {
    return new MeshError('MESH_ERR_STORE_UNAVAILABLE', `etcd cannot serve the request now: ${message}`, {
      cause: e,
    });
  }
  return new MeshError('MESH_ERR_STORE', `etcd failed: ${message}`, { cause: e });
}
