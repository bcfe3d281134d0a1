/**
 * The control-plane bench's watch client (bench/lib/watch-client.mjs) against a real registry:
 * a held blocking query answers with the change and its index over one kept connection; the
 * registry's certificate is verified; an error status, a registry restart and answers it cannot
 * read by content-length are errors, and the next request reconnects.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRoot } from '../../src/ca/index.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

interface WatchAnswer {
  status: number;
  index: number | undefined;
  body: { revision: number; instances?: Array<{ id: string }>; message?: string };
}
interface WatchConnection {
  get(path: string): Promise<WatchAnswer>;
  close(): void;
  connects: number;
  resumed: number;
}
interface SessionBox {
  session: Buffer | undefined;
}
// bench/ is plain JavaScript (no declarations): typed here by what the test uses.
const lib = (await import('../../bench/lib/watch-client.mjs' as string)) as {
  WatchConnection: new (o: {
    host: string;
    port: number;
    secureContext: SecureContext;
    session?: SessionBox;
    idleTimeoutMs?: number;
  }) => WatchConnection;
  SessionBox: new () => SessionBox;
  parseHead(head: string): Error | { status: number; index: number | undefined; length: number; close: boolean };
};

describe('the bench watch client', () => {
  let reg: TestRegistry;
  let node: { certPem: string; keyPem: string; client: TestRegistry['admin'] };
  let ctx: SecureContext;
  const conns: WatchConnection[] = [];
  const connect = (o: { secureContext?: SecureContext; session?: SessionBox } = {}) => {
    const c = new lib.WatchConnection({
      host: '127.0.0.1',
      port: new URL(reg.url).port === '' ? 443 : Number(new URL(reg.url).port),
      secureContext: o.secureContext ?? ctx,
      ...(o.session ? { session: o.session } : {}),
    });
    conns.push(c);
    return c;
  };

  beforeAll(async () => {
    reg = await startTestRegistry();
    node = await reg.joinNode('watcher-1');
    ctx = createSecureContext({ ca: reg.caPem, cert: node.certPem, key: node.keyPem, minVersion: 'TLSv1.3' });
  });
  afterAll(async () => {
    for (const c of conns) c.close();
    await reg?.close();
  });

  it('holds a blocking query and answers with the change and its index, on one connection', async () => {
    const c = connect();
    const first = await c.get('/v1/catalog/service/api');
    expect(first.status).toBe(200);
    expect(first.index).toBe(first.body.revision);
    expect(first.body.instances).toEqual([]);
    const held = c.get(`/v1/catalog/service/api?index=${first.body.revision}&wait=30s`);
    await node.client.register({ id: 'api-1', name: 'api', port: 9000, protocol: 'http' });
    const got = await held;
    expect(got.body.instances?.map((i) => i.id)).toEqual(['api-1']);
    expect(got.index).toBe(got.body.revision);
    expect(got.body.revision).toBeGreaterThan(first.body.revision);
    expect(c.connects).toBe(1);
  });

  it('refuses a second request while one is in flight on the connection', async () => {
    const c = connect();
    const { body } = await c.get('/v1/catalog/service/api');
    const held = c.get(`/v1/catalog/service/api?index=${body.revision}&wait=1s`);
    await expect(c.get('/v1/catalog/service/api')).rejects.toThrow('one request at a time');
    await held;
  });

  it("rejects an error status with the registry's message and keeps the connection", async () => {
    const c = connect();
    // A node certificate may not list tokens (admin only).
    await expect(c.get('/v1/tokens')).rejects.toThrow(/answered 403/);
    expect((await c.get('/v1/catalog/service/api')).status).toBe(200);
    expect(c.connects).toBe(1);
  });

  it("verifies the registry's certificate against the CA it was given", async () => {
    const other = await createRoot({ trustDomain: 'other.local' });
    const c = connect({
      secureContext: createSecureContext({ ca: other.certPem, cert: node.certPem, key: node.keyPem }),
    });
    await expect(c.get('/v1/catalog/service/api')).rejects.toThrow(/self-signed|unable to verify|certificate/i);
  });

  it('resumes the TLS session its identity shares', async () => {
    const session = new lib.SessionBox();
    const a = connect({ session });
    await a.get('/v1/catalog/service/api');
    expect(session.session).toBeInstanceOf(Buffer);
    expect(a.resumed).toBe(0);
    const b = connect({ session });
    await b.get('/v1/catalog/service/api');
    expect(b).toMatchObject({ connects: 1, resumed: 1 });
    // Without the shared session, a full handshake.
    const c = connect();
    await c.get('/v1/catalog/service/api');
    expect(c).toMatchObject({ connects: 1, resumed: 0 });
  });

  it('fails a held query when the registry goes away and reconnects for the next one', async () => {
    const c = connect();
    const { body } = await c.get('/v1/catalog/service/api');
    const held = c.get(`/v1/catalog/service/api?index=${body.revision}&wait=30s`);
    const failed = expect(held).rejects.toThrow(/closed mid-answer|ECONNRESET/);
    await reg.restart();
    await failed;
    expect((await c.get('/v1/catalog/service/api')).status).toBe(200);
    expect(c.connects).toBe(2);
  });

  it('reads answers by content-length only, and says so', () => {
    expect(lib.parseHead('HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-mesh-index: 7')).toEqual({
      status: 200,
      index: 7,
      length: 12,
      close: false,
    });
    expect(lib.parseHead('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0')).toMatchObject({ close: true });
    expect(String(lib.parseHead('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked'))).toMatch(/content-length only/);
    expect(String(lib.parseHead('HTTP/1.1 200 OK\r\nx-mesh-index: 7'))).toMatch(/no content-length/);
    expect(String(lib.parseHead('HTTP/1.1 200 OK\r\ncontent-length: 1x'))).toMatch(/bad content-length/);
    expect(String(lib.parseHead('SSH-2.0-OpenSSH'))).toMatch(/not an HTTP/);
  });
});
