import { describe, expect, it } from 'vitest';
import { failoverSafe, peerReasonOf } from '../../../../src/proxy/outbound/http/outcome.js';
import { connectFailure, reset, response } from './fixtures.js';

describe('outcome', () => {
  it('failover is safe only where nothing reached an app', () => {
    expect(failoverSafe(connectFailure())).toBe(true);
    expect(failoverSafe(reset(true))).toBe(true);
    expect(failoverSafe(response(502, 'app-unavailable api'))).toBe(true);

    expect(failoverSafe(reset(false))).toBe(false);
    expect(failoverSafe(response(200))).toBe(false);
    expect(failoverSafe(response(502))).toBe(false); // the service's own 502
    expect(failoverSafe(response(502, 'app-reset api'))).toBe(false); // the app had the request
    expect(failoverSafe(response(403, 'intention-deny web->api'))).toBe(false);
    expect(failoverSafe(response(200, 'app-unavailable api'))).toBe(false); // not the reason's status
    expect(failoverSafe({ kind: 'timeout', error: new Error('t'), perTry: true })).toBe(false);
    expect(failoverSafe({ kind: 'aborted' })).toBe(false);
  });

  it("reads the peer's reason: a kind peers send, or other", () => {
    expect(peerReasonOf({ 'x-meshctl-reason': 'app-unavailable api' })).toEqual({
      reason: 'app-unavailable api',
      kind: 'app-unavailable',
    });
    expect(peerReasonOf({ 'x-meshctl-reason': 'made-up thing' })?.kind).toBe('other');
    expect(peerReasonOf({ 'x-meshctl-reason': 'connect-failure api' })?.kind).toBe('other');
    expect(peerReasonOf({})).toBeUndefined();
  });
});
