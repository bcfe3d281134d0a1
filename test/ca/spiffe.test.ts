import { describe, it, expect } from 'vitest';
import { MeshError } from '../../src/errors/index.js';
import {
  isValidName,
  isValidTrustDomain,
  NAME_PATTERN,
  nodeId,
  parseSpiffeId,
  serviceId,
  trustDomainId,
} from '../../src/ca/spiffe.js';

describe('names', () => {
  it.each(['a', '0', 'api', 'web-1', 'db_primary', 'v1.2', 'a'.repeat(63), 'a-b_c.d9'])('accepts %s', (n) => {
    expect(isValidName(n)).toBe(true);
    expect(NAME_PATTERN.test(n)).toBe(true);
  });

  it.each([
    '',
    'Api',
    'API',
    '-api',
    'api-',
    '_api',
    'api.',
    '.api',
    'a'.repeat(64),
    'a b',
    'a/b',
    'a:b',
    'a%2f',
    'ä',
    'api\n',
  ])('rejects %j', (n) => {
    expect(isValidName(n)).toBe(false);
  });

  it('rejects non-strings', () => {
    expect(isValidName(undefined)).toBe(false);
    expect(isValidName(42)).toBe(false);
  });
});

describe('trust domains', () => {
  it.each(['mesh.local', 'example.org', 'prod', 'a-b_c.d', 'x'.repeat(255)])('accepts %s', (td) => {
    expect(isValidTrustDomain(td)).toBe(true);
  });

  it.each([
    '',
    'Mesh.local',
    'MESH.LOCAL',
    '.',
    '..',
    '.mesh',
    'mesh.',
    'mesh local',
    'mesh/local',
    'mesh:8080',
    'user@mesh',
    'x'.repeat(256),
  ])('rejects %j', (td) => {
    expect(isValidTrustDomain(td)).toBe(false);
  });
});

describe('building IDs', () => {
  it('makes service, node and trust-domain IDs', () => {
    expect(serviceId('mesh.local', 'api')).toBe('spiffe://mesh.local/svc/api');
    expect(nodeId('mesh.local', 'host-1')).toBe('spiffe://mesh.local/node/host-1');
    expect(trustDomainId('mesh.local')).toBe('spiffe://mesh.local');
  });

  it('refuses bad names and trust domains with MESH_ERR_INVALID_ARGUMENT', () => {
    for (const f of [() => serviceId('mesh.local', 'Api'), () => nodeId('Mesh', 'n1'), () => trustDomainId('a/b')]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MeshError);
      expect((err as MeshError).code).toBe('MESH_ERR_INVALID_ARGUMENT');
    }
    expect(() => serviceId('mesh.local', 'Api')).toThrow(/invalid service name "Api"/);
    expect(() => nodeId('mesh.local', '-n')).toThrow(/invalid node name/);
  });
});

describe('parseSpiffeId', () => {
  it('parses both shapes', () => {
    expect(parseSpiffeId('spiffe://mesh.local/svc/api')).toEqual({
      trustDomain: 'mesh.local',
      kind: 'svc',
      name: 'api',
    });
    expect(parseSpiffeId('spiffe://prod/node/n-1')).toEqual({ trustDomain: 'prod', kind: 'node', name: 'n-1' });
  });

  it('round-trips what serviceId and nodeId make', () => {
    expect(parseSpiffeId(serviceId('a.b', 'x.y'))).toEqual({ trustDomain: 'a.b', kind: 'svc', name: 'x.y' });
    expect(parseSpiffeId(nodeId('a.b', 'h'))).toEqual({ trustDomain: 'a.b', kind: 'node', name: 'h' });
  });

  it.each([
    'spiffe://mesh.local',
    'spiffe://mesh.local/',
    'spiffe://mesh.local/svc',
    'spiffe://mesh.local/svc/',
    'spiffe://mesh.local/svc/api/',
    'spiffe://mesh.local/svc/api/extra',
    'spiffe://mesh.local/ns/default/sa/api',
    'spiffe://mesh.local/user/api',
    'spiffe://MESH.local/svc/api',
    'SPIFFE://mesh.local/svc/api',
    'spiffe://mesh.local/svc/API',
    'spiffe://mesh.local:443/svc/api',
    'spiffe://u@mesh.local/svc/api',
    'spiffe://mesh.local/svc/api?x=1',
    'spiffe://mesh.local/svc/api#f',
    'spiffe://mesh.local/svc/a%70i',
    'spiffe://mesh.local//svc/api',
    'spiffe:///svc/api',
    'https://mesh.local/svc/api',
    ' spiffe://mesh.local/svc/api',
    'spiffe://mesh.local/svc/api\n',
    '',
  ])('rejects %j', (uri) => {
    expect(parseSpiffeId(uri)).toBeUndefined();
  });

  it('rejects non-strings', () => {
    expect(parseSpiffeId(undefined)).toBeUndefined();
    expect(parseSpiffeId({})).toBeUndefined();
  });
});
