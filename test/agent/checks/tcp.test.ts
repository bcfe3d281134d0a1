import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTcpCheck } from '../../../src/agent/checks/index.js';
import { checkDef, closedPort, waitFor } from './helpers.js';

const check = (target: string) => checkDef({ kind: 'tcp', target, timeoutMs: 2_000 });

function listen(host: string): Promise<{ server: net.Server; port: number; open: () => number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () =>
      resolve({ server, port: (server.address() as net.AddressInfo).port, open: () => sockets.size }),
    );
  });
}

const close = (server: net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('tcp check', () => {
  let v4: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    v4 = await listen('127.0.0.1');
  });
  afterAll(async () => {
    await close(v4.server);
  });

  it('is passing when the port accepts, and closes its connection', async () => {
    const r = await runTcpCheck(check(`127.0.0.1:${v4.port}`));
    expect(r).toEqual({ status: 'passing', output: `TCP connect 127.0.0.1:${v4.port}: success` });
    await waitFor(() => v4.open() === 0, 'the check to close its socket');
  });

  it('takes the tcp:// form too', async () => {
    expect((await runTcpCheck(check(`tcp://127.0.0.1:${v4.port}`))).status).toBe('passing');
  });

  it('is critical when the port is closed', async () => {
    const port = await closedPort();
    const r = await runTcpCheck(check(`127.0.0.1:${port}`));
    expect(r.status).toBe('critical');
    expect(r.output).toMatch(new RegExp(`^TCP connect 127\\.0\\.0\\.1:${port}: connection refused`));
  });

  it('connects to IPv6 addresses in brackets', async (ctx) => {
    let v6: Awaited<ReturnType<typeof listen>>;
    try {
      v6 = await listen('::1');
    } catch {
      ctx.skip('no IPv6 loopback on this machine');
      return;
    }
    try {
      const r = await runTcpCheck(check(`[::1]:${v6.port}`));
      expect(r).toEqual({ status: 'passing', output: `TCP connect [::1]:${v6.port}: success` });
    } finally {
      await close(v6.server);
    }
  });

  it('is critical for a malformed target', async () => {
    for (const target of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:80', 'host:port']) {
      const r = await runTcpCheck(check(target));
      expect(r.status, target).toBe('critical');
      expect(r.output, target).toContain(`invalid TCP check target '${target}'`);
    }
  });

  it('is critical when cancelled before it starts', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await runTcpCheck(check(`127.0.0.1:${v4.port}`), ac.signal);
    expect(r).toEqual({ status: 'critical', output: `TCP connect 127.0.0.1:${v4.port}: check cancelled` });
  });
});
