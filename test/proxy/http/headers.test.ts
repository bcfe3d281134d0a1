import { describe, expect, it } from 'vitest';
import { fixResponseHopByHop, stripRequestHopByHop } from '../../../src/proxy/http/headers.js';

describe('hop-by-hop headers', () => {
  it('strips them from requests, including the ones Connection names', () => {
    const h: Record<string, string> = {
      host: 'api',
      connection: 'keep-alive, X-Trace-Hop',
      'x-trace-hop': '1',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic eA==',
      te: 'gzip',
      trailer: 'x-checksum',
      upgrade: 'h2c',
      expect: '100-continue',
      'x-keep': 'yes',
    };
    stripRequestHopByHop(h, false);
    expect(h).toEqual({ host: 'api', 'x-keep': 'yes' });
  });

  it('keeps te: trailers, and connection/upgrade on a WebSocket upgrade', () => {
    const h: Record<string, string> = {
      connection: 'Upgrade, x-hop',
      upgrade: 'websocket',
      'x-hop': '1',
      te: 'trailers',
    };
    stripRequestHopByHop(h, true);
    expect(h).toEqual({ connection: 'Upgrade, x-hop', upgrade: 'websocket', te: 'trailers' });
  });

  it('sets our own connection header on responses and caps the Keep-Alive hint', () => {
    const h: Record<string, string> = {
      connection: 'close, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=60',
      trailer: 'x',
      'content-type': 'text/plain',
    };
    fixResponseHopByHop(h, true, 5);
    expect(h).toEqual({ connection: 'keep-alive', 'keep-alive': 'timeout=5', 'content-type': 'text/plain' });
    const short: Record<string, string> = { 'keep-alive': 'timeout=2' };
    fixResponseHopByHop(short, false, 5);
    expect(short).toEqual({ connection: 'close', 'keep-alive': 'timeout=2' });
  });
});
