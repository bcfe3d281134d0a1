/** Which mode an inbound serves allowed connections in: pipe unless a rule needs HTTP on this side. */
import { describe, expect, it } from 'vitest';
import { hasL7Permissions, inboundMode } from '../../../src/proxy/inbound/mode.js';
import type { ProxySnapshot } from '../../../src/proxy/snapshot.js';

type Intention = ProxySnapshot['intentions'][number];

function snap(s: { protocol?: 'http' | 'tcp'; accessLog?: boolean; intentions?: Intention[] }): ProxySnapshot {
  return {
    service: { name: 'api', protocol: s.protocol ?? 'http' },
    intentions: s.intentions ?? [],
    ...(s.accessLog === undefined ? {} : { accessLog: { enabled: s.accessLog } }),
  } as unknown as ProxySnapshot;
}

const L7: Pick<Intention, 'action' | 'permissions'> = {
  action: 'allow',
  permissions: [{ action: 'allow', pathPrefix: '/api/' }],
};

describe('inbound mode', () => {
  it('an http service without rules that need HTTP pipes bytes', () => {
    expect(inboundMode(snap({}))).toBe('pipe');
    expect(inboundMode(snap({ intentions: [{ source: 'web', destination: 'api', action: 'allow' }] }))).toBe('pipe');
    expect(inboundMode(snap({ accessLog: false }))).toBe('pipe');
  });

  it('parses HTTP when the access log is on', () => {
    expect(inboundMode(snap({ accessLog: true }))).toBe('http');
  });

  it('parses HTTP when an intention for this service, or for every service, carries L7 permissions', () => {
    expect(inboundMode(snap({ intentions: [{ source: 'web', destination: 'api', ...L7 }] }))).toBe('http');
    expect(inboundMode(snap({ intentions: [{ source: '*', destination: '*', ...L7 }] }))).toBe('http');
    // Another destination's rules are not this inbound's business.
    const other = snap({ intentions: [{ source: 'web', destination: 'billing', ...L7 }] });
    expect(hasL7Permissions(other, 'api')).toBe(false);
    expect(inboundMode(other)).toBe('pipe');
  });

  it('a tcp service always pipes (there are no requests to parse)', () => {
    expect(inboundMode(snap({ protocol: 'tcp', accessLog: true }))).toBe('pipe');
    expect(inboundMode(snap({ protocol: 'tcp', intentions: [{ source: 'web', destination: 'api', ...L7 }] }))).toBe(
      'pipe',
    );
  });
});
