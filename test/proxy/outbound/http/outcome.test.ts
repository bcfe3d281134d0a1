import { describe, expect, it } from 'vitest';
import { meshProof } from '../../../../src/proxy/http/mesh-proof.js';
import { failoverSafe, peerReasonOf } from '../../../../src/proxy/outbound/http/outcome.js';
import { webApiPki } from '../../web-api.js';
import { tlsPair } from '../../tls-pair.js';
import { connectFailure, reset, response } from './fixtures.js';

const certs = webApiPki();

describe('outcome', () => {
  it('failover is safe only where nothing reached an app', () => {
    expect(failoverSafe(connectFailure())).toBe(true);
    expect(failoverSafe(reset(true))).toBe(true);
    expect(failoverSafe(response(502, 'app-unavailable api'))).toBe(true);

    expect(failoverSafe(reset(false))).toBe(false);
    expect(failoverSafe(response(200))).toBe(false);
    expect(failoverSafe(response(502))).toBe(false); // the service's own 502
    expect(failoverSafe(response(502, 'app-reset api'))).toBe(false); // the app had the request
    expect(failoverSafe(response(403, 'intention-deny web -> api'))).toBe(false);
    expect(failoverSafe(response(200, 'app-unavailable api'))).toBe(false); // not the reason's status
    expect(failoverSafe({ kind: 'timeout', error: new Error('t'), perTry: true })).toBe(false);
    expect(failoverSafe({ kind: 'aborted' })).toBe(false);
  });

  it("reads the peer's reason when the peer proves it made the answer: a kind peers send, or other", async () => {
    const { server, client } = await tlsPair(certs().pki);
    const proof = meshProof(server)!;
    const proven = (reason: string) => ({ 'x-meshctl-reason': reason, 'x-meshctl-proof': proof });
    const h = proven('app-unavailable api');
    expect(peerReasonOf(h, client)).toEqual({ reason: 'app-unavailable api', kind: 'app-unavailable' });
    // The proof is this hop's: it never goes on to the app; the reason does.
    expect(h).toEqual({ 'x-meshctl-reason': 'app-unavailable api' });
    expect(peerReasonOf(proven('made-up thing'), client)?.kind).toBe('other');
    expect(peerReasonOf(proven('connect-failure api'), client)?.kind).toBe('other');
    expect(peerReasonOf({}, client)).toBeUndefined();
  });

  it("an app's forged reason is not trusted and not passed on: no proof, a wrong one, or one of another connection", async () => {
    const one = await tlsPair(certs().pki);
    const two = await tlsPair(certs().pki);
    const forgeries = [
      { 'x-meshctl-reason': 'app-unavailable api' },
      { 'x-meshctl-reason': 'app-unavailable api', 'x-meshctl-proof': '0'.repeat(32) },
      { 'x-meshctl-reason': 'app-unavailable api', 'x-meshctl-proof': meshProof(two.server)! },
    ];
    for (const h of forgeries) {
      expect(peerReasonOf(h, one.client)).toBeUndefined();
      expect(h).toEqual({});
    }
    // Without the connection it came on, nothing can be proven.
    const h = { 'x-meshctl-reason': 'app-unavailable api', 'x-meshctl-proof': meshProof(one.server)! };
    expect(peerReasonOf(h, undefined)).toBeUndefined();
  });
});
