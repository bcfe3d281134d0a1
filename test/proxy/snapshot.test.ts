import { beforeAll, describe, expect, it } from 'vitest';
import { isMeshError } from '../../src/errors/index.js';
import { certTimeProblem, parseSnapshot, redactSnapshot } from '../../src/proxy/snapshot.js';
import { buildSecureContext } from '../../src/proxy/tls-material.js';
import { snapshot } from './harness.js';
import type { Leaf, Pki } from './pki.js';
import { webApiPki, type BadLeaves } from './web-api.js';

const certs = webApiPki({ bad: ['api'] });
let pki: Pki;
let apiLeaf: Leaf;
let webLeaf: Leaf;
let bad: BadLeaves;

beforeAll(() => {
  ({ pki, apiLeaf, webLeaf } = certs());
  bad = certs().bad.api;
});

function base(): Record<string, any> {
  return snapshot({
    pki,
    leaf: apiLeaf,
    service: 'api',
    inboundPort: 20000,
    appPort: 9000,
    upstreams: [{ service: 'db', localPort: 18000, endpoints: [{ id: 'db-1', port: 21000 }] }],
  }) as Record<string, any>;
}

function refusal(input: unknown): string {
  try {
    parseSnapshot(input);
  } catch (e) {
    expect(isMeshError(e) && e.code).toBe('MESH_ERR_BAD_REQUEST');
    return (e as Error).message;
  }
  throw new Error('the snapshot was accepted');
}

describe('parseSnapshot', () => {
  it('accepts a complete snapshot and fills defaults', () => {
    const input = base();
    delete input.upstreams[0].loadBalancer;
    delete input.upstreams[0].endpoints[0].weight;
    input.accessLog = { enabled: false };
    const s = parseSnapshot(input);
    expect(s.version).toBe(1);
    expect(s.upstreams[0]!.loadBalancer).toBe('round_robin');
    expect(s.upstreams[0]!.endpoints[0]!.weight).toBe(1);
    expect(s.accessLog).toEqual({ enabled: false });
  });

  it.each([
    ['an unknown field', (s: any) => (s.extra = 1), 'extra'],
    ['a negative version', (s: any) => (s.version = -1), 'version'],
    ['a fractional version', (s: any) => (s.version = 1.5), 'version'],
    ['a bad trust domain', (s: any) => (s.trustDomain = 'Mesh Local'), 'trustDomain'],
    ['a bad service name', (s: any) => (s.service.name = 'API!'), 'service.name'],
    ['an unknown protocol', (s: any) => (s.service.protocol = 'grpc'), 'service.protocol'],
    ['a non-loopback app address', (s: any) => (s.service.app.address = '10.0.0.1'), 'service.app.address'],
    ['a bracketed inbound address', (s: any) => (s.service.inbound.address = '[::1]'), 'service.inbound.address'],
    ['no roots', (s: any) => (s.tls.rootsPem = []), 'tls.rootsPem'],
    ['a key that is not PEM', (s: any) => (s.tls.keyPem = 'secret'), 'tls.keyPem'],
    ['an unknown load balancer', (s: any) => (s.upstreams[0].loadBalancer = 'fastest'), 'loadBalancer'],
    ['a zero endpoint port', (s: any) => (s.upstreams[0].endpoints[0].port = 0), 'port'],
    [
      'a bad intention action',
      (s: any) => (s.intentions = [{ source: 'web', destination: 'api', action: 'maybe' }]),
      'intentions.0.action',
    ],
    ['a listener port used twice', (s: any) => (s.upstreams[0].localPort = 20000), 'already uses'],
    ['the same upstream twice', (s: any) => s.upstreams.push({ ...s.upstreams[0], localPort: 18001 }), 'listed twice'],
    [
      'an endpoint id twice',
      (s: any) => s.upstreams[0].endpoints.push({ ...s.upstreams[0].endpoints[0], port: 21001 }),
      'listed twice',
    ],
    [
      "another service's certificate",
      (s: any) => (s.tls = { ...s.tls, certPem: webLeaf.certPem, keyPem: webLeaf.keyPem }),
      'not a certificate for spiffe://mesh.local/svc/api (wrong-name)',
    ],
  ])('refuses %s', (_what, change, mention) => {
    const input = base();
    change(input);
    expect(refusal(input)).toContain(mention);
  });

  it('refuses a certificate the roots do not sign, and one with two identities', () => {
    const foreign = base();
    foreign.tls.certPem = bad.foreignCa.certPem;
    foreign.tls.keyPem = bad.foreignCa.keyPem;
    expect(refusal(foreign)).toContain('does not chain to tls.rootsPem (');
    const two = base();
    two.tls.certPem = bad.twoUris.certPem;
    two.tls.keyPem = bad.twoUris.keyPem;
    expect(refusal(two)).toContain('multiple-uri-sans');
  });

  it('accepts an expired certificate (fail static) but reports it', () => {
    const input = base();
    input.tls.certPem = bad.expired.certPem;
    input.tls.keyPem = bad.expired.keyPem;
    const s = parseSnapshot(input);
    expect(certTimeProblem(s)).toBe('expired');
    expect(certTimeProblem(parseSnapshot(base()))).toBeUndefined();
  });

  it('refuses a key that does not belong to the certificate when loading TLS', () => {
    const s = parseSnapshot({
      ...base(),
      tls: { certPem: apiLeaf.certPem, keyPem: webLeaf.keyPem, rootsPem: [pki.rootPem] },
    });
    expect(() => buildSecureContext(s.tls)).toThrow(/invalid proxy snapshot: tls:/);
  });

  it('redaction drops the private key and keeps the rest', () => {
    const s = parseSnapshot(base());
    const r = redactSnapshot(s);
    expect(r.tls.keyPem).toBe('[redacted]');
    expect(JSON.stringify(r)).not.toContain('PRIVATE KEY');
    expect(r.tls.certPem).toBe(s.tls.certPem);
    expect(r.upstreams).toEqual(s.upstreams);
  });
});
