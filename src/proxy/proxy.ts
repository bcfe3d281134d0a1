/**
 * The sidecar proxy as a service object: holds the active snapshot and applies newer ones
 * to the inbound and outbound sides. Made without any admin endpoint or signal handling,
 * so tests drive it in-process; runProxy (main.ts) adds those around it.
 *
 * A push is all or nothing: the snapshot is validated, the TLS material is loaded, and any
 * new port is bound before anything serving changes; if a step fails, what was bound is
 * released and the old snapshot stays active.
 */
import { isDeepStrictEqual } from 'node:util';
import type { SecureContext } from 'node:tls';
import type { ProxyMetrics } from '../api/metrics.js';
import { MeshError } from '../errors/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { AccessLog } from './access-log.js';
import { DEFAULT_DRAIN_SECONDS } from './limits.js';
import { LoopDelay } from './loop-delay.js';
import { IdleGc } from './idle-gc.js';
import { Inbound, type InboundLimits } from './inbound/index.js';
import { Outbound, type Random } from './outbound/index.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './outbound/dial.js';
import { RevokedServers } from './outbound/revoked-servers.js';
import { REVOKED_CERTIFICATE } from './revoked.js';
import {
  certTimeProblem,
  parseSnapshot,
  redactSnapshot,
  type ProxySnapshot,
  type RedactedSnapshot,
} from './snapshot.js';
import { buildSecureContext, tlsChanged } from './tls-material.js';

export interface ProxyOptions {
  readonly log?: Logger;
  /** Connect + TLS handshake to an endpoint; default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Idle pooled connection lifetime; default 30 s (shortened by the server's Keep-Alive hint). */
  readonly idleTimeoutMs?: number;
  /** A client must finish the TLS handshake on the mesh port within this; default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** The mesh port's limits (pending handshakes, connections, header timeout); defaults in inbound/listener.ts. */
  readonly inboundLimits?: Partial<InboundLimits>;
  /** How long a listener a push removes may finish its work; default 5 s (LISTENER_DRAIN_MS). */
  readonly drainMs?: number;
  /** Randomness for the balancers (tests seed it). */
  readonly random?: Random;
  /** The app's connections each outbound listener holds at most; default 1,024. */
  readonly maxAppConnections?: number;
}

export type ProxyState = 'waiting-for-snapshot' | 'serving' | 'draining' | 'stopped';

export interface ProxyHealth {
  status: ProxyState;
  pid: number;
  service: string | null;
  serviceId: string | null;
  version: number | null;
  startedAt: string;
  snapshotAppliedAt: string | null;
  inbound: { address: string; port: number } | null;
}

/**
 * How long in-flight work may finish when the proxy stops (SIGTERM, POST /shutdown): long
 * requests are common enough (reports, uploads) that 5 s cut them; Envoy's default drain is
 * 600 s, Kubernetes' grace period 30 s. `proxy run --drain-seconds` and the agent's
 * `drainSeconds` change it.
 */
export const DEFAULT_DRAIN_MS = DEFAULT_DRAIN_SECONDS * 1000;
/** How long a listener a push removes (an upstream gone from the snapshot) may finish its work. */
export const LISTENER_DRAIN_MS = 5_000;

export class MeshProxy {
  readonly startedAt = new Date();
  readonly inbound: Inbound;
  readonly outbound: Outbound;
  readonly accessLog: AccessLog;
  /** Event-loop delay of this process (GET /stats `eventLoop`). */
  readonly loopDelay: LoopDelay;
  /** Collects the old generation while the proxy is idle (./idle-gc.ts). */
  readonly #idleGc: IdleGc;
  readonly #log: Logger;
  #snapshot: ProxySnapshot | undefined;
  #appliedAt: Date | undefined;
  #secureContext: SecureContext | undefined;
  /** Server leaves the outbound refuses (snapshot.revokedSerials), one list for every cluster. */
  readonly #revokedServers = new RevokedServers();
  #stopping = false;
  #stopped = false;
  /** Told to stop and being withdrawn from callers: still serving, but no longer for long. */
  #withdrawing = false;
  #shutdown: Promise<void> | undefined;
  /** Pushes run one at a time, in arrival order. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: ProxyOptions = {}) {
    this.#log = opts.log ?? silentLogger();
    this.accessLog = new AccessLog(this.#log.child({ side: 'access-log' }));
    this.loopDelay = new LoopDelay(this.#log);
    this.#idleGc = new IdleGc();
    this.inbound = new Inbound(this.#log.child({ side: 'inbound' }), this.accessLog, {
      ...opts.inboundLimits,
      ...(opts.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: opts.handshakeTimeoutMs }),
    });
    this.outbound = new Outbound(
      this.#log.child({ side: 'outbound' }),
      {
        connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
        ...(opts.random ? { random: opts.random } : {}),
        ...(opts.maxAppConnections ? { maxAppConnections: opts.maxAppConnections } : {}),
      },
      opts.drainMs ?? LISTENER_DRAIN_MS,
      this.accessLog,
    );
  }

  /** The active snapshot (with the private key), if any. */
  get snapshot(): ProxySnapshot | undefined {
    return this.#snapshot;
  }

  get version(): number | undefined {
    return this.#snapshot?.version;
  }

  redactedSnapshot(): RedactedSnapshot | undefined {
    return this.#snapshot ? redactSnapshot(this.#snapshot) : undefined;
  }

  /**
   * Validates and applies a snapshot; resolves to the active version. Throws
   * MESH_ERR_BAD_REQUEST (invalid), MESH_ERR_CONFLICT (older than the active one, or the same
   * version with other content) or MESH_ERR_UNAVAILABLE (a port cannot be bound, or the
   * proxy is stopping); in every case the previous snapshot stays active.
   */
  apply(input: unknown): Promise<number> {
    const run = this.#queue.then(() => this.#apply(input));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(input: unknown): Promise<number> {
    if (this.#stopping)
      throw new MeshError('MESH_ERR_UNAVAILABLE', 'the proxy is shutting down and takes no new snapshot');
    const next = parseSnapshot(input);
    const cur = this.#snapshot;
    if (cur && next.version < cur.version) {
      throw new MeshError(
        'MESH_ERR_CONFLICT',
        `snapshot version ${next.version} is older than the active version ${cur.version}`,
        {
          hint: 'Push a snapshot with a version at least as high as the active one (GET /health shows it).',
          details: { activeVersion: cur.version },
        },
      );
    }
    if (cur && next.version === cur.version) {
      if (isDeepStrictEqual(next, cur)) return cur.version;
      throw new MeshError(
        'MESH_ERR_CONFLICT',
        `snapshot version ${next.version} is already active with other content`,
        {
          hint: 'Give every changed snapshot a new, higher version.',
          details: { activeVersion: cur.version },
        },
      );
    }

    const rotated = !cur || tlsChanged(cur.tls, next.tls) || cur.trustDomain !== next.trustDomain;
    const secureContext = rotated || !this.#secureContext ? buildSecureContext(next.tls) : this.#secureContext;
    const clientTls = { secureContext, trustDomain: next.trustDomain, revoked: this.#revokedServers };

    const inbound = await this.inbound.prepare(next);
    let outbound;
    try {
      outbound = await this.outbound.prepare(next, clientTls, rotated && cur !== undefined);
    } catch (e) {
      await inbound.rollback();
      throw e;
    }
    inbound.commit();
    outbound.commit();
    const cut = this.#revokedServers.update(next.revokedSerials);
    if (cut > 0)
      this.#log.warn(
        { connections: cut, reason: REVOKED_CERTIFICATE },
        'outbound connections closed: server certificate revoked',
      );
    this.accessLog.configure(next.accessLog);
    this.#snapshot = next;
    this.#secureContext = secureContext;
    this.#appliedAt = new Date();

    const problem = certTimeProblem(next);
    if (problem)
      this.#log.warn(
        { version: next.version, problem },
        "the snapshot's certificate is outside its validity; peers will refuse it until a fresh one is pushed",
      );
    this.#log.info(
      {
        version: next.version,
        previous: cur?.version ?? null,
        rotated: rotated && cur !== undefined,
        upstreams: next.upstreams.length,
      },
      'snapshot applied',
    );
    return next.version;
  }

  get state(): ProxyState {
    if (this.#stopped) return 'stopped';
    if (this.#stopping || this.#withdrawing) return 'draining';
    return this.#snapshot ? 'serving' : 'waiting-for-snapshot';
  }

  health(): ProxyHealth {
    const s = this.#snapshot;
    const a = this.inbound.address();
    return {
      status: this.state,
      pid: process.pid,
      service: s?.service.name ?? null,
      serviceId: s?.service.id ?? null,
      version: s?.version ?? null,
      startedAt: this.startedAt.toISOString(),
      snapshotAppliedAt: this.#appliedAt?.toISOString() ?? null,
      inbound: a ? { address: a.address, port: a.port } : null,
    };
  }

  stats(): Record<string, unknown> {
    const s = this.#snapshot;
    const a = this.inbound.address();
    const ib = this.inbound;
    return {
      service: s?.service.name ?? null,
      serviceId: s?.service.id ?? null,
      version: s?.version ?? null,
      eventLoop: this.loopDelay.toJSON(),
      inbound: {
        listener: a ? { address: a.address, port: a.port } : null,
        /** `pipe`: allowed connections are byte pipes to the app; `http`: each request is parsed (inbound/mode.ts). */
        mode: ib.mode,
        openByMode: ib.connectionsByMode(),
        connections: ib.connections.connections(),
        bytes: ib.connections.bytes(),
        refusals: ib.refusals.toJSON(),
        revoked: ib.revoked.toJSON(),
        errors: ib.errors.toJSON(),
        permissionDenials: ib.denials.toJSON(),
        requests: ib.traffic.requests,
        responses: ib.traffic.allResponses(),
        localResponses: { requests: ib.localResponses.requests, responses: ib.localResponses.responses() },
      },
      upstreams: this.outbound.toJSON(),
    };
  }

  /**
   * The figures the agent gathers (`GET /metrics`), in the contract's shape
   * (src/api/metrics.ts); undefined before the first snapshot.
   */
  metrics(): Omit<ProxyMetrics, 'node'> | undefined {
    const s = this.#snapshot;
    if (!s) return undefined;
    const ib = this.inbound;
    return {
      service: s.service.name,
      serviceId: s.service.id,
      inbound: { ...ib.traffic.toMetrics(), tlsFailures: ib.tlsFailures.toJSON() },
      upstreams: this.outbound.metrics(),
    };
  }

  /**
   * Told to stop, before the drain: health says `draining` (so an agent that missed the notice
   * still withdraws the instance) while everything keeps serving as before.
   */
  markDraining(): void {
    this.#withdrawing = true;
  }

  /**
   * Graceful stop: no new snapshot, listeners stop accepting, work in progress gets up to
   * `drainMs`, then everything left is closed. Safe to call more than once.
   */
  shutdown(drainMs: number = DEFAULT_DRAIN_MS): Promise<void> {
    this.#stopping = true;
    this.#shutdown ??= this.#drainAndStop(drainMs);
    return this.#shutdown;
  }

  async #drainAndStop(drainMs: number): Promise<void> {
    await this.#queue;
    this.#log.info({ drainMs }, 'proxy draining');
    await Promise.all([this.inbound.close(drainMs), this.outbound.close(drainMs)]);
    await this.accessLog.close();
    this.loopDelay.close();
    this.#idleGc.close();
    this.#stopped = true;
    this.#log.info('proxy stopped');
  }
}
