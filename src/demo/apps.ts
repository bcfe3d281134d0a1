/** The demo's sample services: two `api` instances and a `web` that calls `api` through its sidecar. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SampleApp {
  name: string;
  address: string;
  port: number;
  running: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function serve(name: string, address: string, port: number, handler: http.RequestListener): SampleApp {
  let server: http.Server | undefined;
  const app: SampleApp = {
    name,
    address,
    port,
    running: false,
    async start() {
      const s = http.createServer(handler);
      s.keepAliveTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(app.port, address, () => resolve());
      });
      s.on('error', () => undefined);
      app.port = (s.address() as AddressInfo).port;
      server = s;
      app.running = true;
    },
    async stop() {
      const s = server;
      server = undefined;
      app.running = false;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  return app;
}

export function apiApp(instance: string, address: string): SampleApp {
  return serve('api', address, 0, (req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    // A little work, so latency figures are not all zero.
    const body = JSON.stringify({
      service: 'api',
      instance,
      time: new Date().toISOString(),
      traceparent: req.headers.traceparent ?? null,
    });
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(body), 1 + Math.random() * 4);
  });
}

/** `web` answers by calling `api` through its sidecar's outbound listener at `upstream`. */
export function webApp(address: string, upstream: { address: string; port: number }): SampleApp {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  return serve('web', address, 0, (req, res) => {
    if (req.url === '/health') {
      res.writeHead(200).end('ok');
      return;
    }
    const up = http.get(
      {
        host: upstream.address,
        port: upstream.port,
        path: '/',
        agent,
        timeout: 5000,
        headers: req.headers.traceparent ? { traceparent: req.headers.traceparent } : {},
      },
      (r) => {
        let data = '';
        r.on('data', (c: Buffer) => (data += c.toString()));
        r.on('end', () => {
          res.writeHead(r.statusCode ?? 502, {
            'content-type': 'application/json',
            ...(r.headers['x-meshctl-reason'] ? { 'x-meshctl-reason': r.headers['x-meshctl-reason'] } : {}),
          });
          res.end(JSON.stringify({ service: 'web', api: safeJson(data) }));
        });
        r.on('error', () => res.destroy());
      },
    );
    up.on('timeout', () => up.destroy(new Error('timeout')));
    up.on('error', (e) => {
      if (!res.headersSent)
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`web: upstream failed: ${e.message}`);
    });
  });
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}
