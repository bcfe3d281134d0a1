/**
 * Real pieces for the proxy tests: small HTTP / WebSocket / TCP apps on loopback, snapshot
 * builders, an HTTP client, and a cleanup list so every test closes what it opened.
 */
import { createHash } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import {
  connect as netConnect,
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { afterEach } from 'vitest';
import { MeshProxy, type ProxyOptions } from '../../src/proxy/proxy.js';
import type { ProxySnapshotInput, SnapshotPolicy, SnapshotResilience } from '../../src/proxy/snapshot.js';
import type { Leaf, Pki } from './pki.js';

// ---- cleanup ------------------------------------------------------------------------------

const cleanups: Array<() => unknown> = [];

/** Runs `fn` after the current test (last registered first). */
export function defer(fn: () => unknown): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    await fn();
  }
});

export function portOf(server: Server | NetServer): number {
  return (server.address() as AddressInfo).port;
}

function listen<S extends Server | NetServer>(server: S, host = '127.0.0.1'): Promise<S> {
  trackSockets(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

const openSockets = new WeakMap<Server | NetServer, Set<Socket>>();

/** Remembers the server's sockets, so closing it also ends upgraded and half-open ones. */
function trackSockets(server: Server | NetServer): void {
  const set = new Set<Socket>();
  openSockets.set(server, set);
  server.on('connection', (s: Socket) => {
    set.add(s);
    s.once('close', () => set.delete(s));
  });
}

function closeServer(server: Server | NetServer): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of openSockets.get(server) ?? []) s.destroy();
  return done;
}

// ---- apps ---------------------------------------------------------------------------------

export interface HttpApp {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  /** Requests seen, with the headers the app got. */
  readonly seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }>;
  /** WebSocket upgrades accepted, with the target and headers the app got. */
  readonly upgrades: Array<{ url: string; headers: IncomingHttpHeaders }>;
  /** Raw TCP connections the app accepted. */
  connections: number;
  close(): Promise<void>;
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * An HTTP app that answers `{app, url}` as JSON, `/slow` after a delay, `/status/NNN` with
 * that status, and accepts WebSocket upgrades on `/ws` (then echoes the bytes it gets,
 * upper-cased).
 */
export async function startHttpApp(name: string): Promise<HttpApp> {
  const seen: HttpApp['seen'] = [];
  const upgrades: HttpApp['upgrades'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const reply = () => {
        if (res.destroyed) return;
        const text = JSON.stringify({ app: name, url: req.url, body });
        const wanted = /^\/status\/(\d{3})$/.exec(req.url ?? '');
        res.writeHead(wanted ? Number(wanted[1]) : 200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'x-app': name,
        });
        res.end(text);
      };
      if (req.url === '/slow') setTimeout(reply, 300);
      else reply();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('upgrade', (req, socket: Socket) => {
    upgrades.push({ url: req.url ?? '', headers: req.headers });
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nx-app: ${name}\r\n\r\n`,
    );
    socket.on('data', (d: Buffer) => socket.write(d.toString('utf8').toUpperCase()));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.end());
  });
  const app: HttpApp = {
    name,
    port: 0,
    server,
    seen,
    upgrades,
    connections: 0,
    close: () => closeServer(server),
  };
  server.on('connection', () => (app.connections += 1));
  await listen(server);
  (app as { port: number }).port = portOf(server);
  defer(() => app.close());
  return app;
}

/** A TCP app that echoes with a prefix and, when the peer half-closes, sends "bye:<n bytes>" and closes. */
export async function startEchoApp(prefix: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = createNetServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('error', () => s.destroy());
    s.on('data', (d: Buffer) => {
      n += d.length;
      s.write(`${prefix}${d.toString('utf8')}`);
    });
    s.on('end', () => s.end(`bye:${n}`));
  });
  await listen(server);
  const app = { port: portOf(server), close: () => closeServer(server) };
  defer(() => app.close());
  return app;
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = await listen(createNetServer());
  const port = portOf(s);
  await closeServer(s);
  return port;
}

// ---- snapshots ----------------------------------------------------------------------------

export interface UpstreamSpec {
  service: string;
  protocol?: 'http' | 'tcp';
  localPort?: number;
  loadBalancer?: 'round_robin' | 'weighted' | 'least_request' | 'random';
  endpoints: Array<{ id: string; address?: string; port: number; weight?: number; node?: string }>;
  /** Timeouts, retries, limits, ejection (issue 15); absent: the defaults. */
  resilience?: SnapshotResilience;
  /** Traffic policy as the agent compiles it (issue 14); absent: one route to the upstream. */
  policy?: SnapshotPolicy;
}

export interface SnapshotSpec {
  version?: number;
  pki: Pki;
  leaf: Leaf;
  service: string;
  id?: string;
  protocol?: 'http' | 'tcp';
  inboundAddress?: string;
  inboundPort?: number;
  appPort: number;
  defaultIntention?: 'allow' | 'deny';
  intentions?: ProxySnapshotInput['intentions'];
  upstreams?: UpstreamSpec[];
  roots?: string[];
  accessLog?: { enabled: boolean; path?: string };
}

export function snapshot(s: SnapshotSpec): ProxySnapshotInput {
  return {
    version: s.version ?? 1,
    trustDomain: s.pki.trustDomain,
    service: {
      name: s.service,
      id: s.id ?? `${s.service}-1`,
      protocol: s.protocol ?? 'http',
      inbound: { address: s.inboundAddress ?? '127.0.0.1', port: s.inboundPort ?? 0 },
      app: { address: '127.0.0.1', port: s.appPort },
    },
    tls: { certPem: s.leaf.certPem, keyPem: s.leaf.keyPem, rootsPem: s.roots ?? [s.pki.rootPem] },
    defaultIntention: s.defaultIntention ?? 'deny',
    intentions: s.intentions ?? [],
    upstreams: (s.upstreams ?? []).map((u) => ({
      service: u.service,
      protocol: u.protocol ?? 'http',
      localAddress: '127.0.0.1',
      localPort: u.localPort ?? 0,
      loadBalancer: u.loadBalancer ?? 'round_robin',
      endpoints: u.endpoints.map((e, i) => ({
        id: e.id,
        node: e.node ?? `node-${i + 1}`,
        address: e.address ?? '127.0.0.1',
        port: e.port,
        weight: e.weight ?? 1,
      })),
      ...(u.resilience ? { resilience: u.resilience } : {}),
      ...(u.policy ? { policy: u.policy } : {}),
    })),
    ...(s.accessLog ? { accessLog: s.accessLog } : {}),
  };
}

/** A proxy serving `snap`, shut down after the test. */
export async function startProxy(snap: ProxySnapshotInput, opts: ProxyOptions = {}): Promise<MeshProxy> {
  const proxy = new MeshProxy(opts);
  defer(() => proxy.shutdown(0));
  await proxy.apply(snap);
  return proxy;
}

export function inboundPort(p: MeshProxy): number {
  return p.inbound.address()!.port;
}

export function outboundPort(p: MeshProxy, service: string): number {
  return p.outbound.listener(service)!.address()!.port;
}

// ---- clients ------------------------------------------------------------------------------

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A keep-alive client agent, destroyed after the test. */
export function keepAliveAgent(maxSockets = 1): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets });
  defer(() => agent.destroy());
  return agent;
}

export function get(
  port: number,
  path = '/',
  opts: { agent?: Agent | false; method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        agent: opts.agent ?? false,
        headers: opts.headers,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A raw TCP exchange: connect, write, optionally half-close, collect everything until the peer closes. */
export function tcpExchange(port: number, payload: string, opts: { halfClose?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.on('connect', () => {
      s.write(payload);
      if (opts.halfClose) s.end();
    });
    s.on('end', () => s.end());
  });
}

/** Polls `check` until it returns true (bounded); timings never decide a pass. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
