/**
 * The admin endpoint on its unix socket, through runProxy as the process runs it (minus
 * signal handlers): snapshots in and out, refusals that keep the old snapshot, stats,
 * health for adoption, graceful shutdown, and the socket file's life cycle.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../src/util/log.js';
import { runProxy, type RunningProxy } from '../../src/proxy/main.js';
import { defer, get, snapshot, startHttpApp } from './harness.js';
import { webApiPki } from './web-api.js';

const certs = webApiPki();

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-proxy-admin-'));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface AdminReply {
  status: number;
  json: any;
}

function admin(socketPath: string, method: string, path: string, body?: unknown): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** A real logger whose lines the test reads (what an operator would find in the sidecar's log). */
function recordingLogger(): { log: Logger; messages: () => string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    log: pino({ level: 'info' }, sink) as Logger,
    messages: () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
  };
}

async function start(
  opts: { snapshotFile?: string; agentSocket?: string; log?: Logger } = {},
): Promise<{ running: RunningProxy; sock: string; dir: string }> {
  const dir = await tempDir();
  const sock = join(dir, 'api.sock');
  const running = await runProxy({
    adminSocket: sock,
    handleSignals: false,
    log: silentLogger(),
    drainMs: 1000,
    ...opts,
  });
  defer(() => running.shutdown(0));
  return { running, sock, dir };
}

async function freePort(): Promise<{ port: number; release(): Promise<void> }> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, release: () => new Promise((r) => s.close(() => r())) };
}

describe('admin socket', () => {
  it('is a 0600 unix socket and answers health before any snapshot', async () => {
    const { sock, running } = await start();
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    const h = await admin(sock, 'GET', '/health');
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({
      status: 'waiting-for-snapshot',
      pid: process.pid,
      version: null,
      serviceId: null,
      inbound: null,
    });
    expect(new Date(h.json.startedAt).getTime()).toBe(running.proxy.startedAt.getTime());
    const s = await admin(sock, 'GET', '/snapshot');
    expect(s.status).toBe(404);
    expect(s.json.error.code).toBe('MESH_ERR_NOT_FOUND');
  });

  it('takes a snapshot, shows it without the key, serves it, and reports version and service id', async () => {
    const { sock } = await start();
    const app = await startHttpApp('api-1');
    const put = await admin(
      sock,
      'PUT',
      '/snapshot',
      snapshot({ version: 7, pki: certs().pki, leaf: certs().apiLeaf, service: 'api', id: 'api-1', appPort: app.port }),
    );
    expect(put).toEqual({ status: 200, json: { version: 7 } });

    const h = (await admin(sock, 'GET', '/health')).json;
    expect(h).toMatchObject({ status: 'serving', version: 7, service: 'api', serviceId: 'api-1', pid: process.pid });
    expect(h.inbound.port).toBeGreaterThan(0);

    const shown = await admin(sock, 'GET', '/snapshot');
    expect(shown.status).toBe(200);
    expect(shown.json.version).toBe(7);
    expect(shown.json.tls.keyPem).toBe('[redacted]');
    expect(JSON.stringify(shown.json)).not.toContain('PRIVATE KEY');
    expect(shown.json.tls.certPem).toBe(certs().apiLeaf.certPem);

    const stats = (await admin(sock, 'GET', '/stats')).json;
    expect(stats).toMatchObject({
      service: 'api',
      version: 7,
      inbound: { connections: { active: 0, total: 0 }, refusals: {} },
      upstreams: {},
    });
  });

  it('refuses malformed and invalid snapshots and keeps the old one serving', async () => {
    const { sock } = await start();
    const app = await startHttpApp('api-1');
    const v1 = snapshot({
      version: 1,
      pki: certs().pki,
      leaf: certs().apiLeaf,
      service: 'api',
      appPort: app.port,
      upstreams: [{ service: 'db', endpoints: [] }],
    });
    expect((await admin(sock, 'PUT', '/snapshot', v1)).status).toBe(200);
    const dbPort = (await admin(sock, 'GET', '/stats')).json.upstreams.db.listener.port as number;

    const notJson = await admin(sock, 'PUT', '/snapshot', '{"version": 2,');
    expect(notJson.status).toBe(400);
    expect(notJson.json.error.code).toBe('MESH_ERR_BAD_REQUEST');
    expect(notJson.json.error.message).toContain('not valid JSON');

    const invalid = await admin(sock, 'PUT', '/snapshot', { ...v1, version: 2, defaultIntention: 'maybe' });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.message).toContain('defaultIntention');
    expect(invalid.json.error.hint).toContain('keeps serving its previous snapshot');

    const older = await admin(sock, 'PUT', '/snapshot', { ...v1, version: 0 });
    expect(older.status).toBe(409);
    expect(older.json.error.code).toBe('MESH_ERR_CONFLICT');

    expect((await admin(sock, 'PUT', '/snapshot', v1)).json).toEqual({ version: 1 }); // same content again: fine
    const sameVersionOther = await admin(sock, 'PUT', '/snapshot', { ...v1, defaultIntention: 'allow' });
    expect(sameVersionOther.status).toBe(409);

    // A port that cannot be bound refuses the whole push; nothing of it is applied.
    const taken = await freePort();
    defer(() => taken.release());
    const cannotBind = await admin(
      sock,
      'PUT',
      '/snapshot',
      snapshot({
        version: 3,
        pki: certs().pki,
        leaf: certs().apiLeaf,
        service: 'api',
        appPort: app.port,
        defaultIntention: 'allow',
        upstreams: [
          { service: 'db', localPort: dbPort, endpoints: [] },
          { service: 'cache', localPort: taken.port, endpoints: [] },
        ],
      }),
    );
    expect(cannotBind.status).toBe(503);
    expect(cannotBind.json.error.message).toContain('EADDRINUSE');

    const h = (await admin(sock, 'GET', '/health')).json;
    expect(h.version).toBe(1);
    const shown = (await admin(sock, 'GET', '/snapshot')).json;
    expect(shown.defaultIntention).toBe('deny');
    expect(Object.keys((await admin(sock, 'GET', '/stats')).json.upstreams)).toEqual(['db']);
    // Still serving v1: the db listener answers (503, it has no endpoints).
    const r = await get(dbPort);
    expect(r.status).toBe(503);
    expect(r.headers['x-meshctl-reason']).toBe('no-healthy-endpoints db');
  });

  it('answers unknown paths and methods with errors', async () => {
    const { sock } = await start();
    expect((await admin(sock, 'GET', '/nope')).status).toBe(404);
    const wrong = await admin(sock, 'DELETE', '/snapshot');
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.message).toContain('DELETE is not allowed on /snapshot');
    expect((await admin(sock, 'POST', '/shutdown', { drainSeconds: -1 })).status).toBe(400);
  });

  it('shuts down gracefully on POST /shutdown and removes its socket', async () => {
    const { sock, running } = await start();
    const app = await startHttpApp('api-1');
    await admin(
      sock,
      'PUT',
      '/snapshot',
      snapshot({ version: 1, pki: certs().pki, leaf: certs().apiLeaf, service: 'api', appPort: app.port }),
    );
    const r = await admin(sock, 'POST', '/shutdown', { drainSeconds: 0.5 });
    expect(r).toEqual({ status: 202, json: { status: 'draining', drainMs: 500 } });
    await running.closed;
    expect(running.proxy.state).toBe('stopped');
    await expect(stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('told to stop with no agent answering on its agent socket, says so in its log and drains at once', async () => {
    const { log, messages } = recordingLogger();
    const dir = await tempDir();
    const { sock, running } = await start({ agentSocket: join(dir, 'no-agent.sock'), log });
    const app = await startHttpApp('api-1');
    await admin(
      sock,
      'PUT',
      '/snapshot',
      snapshot({ version: 1, pki: certs().pki, leaf: certs().apiLeaf, service: 'api', id: 'api-1', appPort: app.port }),
    );
    const stopped = running.shutdown(0);
    // From the stop on, health says draining (an agent that missed the notice withdraws it from that).
    expect(running.proxy.health().status).toBe('draining');
    await stopped;
    expect(messages()).toContain('the agent did not withdraw this instance; draining at once');
    expect(messages()).not.toContain('the agent withdrew this instance; draining');
  });

  it('POST /shutdown with withdrawn: true (the agent withdrew it already) asks no agent; a bad withdrawn is refused', async () => {
    const { log, messages } = recordingLogger();
    const dir = await tempDir();
    const { sock, running } = await start({ agentSocket: join(dir, 'no-agent.sock'), log });
    const app = await startHttpApp('api-1');
    await admin(
      sock,
      'PUT',
      '/snapshot',
      snapshot({ version: 1, pki: certs().pki, leaf: certs().apiLeaf, service: 'api', id: 'api-1', appPort: app.port }),
    );
    expect((await admin(sock, 'POST', '/shutdown', { withdrawn: 'yes' })).status).toBe(400);
    expect(running.proxy.state).toBe('serving');
    const r = await admin(sock, 'POST', '/shutdown', { drainSeconds: 0, withdrawn: true });
    expect(r).toEqual({ status: 202, json: { status: 'draining', drainMs: 0 } });
    await running.closed;
    expect(messages()).not.toContain('the agent did not withdraw this instance; draining at once');
    expect(messages()).toContain('proxy stopped');
  });

  it('replaces a stale socket left by a killed proxy, but never a live one or a plain file', async () => {
    const dir = await tempDir();
    const sock = join(dir, 'stale.sock');
    // A process that holds the socket and dies without cleaning up.
    const child = spawn(
      process.execPath,
      ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    defer(() => child.kill('SIGKILL'));
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));

    // While it lives, a second proxy must not take the socket over.
    await expect(runProxy({ adminSocket: sock, handleSignals: false, log: silentLogger() })).rejects.toMatchObject({
      code: 'MESH_ERR_UNAVAILABLE',
    });

    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await stat(sock)).isSocket()).toBe(true);
    const running = await runProxy({ adminSocket: sock, handleSignals: false, log: silentLogger() });
    defer(() => running.shutdown(0));
    expect((await admin(sock, 'GET', '/health')).status).toBe(200);

    const file = join(dir, 'file.sock');
    await writeFile(file, 'not a socket');
    await expect(runProxy({ adminSocket: file, handleSignals: false, log: silentLogger() })).rejects.toMatchObject({
      code: 'MESH_ERR_CONFIG',
    });
  });

  it('starts from a snapshot file (fail static) and reports an unusable one without dying', async () => {
    const dir = await tempDir();
    const app = await startHttpApp('api-1');
    const good = join(dir, 'good.json');
    await writeFile(
      good,
      JSON.stringify(
        snapshot({ version: 4, pki: certs().pki, leaf: certs().apiLeaf, service: 'api', appPort: app.port }),
      ),
    );
    const a = await start({ snapshotFile: good });
    expect(a.running.startupProblem).toBeUndefined();
    expect((await admin(a.sock, 'GET', '/health')).json).toMatchObject({ status: 'serving', version: 4 });

    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"version": ');
    const b = await start({ snapshotFile: bad });
    expect(b.running.startupProblem?.code).toBe('MESH_ERR_INVALID_FILE');
    expect((await admin(b.sock, 'GET', '/health')).json).toMatchObject({
      status: 'waiting-for-snapshot',
      version: null,
    });
  });
});
