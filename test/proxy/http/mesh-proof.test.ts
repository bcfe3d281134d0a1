/**
 * The mesh's own answers are proven by the TLS connection they travel on: both ends of one
 * connection derive the same value, another connection (or a plain socket) cannot.
 */
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isProvenMeshAnswer, meshProof, PROOF_HEADER } from '../../../src/proxy/http/mesh-proof.js';
import { defer } from '../harness.js';
import { webApiPki } from '../web-api.js';
import { tlsPair } from '../tls-pair.js';

const certs = webApiPki();

describe('mesh proof', () => {
  it('is the same value at both ends of one TLS connection, and another connection has another', async () => {
    const one = await tlsPair(certs().pki);
    const two = await tlsPair(certs().pki);
    const p = meshProof(one.server)!;
    expect(p).toMatch(/^[0-9a-f]{32}$/);
    expect(meshProof(one.client)).toBe(p);
    expect(meshProof(one.server)).toBe(p); // cached, unchanged
    expect(meshProof(two.server)).not.toBe(p);
    expect(meshProof(two.client)).toBe(meshProof(two.server));
  });

  it('proves an answer only on the connection it was made for', async () => {
    const one = await tlsPair(certs().pki);
    const two = await tlsPair(certs().pki);
    const headers = { 'x-meshctl-reason': 'app-unavailable api', [PROOF_HEADER]: meshProof(one.server)! };
    expect(isProvenMeshAnswer(headers, one.client)).toBe(true);
    expect(isProvenMeshAnswer(headers, two.client)).toBe(false);
    expect(isProvenMeshAnswer({ 'x-meshctl-reason': 'app-unavailable api' }, one.client)).toBe(false);
    expect(isProvenMeshAnswer({ [PROOF_HEADER]: 'f'.repeat(32) }, one.client)).toBe(false);
    expect(isProvenMeshAnswer(headers, undefined)).toBe(false);
  });

  it('is never made on a plain socket (the outbound answering its app on loopback)', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sockets: Socket[] = [];
    server.on('connection', (s) => sockets.push(s));
    defer(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const plain = netConnect((server.address() as { port: number }).port, '127.0.0.1');
    defer(() => plain.destroy());
    await new Promise((r) => plain.once('connect', r));
    expect(meshProof(plain)).toBeUndefined();
    expect(isProvenMeshAnswer({ [PROOF_HEADER]: '' }, plain)).toBe(false);
  });
});
