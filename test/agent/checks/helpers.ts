/** Real servers and bounded waiting for the health-check tests. */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { checkDefinitionSchema, type CheckDefinition } from '../../../src/api/schemas.js';

/** A check definition with the wire schema's defaults filled in. */
export function checkDef(fields: Partial<CheckDefinition> & Pick<CheckDefinition, 'kind'>): CheckDefinition {
  return checkDefinitionSchema.parse({ id: `test-${fields.kind}`, ...fields });
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs` (a bound, not a timing assertion). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface TestServer {
  url: string;
  port: number;
  /** Requests received, by path. */
  hits: (path: string) => number;
  /** Sockets currently open on the server. */
  connections: () => Promise<number>;
  close: () => Promise<void>;
}

/** An HTTP server on 127.0.0.1 with the given handler; it counts requests per path. */
export async function startHttpServer(handler: http.RequestListener): Promise<TestServer> {
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    handler(req, res);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits: (path) => counts.get(path) ?? 0,
    connections: () =>
      new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (taken and released again). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Whether a process is still running. A killed process whose parent is gone may linger as a
 * zombie until init reaps it; a zombie runs nothing, so it counts as gone.
 */
export function processRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
