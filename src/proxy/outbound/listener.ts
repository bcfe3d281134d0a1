/**
 * One outbound listener: plain TCP on the upstream's local address and port, where the app
 * connects as if the upstream were local. Each accepted connection goes to the L4 pipe or
 * the L7 forwarder, whichever the upstream's protocol is at that moment, so a push that
 * changes the protocol or the endpoints never needs to rebind the port.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { MeshError } from '../../errors/index.js';
import { sleep } from '../../util/async.js';
import type { Logger } from '../../util/log.js';
import type { ThrottledLog } from '../log-throttle.js';
import type { SnapshotUpstream } from '../snapshot.js';
import type { ResilienceCounters, UpstreamMetrics } from '../../api/metrics.js';
import { ConnectionCounter, ReasonCounter } from '../stats.js';
import { Traffic } from '../traffic.js';
import { Cluster, type ClientTls, type ClusterSettings } from './cluster.js';
import type { OutboundContext } from './context.js';
import { HttpForwarder } from './http/forwarder.js';
import { UpstreamPolicy } from './http/policy.js';
import { forwardTcp } from './tcp.js';

/**
 * The app's connections one listener holds at most (Envoy's default connection limit): slow or
 * stuck clients cannot take a sidecar's file descriptors, and the header timeout cuts a slow
 * client's connection anyway.
 */
export const DEFAULT_MAX_APP_CONNECTIONS = 1024;

/** Listeners are matched across snapshots by where they listen (port 0: by upstream, tests only). */
export function listenKey(u: SnapshotUpstream): string {
  return u.localPort === 0 ? `any-port:${u.service}` : `${u.localAddress}:${u.localPort}`;
}

export class OutboundListener {
  readonly #server: Server;
  readonly #settings: ClusterSettings;
  readonly #log: ThrottledLog;
  readonly #ctx: OutboundContext;
  cluster: Cluster;
  /** The upstream's traffic policy (routes, splits, subsets), when its snapshot has one (L7 only). */
  #policy: UpstreamPolicy | undefined;
  #http: HttpForwarder | undefined;
  #draining = false;
  /** The app's connections to this listener. */
  readonly connections = new ConnectionCounter();
  /** The mesh's own failures answered to the app, by full reason (for `GET /stats`). */
  readonly errors = new ReasonCounter();
  /** The upstream's figures; they outlive a cluster replaced by a push. */
  readonly traffic = new Traffic(this.connections);

  private constructor(
    server: Server,
    cluster: Cluster,
    settings: ClusterSettings,
    log: ThrottledLog,
    ctx: OutboundContext,
  ) {
    this.#server = server;
    this.cluster = cluster;
    this.#settings = settings;
    this.#log = log;
    this.#ctx = ctx;
    server.on('connection', this.#onConnection);
  }

  /** The policy, made, updated or dropped as the snapshot says. */
  #takePolicy(u: SnapshotUpstream, tls: ClientTls, tlsRotated: boolean): void {
    if (u.policy !== undefined && u.protocol === 'http') {
      if (this.#policy === undefined) this.#policy = new UpstreamPolicy(u, tls, this.#settings);
      else this.#policy.update(u, tls, tlsRotated);
    } else if (this.#policy !== undefined) {
      this.#policy.close();
      this.#policy = undefined;
    }
    if (this.#http) {
      this.#http.cluster = this.cluster;
      this.#http.policyRoutes = this.#policy?.table;
    }
  }

  /** Binds the listener; throws MESH_ERR_UNAVAILABLE when the port cannot be had. */
  static async open(
    u: SnapshotUpstream,
    tls: ClientTls,
    settings: ClusterSettings,
    log: ThrottledLog,
    errorLog: Logger,
    ctx: OutboundContext,
  ): Promise<OutboundListener> {
    const server = createServer({ allowHalfOpen: true });
    // Past it, Node closes a new connection as it is accepted.
    server.maxConnections = settings.maxAppConnections ?? DEFAULT_MAX_APP_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        reject(
          new MeshError(
            'MESH_ERR_UNAVAILABLE',
            `upstream "${u.service}": cannot listen on ${u.localAddress}:${u.localPort}: ${e.code ?? e.message}`,
            {
              hint:
                e.code === 'EADDRINUSE'
                  ? 'Another process holds the port; give the upstream another local port.'
                  : 'Check the upstream local address.',
            },
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host: u.localAddress, port: u.localPort }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (e) => errorLog.error({ err: e, upstream: u.service }, 'outbound listener error'));
    const l = new OutboundListener(server, new Cluster(u, tls, settings), settings, log, ctx);
    l.#takePolicy(u, tls, false);
    return l;
  }

  address(): AddressInfo | undefined {
    const a = this.#server.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /** A newer snapshot for this listener: same service and protocol update in place, otherwise a new cluster. */
  update(u: SnapshotUpstream, tls: ClientTls, tlsRotated: boolean): void {
    if (u.service === this.cluster.service && u.protocol === this.cluster.protocol) {
      this.cluster.update(u, tls, tlsRotated);
    } else {
      const old = this.cluster;
      this.cluster = new Cluster(u, tls, this.#settings);
      old.close();
    }
    this.#takePolicy(u, tls, tlsRotated);
  }

  readonly #onConnection = (socket: Socket): void => {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.connections.track(socket);
    const cluster = this.cluster;
    if (cluster.protocol === 'tcp') {
      forwardTcp(socket, cluster, this.traffic, this.errors, this.#log, this.#ctx);
      return;
    }
    if (this.#http === undefined) {
      this.#http = new HttpForwarder(cluster, this.traffic, this.errors, this.#log, this.#ctx);
      this.#http.policyRoutes = this.#policy?.table;
    }
    this.#http.cluster = cluster;
    this.#http.handle(socket);
  };

  toJSON(): Record<string, unknown> {
    const a = this.address();
    return {
      listener: a ? { address: a.address, port: a.port } : null,
      ...this.cluster.toJSON(),
      ...(this.#policy ? { policy: this.#policy.toJSON() } : {}),
      connections: this.connections.connections(),
      bytes: this.connections.bytes(),
      requests: this.traffic.requests,
      responses: this.traffic.allResponses(),
      errors: this.errors.toJSON(),
      ...(this.#http ? { resilience: this.#resilience(this.#http) } : {}),
    };
  }

  /**
   * The contract's figures for this upstream. Bytes read the way the contract names them for
   * an upstream: out = towards the upstream, in = back from it — so the upstream total (the
   * app's sockets, where the proxy reads requests) is flipped, the endpoints (mesh sockets,
   * where it sends them) are not.
   */
  metrics(): UpstreamMetrics {
    const own = this.cluster.endpoints.map((e) => ({ endpoint: e.id, node: e.node, ...e.traffic.toMetrics() }));
    const policy = this.#policy;
    const resilience = this.#http ? { resilience: this.#resilience(this.#http) } : {};
    if (policy === undefined)
      return { service: this.cluster.service, ...this.traffic.toMetrics(true), endpoints: own, ...resilience };
    // Under a traffic policy requests go to the targets' clusters: their endpoints, each row
    // with its target, and one row per target. Upgrades take the routes too, so the upstream's
    // own cluster carries nothing then unless it did before the policy: its rows count only
    // when they saw any.
    const targets = [...policy.targets()];
    return {
      service: this.cluster.service,
      ...this.traffic.toMetrics(true),
      endpoints: [
        ...own.filter((e) => e.requests > 0 || e.totalConnections > 0),
        ...targets.flatMap((t) =>
          t.cluster.endpoints.map((e) => ({ endpoint: e.id, node: e.node, subset: t.name, ...e.traffic.toMetrics() })),
        ),
      ],
      subsets: targets.map((t) => ({ subset: t.name, ...t.traffic.toMetrics() })),
      ...resilience,
    };
  }

  /** The upstream's own cluster and, under a traffic policy, its targets' (each has a breaker and an outlier detector). */
  #clusters(): Cluster[] {
    return this.#policy ? [this.cluster, ...[...this.#policy.targets()].map((t) => t.cluster)] : [this.cluster];
  }

  #resilience(http: HttpForwarder): ResilienceCounters {
    const circuitOpen: Record<string, number> = {};
    let ejections = 0;
    let ejected = 0;
    for (const c of this.#clusters()) {
      for (const [limit, n] of Object.entries(c.breaker.overflows)) circuitOpen[limit] = (circuitOpen[limit] ?? 0) + n;
      ejections += c.outlier.total;
      ejected += c.outlier.ejectedCount;
    }
    return { ...http.figures.toJSON(), circuitOpen, ejections, ejected };
  }

  /**
   * Stops accepting, lets requests and connections in progress finish for up to `drainMs`
   * (idle keep-alive connections are closed at once, busy ones after their response), then
   * cuts what is left and drops the pools.
   */
  async close(drainMs: number): Promise<void> {
    this.#draining = true;
    if (this.#http) this.#http.draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const deadline = Date.now() + drainMs;
    while (this.connections.active > 0 && Date.now() < deadline) {
      this.#http?.closeIdle();
      await sleep(50, { unref: true });
    }
    this.#http?.closeAll();
    for (const s of this.connections.open) s.destroy();
    this.cluster.close();
    this.cluster.destroy();
    this.#policy?.close();
    this.#policy?.destroy();
    await closed;
  }
}
