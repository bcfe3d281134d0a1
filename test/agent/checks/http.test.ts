import https from 'node:https';
import type net from 'node:net';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpStatusToCheckStatus, OUTPUT_LIMIT, runHttpCheck } from '../../../src/agent/checks/index.js';
import { checkDef, closedPort, startHttpServer, waitFor, type TestServer } from './helpers.js';

let server: TestServer;
// Responses the slow handler has not answered, to end them in afterAll.
const held: Array<() => void> = [];

beforeAll(async () => {
  server = await startHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    switch (path) {
      case '/ok':
        res.end('all good');
        return;
      case '/redirect':
        res.writeHead(302, { location: '/redirect-target' });
        res.end();
        return;
      case '/redirect-target':
        res.writeHead(500);
        res.end('should never be fetched');
        return;
      case '/busy':
        res.writeHead(429, 'Too Many Requests');
        res.end('slow down');
        return;
      case '/error':
        res.writeHead(500);
        res.end('database down');
        return;
      case '/missing':
        res.writeHead(404);
        res.end();
        return;
      case '/big':
        res.end('y'.repeat(100_000));
        return;
      case '/endless-body':
        // Headers now, the body never ends.
        res.writeHead(200);
        res.write('partial');
        held.push(() => res.end());
        return;
      case '/slow':
        held.push(() => res.end('too late'));
        return;
      default:
        res.writeHead(404);
        res.end();
    }
  });
});

afterAll(async () => {
  for (const release of held) release();
  await server.close();
});

const check = (target: string, timeoutMs = 2_000) => checkDef({ kind: 'http', target, timeoutMs });

describe('http check', () => {
  it('maps status codes as Consul does', () => {
    expect(httpStatusToCheckStatus(200)).toBe('passing');
    expect(httpStatusToCheckStatus(204)).toBe('passing');
    expect(httpStatusToCheckStatus(302)).toBe('passing');
    expect(httpStatusToCheckStatus(429)).toBe('warning');
    expect(httpStatusToCheckStatus(404)).toBe('critical');
    expect(httpStatusToCheckStatus(503)).toBe('critical');
  });

  it('is passing on 200, with the status line and body as output', async () => {
    const r = await runHttpCheck(check(`${server.url}/ok`));
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`HTTP GET ${server.url}/ok: 200 OK\nall good`);
  });

  it('is passing on a redirect and does not follow it', async () => {
    const r = await runHttpCheck(check(`${server.url}/redirect`));
    expect(r.status).toBe('passing');
    expect(r.output).toContain('302');
    expect(server.hits('/redirect-target')).toBe(0);
  });

  it('is warning on 429', async () => {
    const r = await runHttpCheck(check(`${server.url}/busy`));
    expect(r).toEqual({ status: 'warning', output: `HTTP GET ${server.url}/busy: 429 Too Many Requests\nslow down` });
  });

  it('is critical on 500 and 404', async () => {
    const r500 = await runHttpCheck(check(`${server.url}/error`));
    expect(r500.status).toBe('critical');
    expect(r500.output).toContain('500 Internal Server Error\ndatabase down');
    expect((await runHttpCheck(check(`${server.url}/missing`))).status).toBe('critical');
  });

  it('truncates a large body to the output limit', async () => {
    const r = await runHttpCheck(check(`${server.url}/big`));
    expect(r.status).toBe('passing');
    expect(Buffer.byteLength(r.output)).toBeLessThanOrEqual(OUTPUT_LIMIT);
    expect(r.output.startsWith(`HTTP GET ${server.url}/big: 200 OK\nyyyy`)).toBe(true);
    expect(r.output).toMatch(/truncated\)$/);
  });

  it('is critical when no response comes within the timeout, and drops the connection', async () => {
    const r = await runHttpCheck(check(`${server.url}/slow`, 200));
    expect(r).toEqual({ status: 'critical', output: `HTTP GET ${server.url}/slow: timed out after 200ms` });
    await waitFor(async () => (await server.connections()) === 0, 'the check to close its socket');
  });

  it('keeps the status when only the body is slow', async () => {
    // Generous timeout: the headers must arrive before it even on a loaded machine.
    const r = await runHttpCheck(check(`${server.url}/endless-body`, 1_000));
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`HTTP GET ${server.url}/endless-body: 200 OK (body cut off after 1000ms)\npartial`);
    await waitFor(async () => (await server.connections()) === 0, 'the check to close its socket');
  });

  it('leaves no connection open after a normal response', async () => {
    for (let i = 0; i < 3; i++) await runHttpCheck(check(`${server.url}/ok`));
    await waitFor(async () => (await server.connections()) === 0, 'the check to close its sockets');
  });

  it('is critical with a clear output when the connection is refused', async () => {
    const port = await closedPort();
    const r = await runHttpCheck(check(`http://127.0.0.1:${port}/health`));
    expect(r.status).toBe('critical');
    expect(r.output).toMatch(new RegExp(`^HTTP GET http://127\\.0\\.0\\.1:${port}/health: connection refused`));
  });

  it('keeps credentials in the URL out of the output', async () => {
    const r = await runHttpCheck(check(`http://user:secret@127.0.0.1:${server.port}/ok`));
    expect(r.status).toBe('passing');
    expect(r.output).not.toContain('secret');
    expect(r.output).toContain(`HTTP GET http://127.0.0.1:${server.port}/ok: 200 OK`);
  });

  it('is critical for a target that is not an http(s) URL', async () => {
    const r = await runHttpCheck(check('ftp://example.com/'));
    expect(r.status).toBe('critical');
    expect(r.output).toContain("invalid HTTP check URL 'ftp://example.com/'");
    const r2 = await runHttpCheck(check('http://127.0.0.1:70000/'));
    expect(r2.output).toContain('port 70000 is out of range');
  });

  it('is critical when cancelled', async () => {
    const ac = new AbortController();
    const before = server.hits('/slow');
    const pending = runHttpCheck(check(`${server.url}/slow`, 10_000), ac.signal);
    await waitFor(() => server.hits('/slow') > before, 'the request to arrive');
    ac.abort();
    expect(await pending).toEqual({ status: 'critical', output: `HTTP GET ${server.url}/slow: check cancelled` });
    await waitFor(async () => (await server.connections()) === 0, 'the check to close its socket');
  });

  describe('over https', () => {
    let tls: https.Server;
    let port = 0;
    beforeAll(async () => {
      const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], { keySize: 2048, algorithm: 'sha256' });
      tls = https.createServer({ key: pems.private, cert: pems.cert }, (_req, res) => res.end('ok'));
      tls.on('tlsClientError', () => {});
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', () => resolve()));
      port = (tls.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      tls.closeAllConnections();
      await new Promise<void>((resolve) => tls.close(() => resolve()));
    });

    it('verifies the certificate: a self-signed server is critical', async () => {
      const r = await runHttpCheck(check(`https://127.0.0.1:${port}/`));
      expect(r.status).toBe('critical');
      expect(r.output).toMatch(/self[- ]signed certificate/i);
    });
  });
});
