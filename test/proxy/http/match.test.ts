import { describe, expect, it } from 'vitest';
import {
  compileMatch,
  compilePermissions,
  literalPrefix,
  rewritePrefix,
  type MatchRequest,
} from '../../../src/proxy/http/match.js';

const req = (method: string, path: string, headers: Record<string, string | string[]> = {}): MatchRequest => ({
  method,
  path,
  headers,
});

describe('request matching (routes and L7 permissions)', () => {
  it('matches paths exactly, by prefix and by a regex of the whole path, ignoring the query', () => {
    expect(compileMatch({ pathExact: '/a' })(req('GET', '/a?x=1'))).toBe(true);
    expect(compileMatch({ pathExact: '/a' })(req('GET', '/a/b'))).toBe(false);
    expect(compileMatch({ pathPrefix: '/api/' })(req('GET', '/api/users'))).toBe(true);
    expect(compileMatch({ pathPrefix: '/api/' })(req('GET', '/apix'))).toBe(false);
    const re = compileMatch({ pathRegex: '/users/[0-9]+' });
    expect(re(req('GET', '/users/42?debug'))).toBe(true);
    expect(re(req('GET', '/users/42/x'))).toBe(false); // the whole path, as Envoy does
    expect(re(req('GET', '/x/users/42'))).toBe(false);
  });

  it('matches methods, headers (exact, prefix, suffix, regex, present, invert) and query parameters', () => {
    const m = compileMatch({ methods: ['GET', 'HEAD'], headers: [{ name: 'x-canary', exact: '1' }] });
    expect(m(req('GET', '/', { 'x-canary': '1' }))).toBe(true);
    expect(m(req('POST', '/', { 'x-canary': '1' }))).toBe(false);
    expect(m(req('GET', '/', { 'x-canary': '0' }))).toBe(false);
    expect(compileMatch({ headers: [{ name: 'ua', prefix: 'curl/' }] })(req('GET', '/', { ua: 'curl/8' }))).toBe(true);
    expect(compileMatch({ headers: [{ name: 'h', suffix: '.eu' }] })(req('GET', '/', { h: 'a.eu' }))).toBe(true);
    expect(compileMatch({ headers: [{ name: 'h', regex: 'v[12]' }] })(req('GET', '/', { h: 'v2' }))).toBe(true);
    expect(compileMatch({ headers: [{ name: 'h', regex: 'v[12]' }] })(req('GET', '/', { h: 'v22' }))).toBe(false);
    expect(compileMatch({ headers: [{ name: 'h', present: true }] })(req('GET', '/', {}))).toBe(false);
    expect(compileMatch({ headers: [{ name: 'h', present: true, invert: true }] })(req('GET', '/', {}))).toBe(true);
    expect(compileMatch({ headers: [{ name: 'h', exact: 'a,b' }] })(req('GET', '/', { h: ['a', 'b'] }))).toBe(true);
    const q = compileMatch({
      query: [
        { name: 'debug', present: true },
        { name: 'v', exact: '2' },
      ],
    });
    expect(q(req('GET', '/x?debug&v=2'))).toBe(true);
    expect(q(req('GET', '/x?v=2'))).toBe(false);
    expect(compileMatch({ query: [{ name: 'id', regex: '[0-9]+' }] })(req('GET', '/?id=12a'))).toBe(false);
    expect(compileMatch(undefined)(req('DELETE', '/anything'))).toBe(true);
  });

  it('runs a pattern that backtracks catastrophically elsewhere in linear time', () => {
    const m = compileMatch({ pathRegex: '/(a+)+b' });
    const evil = `/${'a'.repeat(50_000)}c`;
    // A backtracking engine would not finish this within the test's timeout; re2js does at once.
    expect(m(req('GET', evil))).toBe(false);
  });

  it('rewrites the matched prefix, keeping the query and never doubling a slash', () => {
    expect(rewritePrefix('/v2/users?x=1', '/v2/', '/')).toBe('/users?x=1');
    expect(rewritePrefix('/v2/', '/v2/', '/')).toBe('/');
    expect(rewritePrefix('/old/a', '/old', '/new')).toBe('/new/a');
    expect(rewritePrefix('/other', '/v2/', '/')).toBe('/other');
  });

  it('decides L7 permissions by the first rule that matches, naming it', () => {
    const decide = compilePermissions([
      { action: 'deny', pathPrefix: '/admin' },
      { action: 'allow', pathPrefix: '/api/', methods: ['GET'] },
      { action: 'deny', methods: ['DELETE'] },
    ]);
    expect(decide(req('GET', '/api/users'))).toEqual({ action: 'allow', number: 2, label: 'permission 2: GET /api/' });
    expect(decide(req('GET', '/admin'))).toEqual({ action: 'deny', number: 1, label: 'permission 1: /admin' });
    expect(decide(req('DELETE', '/api/users'))).toEqual({ action: 'deny', number: 3, label: 'permission 3: DELETE' });
    expect(decide(req('POST', '/api/users'))).toBeUndefined();
  });
});

describe('regex literal prefix (a string compare before the regex)', () => {
  it('is the leading literal text that every full match starts with', () => {
    expect(literalPrefix('/api/v1/users/[0-9]+')).toBe('/api/v1/users/');
    expect(literalPrefix('^/admin/.*')).toBe('/admin/');
    expect(literalPrefix('/ab*c')).toBe('/a');
    expect(literalPrefix('/ab?c')).toBe('/a');
    expect(literalPrefix('/ab{2}')).toBe('/a');
    expect(literalPrefix('/ab+')).toBe('/ab');
    expect(literalPrefix('/a|/b')).toBe('');
    expect(literalPrefix('(/x)')).toBe('');
    expect(literalPrefix('\\d+')).toBe('');
  });

  it('never changes what a pattern matches', () => {
    const cases: Array<[string, string, boolean]> = [
      ['/ab*c', '/ac', true],
      ['/ab*c', '/abbbc', true],
      ['/ab?c', '/ac', true],
      ['/api/v[0-9]+/users', '/api/v2/users', true],
      ['/api/v[0-9]+/users', '/apx/v2/users', false],
      ['/a|/b', '/b', true],
      ['^/admin/.*', '/admin/x', true],
    ];
    for (const [pattern, path, want] of cases)
      expect(compileMatch({ pathRegex: pattern })({ method: 'GET', path, headers: {} }), `${pattern} ~ ${path}`).toBe(
        want,
      );
  });
});
