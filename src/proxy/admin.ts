/**
 * The proxy's admin endpoint: HTTP on a unix socket (mode 0600), for the agent that launched
 * the proxy — or a restarted agent adopting it.
 *
 *   PUT  /snapshot   JSON snapshot → 200 {version}; 400 invalid, 409 older version (the old one stays)
 *   GET  /snapshot   the active snapshot without the private key; 404 before the first one
 *   GET  /stats      counters per inbound and per upstream / endpoint (for people)
 *   GET  /metrics    the metrics contract (src/api/metrics.ts) the agent gathers; 404 before the first snapshot
 *   GET  /health     status, pid, service id, snapshot version, start time
 *   POST /shutdown   {drainSeconds?, withdrawn?} → 202; tell the agent (unless withdrawn: it knows), stop accepting, drain, exit
 *
 * Errors are the mesh's error JSON ({code, message, hint}) with the code's HTTP status.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { MeshError, toMeshError } from '../errors/index.js';
import type { Logger } from '../util/log.js';
import { MAX_DRAIN_SECONDS } from './limits.js';
import type { MeshProxy } from './proxy.js';

export { MAX_DRAIN_SECONDS };

/** Snapshots carry certificates and up to 64 upstreams × 1024 endpoints; 8 MiB is ample. */
export const MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024;

export interface AdminOptions {
  readonly log: Logger;
  /** Called after POST /shutdown has been answered; `withdrawn`: the caller (the agent) withdrew the instance already. */
  readonly onShutdown: (drainMs: number, withdrawn: boolean) => void;
  readonly defaultDrainMs: number;
}

export interface AdminServer {
  readonly path: string;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: unknown): void {
  const err = toMeshError(e);
  sendJson(res, err.httpStatus, { error: err.toJSON() });
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new MeshError('MESH_ERR_BODY_TOO_LARGE', `the body is ${declared} bytes; at most ${limit} are accepted`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new MeshError('MESH_ERR_BODY_TOO_LARGE', `the body is over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MeshError(
      'MESH_ERR_BAD_REQUEST',
      `${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function shutdownOf(body: unknown, fallbackMs: number): { drainMs: number; withdrawn: boolean } {
  if (body === undefined || body === null) return { drainMs: fallbackMs, withdrawn: false };
  const { drainSeconds: d, withdrawn: w } = body as { drainSeconds?: unknown; withdrawn?: unknown };
  if (
    typeof body !== 'object' ||
    Array.isArray(body) ||
    Object.keys(body).some((k) => k !== 'drainSeconds' && k !== 'withdrawn')
  ) {
    throw new MeshError(
      'MESH_ERR_BAD_REQUEST',
      'the shutdown body may only hold {"drainSeconds": N, "withdrawn": true|false}',
    );
  }
  if (w !== undefined && typeof w !== 'boolean')
    throw new MeshError('MESH_ERR_BAD_REQUEST', 'withdrawn must be true or false');
  if (d === undefined) return { drainMs: fallbackMs, withdrawn: w === true };
  if (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > MAX_DRAIN_SECONDS) {
    throw new MeshError('MESH_ERR_BAD_REQUEST', `drainSeconds must be a number from 0 to ${MAX_DRAIN_SECONDS}`);
  }
  return { drainMs: Math.round(d * 1000), withdrawn: w === true };
}

/** The request router, without the socket: tests may also drive it through any http.Server. */
export function adminHandler(
  proxy: MeshProxy,
  opts: AdminOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  let shuttingDown = false;
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    switch (`${method} ${path}`) {
      case 'PUT /snapshot': {
        const body = parseJson(await readBody(req, MAX_SNAPSHOT_BYTES), 'the snapshot');
        const version = await proxy.apply(body);
        sendJson(res, 200, { version });
        return;
      }
      case 'GET /snapshot': {
        const s = proxy.redactedSnapshot();
        if (!s)
          throw new MeshError('MESH_ERR_NOT_FOUND', 'no snapshot yet', {
            hint: 'PUT /snapshot first (the agent does this when it starts the proxy).',
          });
        sendJson(res, 200, s);
        return;
      }
      case 'GET /stats':
        sendJson(res, 200, proxy.stats());
        return;
      case 'GET /metrics': {
        const m = proxy.metrics();
        if (!m)
          throw new MeshError('MESH_ERR_NOT_FOUND', 'no snapshot yet, so no figures', {
            hint: 'PUT /snapshot first (the agent does this when it starts the proxy).',
          });
        sendJson(res, 200, m);
        return;
      }
      case 'GET /health':
        sendJson(res, 200, proxy.health());
        return;
      case 'POST /shutdown': {
        const text = await readBody(req, 4096);
        const { drainMs, withdrawn } = shutdownOf(
          text.trim() === '' ? undefined : parseJson(text, 'the shutdown body'),
          opts.defaultDrainMs,
        );
        sendJson(res, 202, { status: 'draining', drainMs });
        if (!shuttingDown) {
          shuttingDown = true;
          res.once('finish', () => opts.onShutdown(drainMs, withdrawn));
        }
        return;
      }
      default: {
        const known = ['/snapshot', '/stats', '/metrics', '/health', '/shutdown'].includes(path ?? '');
        throw new MeshError(
          known ? 'MESH_ERR_USAGE' : 'MESH_ERR_NOT_FOUND',
          known ? `${method} is not allowed on ${path}` : `no admin endpoint ${path}`,
          {
            hint: 'Endpoints: PUT/GET /snapshot, GET /stats, GET /metrics, GET /health, POST /shutdown.',
          },
        );
      }
    }
  };
  return (req, res) => {
    route(req, res).catch((e: unknown) => {
      if (!(e instanceof MeshError)) opts.log.error({ err: e }, 'admin request failed');
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    });
  };
}

/**
 * Removes a leftover socket file of a proxy that is gone; refuses when a live proxy still
 * answers on it, or when the path is not a socket (we never delete someone's file).
 */
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new MeshError('MESH_ERR_CONFIG', `the admin socket path ${path} exists and is not a socket`, {
      hint: 'Choose another --admin-socket path or remove that file.',
    });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) {
    throw new MeshError('MESH_ERR_UNAVAILABLE', `another process is serving the admin socket ${path}`, {
      hint: 'A proxy for this service is already running: adopt it through its admin socket, or stop it (POST /shutdown) first.',
    });
  }
  await unlink(path);
}

export async function startAdmin(proxy: MeshProxy, path: string, opts: AdminOptions): Promise<AdminServer> {
  await clearStaleSocket(path);
  const server: Server = createServer(adminHandler(proxy, opts));
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(
        new MeshError('MESH_ERR_UNAVAILABLE', `cannot listen on the admin socket ${path}: ${e.code ?? e.message}`, {
          hint: 'Check that the directory exists and is writable by this user.',
        }),
      );
    server.once('error', onError);
    // The socket file is made by bind(); a tight umask means it never exists with looser permissions.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  await chmod(path, 0o600);
  server.on('error', (e) => opts.log.error({ err: e }, 'admin socket error'));
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => unlink(path).catch(() => undefined)),
  };
}
