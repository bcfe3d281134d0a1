import { describe, expect, it } from 'vitest';
import { compileHash, cookieValue } from '../../../../src/proxy/outbound/http/hash.js';

const req = (headers: Record<string, string> = {}, path = '/', source?: string) => ({
  method: 'GET',
  path,
  headers,
  source,
});

describe('request hash (hash policies)', () => {
  it('reads a cookie out of the Cookie header', () => {
    expect(cookieValue('a=1; session=abc; b=2', 'session')).toBe('abc');
    expect(cookieValue('sessionx=1', 'session')).toBeUndefined();
    expect(cookieValue(undefined, 'session')).toBeUndefined();
  });

  it('hashes on a cookie, a header, a query parameter or the source address', () => {
    const cookie = compileHash([{ field: 'cookie', fieldValue: 'session' }])!;
    expect(cookie(req({ cookie: 'session=a' }))).toBe(cookie(req({ cookie: 'x=1; session=a' })));
    expect(cookie(req({ cookie: 'session=a' }))).not.toBe(cookie(req({ cookie: 'session=b' })));
    expect(cookie(req())).toBeUndefined();
    const header = compileHash([{ field: 'header', fieldValue: 'x-user' }])!;
    expect(header(req({ 'x-user': 'u1' }))).toBeTypeOf('number');
    const query = compileHash([{ field: 'query_parameter', fieldValue: 'u' }])!;
    expect(query(req({}, '/x?u=1'))).toBe(query(req({}, '/y?u=1&z=2')));
    const source = compileHash([{ sourceIp: true }])!;
    expect(source(req({}, '/', '127.0.0.1'))).toBe(source(req({}, '/x', '127.0.0.1')));
    expect(compileHash(undefined)).toBeUndefined();
  });

  it('falls through to the next policy when one yields nothing; terminal stops at the first that yields', () => {
    const both = compileHash([
      { field: 'header', fieldValue: 'x-user' },
      { field: 'cookie', fieldValue: 's' },
    ])!;
    const cookieOnly = compileHash([{ field: 'cookie', fieldValue: 's' }])!;
    expect(both(req({ cookie: 's=1' }))).toBe(cookieOnly(req({ cookie: 's=1' })));
    // Without terminal both values count; with it, the header alone decides.
    expect(both(req({ 'x-user': 'u', cookie: 's=1' }))).not.toBe(both(req({ 'x-user': 'u', cookie: 's=2' })));
    const terminal = compileHash([
      { field: 'header', fieldValue: 'x-user', terminal: true },
      { field: 'cookie', fieldValue: 's' },
    ])!;
    expect(terminal(req({ 'x-user': 'u', cookie: 's=1' }))).toBe(terminal(req({ 'x-user': 'u', cookie: 's=2' })));
  });
});
