/**
 * Revoked leaves at the inbound (snapshot.revokedSerials): a client whose leaf is on the list
 * is refused though its chain, dates and identity are good; a push that adds a serial closes
 * the open connections made with that leaf at once; other clients go on.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../src/proxy/proxy.js';
import { parseSnapshot } from '../../src/proxy/snapshot.js';
import { inboundPort, snapshot, startHttpApp, startProxy, waitFor, type HttpApp } from './harness.js';
import type { Leaf, Pki } from './pki.js';
import { webApiPki } from './web-api.js';

/** otherWeb: a second web leaf, as another instance of web holds. */
const certs = webApiPki({ leaves: { otherWeb: 'web' } });
let pki: Pki;
let apiLeaf: Leaf;
let webLeaf: Leaf;
let otherWebLeaf: Leaf;

beforeAll(() => {
  ({ pki, apiLeaf, webLeaf } = certs());
  otherWebLeaf = certs().leaves.otherWeb;
});

function inboundStats(p: MeshProxy): { refusals: Record<string, number>; revoked: Record<string, number> } {
  return (p.stats() as { inbound: { refusals: Record<string, number>; revoked: Record<string, number> } }).inbound;
}

function tlsFailures(p: MeshProxy): Record<string, number> {
  return p.metrics()!.inbound.tlsFailures;
}

/** A mesh connection with `leaf`; resolves once the handshake is done (or the socket closed). */
function dial(port: number, leaf: Leaf): Promise<{ socket: TLSSocket; handshake: boolean }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: [pki.rootPem],
      key: leaf.keyPem,
      cert: leaf.certPem,
      checkServerIdentity: () => undefined,
    });
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => resolve({ socket, handshake: true }));
    socket.once('close', () => resolve({ socket, handshake: false }));
  });
}

/** One request on an open connection; resolves with the status line, or '' when the connection closes first. */
function request(socket: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(data.split('\r\n')[0]!);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(''));
    socket.write('GET / HTTP/1.1\r\nHost: api\r\n\r\n');
  });
}

function closed(socket: TLSSocket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

describe('inbound refuses revoked client leaves', () => {
  let app: HttpApp;

  async function apiProxy(revokedSerials: string[], protocol: 'http' | 'tcp' = 'http'): Promise<MeshProxy> {
    app = await startHttpApp('api-1');
    return startProxy({
      ...snapshot({ pki, leaf: apiLeaf, service: 'api', protocol, appPort: app.port, defaultIntention: 'allow' }),
      revokedSerials,
    });
  }

  it('refuses a leaf on the list and counts it; another leaf for the same service passes', async () => {
    const api = await apiProxy([webLeaf.serial]);
    const bad = await dial(inboundPort(api), webLeaf);
    expect(await request(bad.socket)).toBe('');
    await waitFor(() => inboundStats(api).refusals['revoked-certificate'] === 1, 'revoked-certificate counted');
    expect(tlsFailures(api)['revoked-certificate']).toBe(1);
    expect(app.seen).toHaveLength(0);

    const good = await dial(inboundPort(api), otherWebLeaf);
    expect(await request(good.socket)).toBe('HTTP/1.1 200 OK');
    good.socket.destroy();
    expect(app.seen).toHaveLength(1);
  });

  it.each(['http', 'tcp'] as const)(
    'closes open %s connections made with a leaf once a push revokes it, at once',
    async (protocol) => {
      const api = await apiProxy([], protocol);
      const revokedConn = await dial(inboundPort(api), webLeaf);
      const keptConn = await dial(inboundPort(api), otherWebLeaf);
      if (protocol === 'http') expect(await request(revokedConn.socket)).toBe('HTTP/1.1 200 OK');
      await waitFor(() => api.inbound.connections.active === 2, 'both connections accepted');

      const base = snapshot({
        pki,
        leaf: apiLeaf,
        service: 'api',
        protocol,
        appPort: app.port,
        defaultIntention: 'allow',
      });
      await api.apply({ ...base, version: 2, revokedSerials: [webLeaf.serial] });
      await closed(revokedConn.socket);
      expect(inboundStats(api).revoked).toEqual({ 'revoked-certificate': 1 });
      expect(keptConn.socket.destroyed).toBe(false);
      if (protocol === 'http') expect(await request(keptConn.socket)).toBe('HTTP/1.1 200 OK');
      keptConn.socket.destroy();

      // Taken off the list (it expired, say), the leaf is let in again.
      await api.apply({ ...base, version: 3, revokedSerials: [] });
      const again = await dial(inboundPort(api), webLeaf);
      if (protocol === 'http') expect(await request(again.socket)).toBe('HTTP/1.1 200 OK');
      else expect(again.handshake).toBe(true);
      expect(inboundStats(api).refusals['revoked-certificate']).toBeUndefined();
      again.socket.destroy();
    },
  );
});

describe('snapshot.revokedSerials', () => {
  it('defaults to none and refuses what is not a serial', async () => {
    const app = await startHttpApp('api-1');
    const base = snapshot({ pki, leaf: apiLeaf, service: 'api', appPort: app.port });
    expect(parseSnapshot(base).revokedSerials).toEqual([]);
    for (const bad of ['zz', 'ab12', '', 'A'.repeat(41)]) {
      expect(() => parseSnapshot({ ...base, revokedSerials: [bad] })).toThrow(
        /revokedSerials\.0: must be a certificate serial/,
      );
    }
  });
});
