/**
 * The L7 outbound forwarder through a real pair (web sidecar → api sidecar → app, mTLS, in
 * this process): the HTTP cases the forwarder must keep working — streamed bodies with bounded
 * memory, chunked, 100-continue, HEAD/204/304, a response cut half-way, parser limits and slow
 * clients, the listener's connection bound. Loopback block 127.0.10.0/24 (test/helpers/hosts.ts).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { connect as netConnect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CLI } from '../../../helpers/cli.js';
import { HOSTS, L7OUT_PORTS } from '../../../helpers/hosts.js';
import type { MeshProxy } from '../../../../src/proxy/proxy.js';
import { defer, outboundPort, startProxy, waitFor } from '../../harness.js';
import { startStreamApp } from '../../stream-app.js';
import { webApiFixture } from '../../web-api.js';

const [HOST_A, HOST_B] = HOSTS.l7out;
const WEB_PORT = L7OUT_PORTS.forwarderMemory;

const { apiInstance, webSnapshot } = webApiFixture();

const MB = 1024 * 1024;

/**
 * An app for the streaming cases: PUT /sink counts the body and answers the count; GET
 * /source?mb=N streams N MiB in 64 KiB chunks with backpressure; /cut sends half a body then
 * resets; /status/N answers N; /echo answers the body back chunked.
 */
/** The stream app (../../stream-app.ts) with the forwarder's other cases. */
function startForwarderApp(): Promise<number> {
  return startStreamApp((req, res, url) => {
    if (url.pathname === '/cut') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(500), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) {
      const code = Number(status[1]);
      res.writeHead(code, code === 304 ? { etag: '"v1"' } : {});
      res.end();
      return;
    }
    if (url.pathname === '/echo') {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'x-te': String(req.headers['transfer-encoding']) });
        for (const p of parts) res.write(p);
        res.end();
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
    res.end('hello');
  });
}

async function pair(opts: { log?: pino.Logger; maxAppConnections?: number } = {}) {
  const appPort = await startForwarderApp();
  const a = await apiInstance('api-1', HOST_A, { appPort });
  const web = await startProxy(webSnapshot({ service: 'api', endpoints: [a.endpoint] }), {
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.maxAppConnections ? { maxAppConnections: opts.maxAppConnections } : {}),
  });
  return { web, api: a.proxy, port: outboundPort(web, 'api') };
}

/** VmRSS of a process, in MB. */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** A request whose response is read and dropped; resolves with status, headers and byte count. */
function send(
  port: number,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: (req: ClientRequest) => void;
  },
  host = '127.0.0.1',
): Promise<{ status: number; headers: IncomingMessage['headers']; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, path: opts.path, method: opts.method ?? 'GET', agent: false, headers: opts.headers },
      (res) => {
        let bytes = 0;
        let text = '';
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (text.length < 4096) text += c.toString('utf8');
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body) opts.body(req);
    else req.end();
  });
}

describe('L7 outbound forwarder: bodies', () => {
  it('streams a 50 MB upload and a 50 MB download through the pair; the web sidecar as its own process', async () => {
    const appPort = await startForwarderApp();
    const a = await apiInstance('api-1', HOST_A, { appPort });
    const snap = webSnapshot({ service: 'api', endpoints: [a.endpoint] });
    snap.upstreams[0] = { ...snap.upstreams[0]!, localAddress: HOST_B, localPort: WEB_PORT };
    const dir = await mkdtemp(join(tmpdir(), 'l7out-mem-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'snapshot.json');
    await writeFile(file, JSON.stringify(snap));
    const proc = execa(
      process.execPath,
      [CLI, 'proxy', 'run', '--admin-socket', join(dir, 'admin.sock'), '--snapshot', file, '--drain-seconds', '0'],
      { env: { MESHCTL_LOG_LEVEL: 'warn' }, reject: false, stdin: 'ignore', all: true },
    );
    defer(async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await proc;
      }
    });
    const pid = proc.pid!;
    const port = WEB_PORT;
    const through = (path: string) => send(port, { path }, HOST_B);
    await waitFor(
      async () => (await through('/').catch(() => undefined))?.status === 200,
      'the web sidecar serving',
      20_000,
    ).catch(async (e: unknown) => {
      proc.kill('SIGKILL');
      throw new Error(`${String(e)}: ${String((await proc).all)}`);
    });
    // Warm up: pool, TLS, JIT and the buffers of every piece in place before the baseline.
    await through('/source?mb=2');
    const before = rssOf(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
    defer(() => clearInterval(sampler));

    const up = await send(
      port,
      {
        method: 'PUT',
        path: '/sink',
        body: (req) => {
          const chunk = Buffer.alloc(64 * 1024, 0x62);
          let left = 50 * MB;
          const pump = (): void => {
            while (left > 0) {
              left -= chunk.length;
              if (!req.write(chunk)) {
                req.once('drain', pump);
                return;
              }
            }
            req.end();
          };
          pump();
        },
      },
      HOST_B,
    );
    expect(up.status).toBe(200);
    expect(up.text).toBe(String(50 * MB));

    const down = await through('/source?mb=50');
    expect(down.status).toBe(200);
    expect(down.bytes).toBe(50 * MB);
    clearInterval(sampler);
    peak = Math.max(peak, rssOf(pid));
    // The sidecar's growth is reported here; test/proxy/body-memory.test.ts asserts issue 13's
    // < 20 MB bar with both sidecars as processes. What is asserted here is that both bodies
    // stream through whole.
    console.info(`web sidecar RSS: ${before.toFixed(1)} MB before, peak +${(peak - before).toFixed(1)} MB`);
  });

  it('chunked bodies both ways', async () => {
    const { port } = await pair();
    const r = await send(port, {
      method: 'POST',
      path: '/echo',
      body: (req) => {
        req.write('one,');
        setTimeout(() => req.end('two'), 20);
      },
    });
    expect(r.status).toBe(200);
    expect(r.text).toBe('one,two');
    expect(r.headers['x-te']).toBe('chunked'); // the app got a chunked body
    expect(r.headers['transfer-encoding']).toBe('chunked');
  });

  it('Expect: 100-continue: the app gets its 100, sends the body, and the answer comes back', async () => {
    const { port } = await pair();
    const got = await new Promise<{ continued: boolean; status: number; text: string }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        path: '/sink',
        method: 'PUT',
        agent: false,
        headers: { expect: '100-continue', 'content-length': '6' },
      });
      req.on('continue', () => {
        continued = true;
        req.end('abcdef');
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(got).toEqual({ continued: true, status: 200, text: '6' });
  });

  it('HEAD, 204 and 304 carry no body, and the connection stays usable', async () => {
    const { port } = await pair();
    const head = await send(port, { method: 'HEAD', path: '/' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('5');
    expect(head.bytes).toBe(0);
    for (const code of [204, 304]) {
      const r = await send(port, { path: `/status/${code}` });
      expect(r.status).toBe(code);
      expect(r.bytes).toBe(0);
    }
    expect((await send(port, { path: '/' })).text).toBe('hello');
  });

  it('a response the endpoint cuts half-way is cut for the app too, never passed off as whole', async () => {
    const { port } = await pair();
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/cut', agent: false }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(`complete after ${n}`));
        res.on('aborted', () => resolve('aborted'));
        res.on('error', () => resolve('aborted'));
      });
      req.on('error', () => resolve('aborted'));
      req.end();
    });
    expect(outcome).toBe('aborted');
  });
});

describe('L7 outbound forwarder: limits', () => {
  it('a 100 KB header block gets 431 with the reason and a log line, not a hang', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const { port } = await pair({ log });
    const raw = await new Promise<string>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('error', () => resolve(got));
      s.on('close', () => resolve(got));
      s.write(`GET / HTTP/1.1\r\nhost: api\r\nx-big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 431 /);
    expect(raw).toMatch(/x-meshctl-reason: request-head-too-large/);
    await waitFor(() => lines.some((l) => l.reason === 'request-head-too-large'), 'the log line');
    expect(lines.find((l) => l.reason === 'request-head-too-large')).toMatchObject({
      upstream: 'api',
      msg: 'outbound: refused a request from the app',
    });
  });

  it('a slow client (one header byte a second) is cut off by the header timeout (≤ 10 s) with 408', async () => {
    const { port } = await pair();
    const head = `GET / HTTP/1.1\r\nhost: api\r\nx-slow: ${'s'.repeat(60)}\r\n\r\n`;
    const got = await new Promise<{ answer: string; bytesSent: number }>((resolve) => {
      const s: Socket = netConnect({ host: '127.0.0.1', port });
      let answer = '';
      let i = 0;
      const drip = setInterval(() => {
        if (!s.destroyed && i < head.length) s.write(head[i++]!);
      }, 1000);
      defer(() => clearInterval(drip));
      s.on('data', (d: Buffer) => (answer += d.toString()));
      const done = () => {
        clearInterval(drip);
        resolve({ answer, bytesSent: i });
      };
      s.on('error', done);
      s.on('close', done);
    });
    expect(got.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(got.answer).toMatch(/x-meshctl-reason: request-header-timeout/);
    // Cut well before the head was complete: the timeout, not the client, ended it.
    expect(got.bytesSent).toBeLessThan(head.length);
  }, 30_000);

  it("bounds the app's connections per listener: past the limit new ones are closed at once", async () => {
    const { web, port } = await pair({ maxAppConnections: 4 });
    const open: Socket[] = [];
    const closed: number[] = [];
    for (let i = 0; i < 6; i++) {
      const s = netConnect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('close', () => closed.push(i));
      defer(() => s.destroy());
      open.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    await waitFor(() => closed.length >= 2, 'the extra connections closed');
    expect(closed.sort()).toEqual([4, 5]);
    const stats = (web as MeshProxy).stats() as { upstreams: { api: { connections: { active: number } } } };
    expect(stats.upstreams.api.connections.active).toBe(4);
  });
});
