import { describe, expect, it } from 'vitest';
import { checkDefinitionSchema } from '../../../src/api/schemas.js';
import { MeshError } from '../../../src/errors/index.js';
import { parseCheckSpec, parseCheckSpecs, type CheckSpecInput } from '../../../src/agent/checks/index.js';

function refusal(fn: () => unknown): MeshError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MeshError);
    expect((e as MeshError).code).toBe('MESH_ERR_INVALID_ARGUMENT');
    return e as MeshError;
  }
  throw new Error('expected a refusal');
}

describe('parseCheckSpec', () => {
  it('reads http and https URLs', () => {
    expect(parseCheckSpec('http://127.0.0.1:9000/health')).toEqual({
      kind: 'http',
      target: 'http://127.0.0.1:9000/health',
    });
    expect(parseCheckSpec(' https://api.internal/healthz?deep=1 ')).toEqual({
      kind: 'http',
      target: 'https://api.internal/healthz?deep=1',
    });
    expect(parseCheckSpec('http://[::1]:8080/')).toEqual({ kind: 'http', target: 'http://[::1]:8080/' });
  });

  it('reads tcp://host:port, with IPv6 in brackets', () => {
    expect(parseCheckSpec('tcp://127.0.0.1:5432')).toEqual({ kind: 'tcp', target: '127.0.0.1:5432' });
    expect(parseCheckSpec('tcp://db.internal:5432')).toEqual({ kind: 'tcp', target: 'db.internal:5432' });
    expect(parseCheckSpec('tcp://[::1]:6379')).toEqual({ kind: 'tcp', target: '[::1]:6379' });
  });

  it('reads exec: with or without quotes', () => {
    expect(parseCheckSpec("exec:'curl -fsS localhost:9000'")).toEqual({
      kind: 'exec',
      target: 'curl -fsS localhost:9000',
    });
    expect(parseCheckSpec('exec:"pg_isready -q"')).toEqual({ kind: 'exec', target: 'pg_isready -q' });
    expect(parseCheckSpec('exec:/usr/local/bin/check.sh --fast')).toEqual({
      kind: 'exec',
      target: '/usr/local/bin/check.sh --fast',
    });
    // Inner quotes stay; only one matching outer pair is removed.
    expect(parseCheckSpec(`exec:'grep -q "ok" /tmp/x'`)).toEqual({ kind: 'exec', target: 'grep -q "ok" /tmp/x' });
  });

  it('reads ttl: with a duration', () => {
    expect(parseCheckSpec('ttl:30s')).toEqual({ kind: 'ttl', target: '', ttlMs: 30_000 });
    expect(parseCheckSpec('ttl:1m30s')).toEqual({ kind: 'ttl', target: '', ttlMs: 90_000 });
  });

  it.each([
    ['', /the check spec is empty/],
    ['grpc://127.0.0.1:9000', /invalid check 'grpc:\/\/127\.0\.0\.1:9000': unknown check kind 'grpc'/],
    ['script:/bin/true', /unknown check kind 'script'/],
    ['healthy', /invalid check 'healthy': not a check spec/],
    ['http://', /invalid check 'http:\/\/': the URL has no host/],
    [
      'http://127.0.0.1:99999/health',
      /invalid check 'http:\/\/127\.0\.0\.1:99999\/health': port 99999 is out of range \(1-65535\)/,
    ],
    ['http://127.0.0.1:0/', /port 0 is out of range/],
    ['http://127.0.0.1:abc/', /port 'abc' is not a number/],
    ['https://exa mple.com/', /the URL is malformed/],
    ['tcp://127.0.0.1', /invalid check 'tcp:\/\/127\.0\.0\.1': expected host:port/],
    ['tcp://127.0.0.1:70000', /port 70000 is out of range/],
    ['tcp://127.0.0.1:0', /port 0 is out of range/],
    ['tcp://::1:80', /put an IPv6 address in brackets/],
    ['tcp://[not-v6]:80', /is not an IPv6 address/],
    ['tcp://bad_host!:80', /is not a valid host name or address/],
    ['exec:', /the command is empty/],
    ["exec:''", /the command is empty/],
    ['ttl:', /the TTL is missing/],
    ['ttl:soon', /ttl 'soon' is not a duration/],
    ['ttl:10ms', /ttl 10ms is out of range/],
    ['ttl:2d', /ttl 2d is out of range/],
  ])('refuses %j', (spec, message) => {
    const e = refusal(() => parseCheckSpec(spec));
    expect(e.message).toMatch(message);
  });

  it('suggests tcp:// for a bare host:port', () => {
    const e = refusal(() => parseCheckSpec('localhost:5432'));
    expect(e.message).toBe("invalid check 'localhost:5432': no check kind given");
    expect(e.hint).toContain('tcp://localhost:5432');
  });

  it('refuses an over-long URL', () => {
    expect(refusal(() => parseCheckSpec(`http://h/${'a'.repeat(2100)}`)).message).toMatch(/longer than 2048/);
  });
});

describe('parseCheckSpecs', () => {
  it('names checks <service>-<kind>, numbering repeats of a kind, with schema defaults', () => {
    const defs = parseCheckSpecs('api', [
      'http://127.0.0.1:9000/health',
      'tcp://127.0.0.1:9000',
      'http://127.0.0.1:9000/ready',
      'ttl:30s',
      "exec:'true'",
    ]);
    expect(defs.map((d) => d.id)).toEqual(['api-http', 'api-tcp', 'api-http-2', 'api-ttl', 'api-exec']);
    expect(defs[0]).toEqual({
      id: 'api-http',
      kind: 'http',
      target: 'http://127.0.0.1:9000/health',
      intervalMs: 10_000,
      timeoutMs: 2_000,
      successBeforePassing: 1,
      failuresBeforeCritical: 1,
    });
    expect(defs[3]).toMatchObject({ kind: 'ttl', ttlMs: 30_000 });
    for (const d of defs) expect(checkDefinitionSchema.safeParse(d).success).toBe(true);
  });

  it('applies --interval, --timeout and thresholds to every check', () => {
    const defs = parseCheckSpecs('web', ['http://127.0.0.1:8080/', 'tcp://127.0.0.1:8080'], {
      interval: '5s',
      timeout: '500ms',
      successBeforePassing: '2',
      failuresBeforeCritical: 3,
    });
    for (const d of defs)
      expect(d).toMatchObject({
        intervalMs: 5_000,
        timeoutMs: 500,
        successBeforePassing: 2,
        failuresBeforeCritical: 3,
      });
  });

  it('reads definition-file objects, which override the shared settings', () => {
    const specs: CheckSpecInput[] = [
      { http: 'http://127.0.0.1:9000/health', interval: '1s' },
      { id: 'db-up', tcp: '127.0.0.1:5432' },
      { exec: 'pg_isready', timeout: 5000 },
      { ttl: '45s' },
      { ttl: 60_000 },
      { spec: 'tcp://[::1]:80', failuresBeforeCritical: 2 },
    ];
    const defs = parseCheckSpecs('db', specs, { interval: '20s' });
    expect(defs.map((d) => [d.id, d.kind, d.target, d.intervalMs])).toEqual([
      ['db-http', 'http', 'http://127.0.0.1:9000/health', 1_000],
      ['db-up', 'tcp', '127.0.0.1:5432', 20_000],
      ['db-exec', 'exec', 'pg_isready', 20_000],
      ['db-ttl', 'ttl', '', 20_000],
      ['db-ttl-2', 'ttl', '', 20_000],
      ['db-tcp', 'tcp', '[::1]:80', 20_000],
    ]);
    expect(defs[2]!.timeoutMs).toBe(5_000);
    expect(defs[3]!.ttlMs).toBe(45_000);
    expect(defs[4]!.ttlMs).toBe(60_000);
    expect(defs[5]!.failuresBeforeCritical).toBe(2);
  });

  it('skips generated ids that an explicit id already took', () => {
    const defs = parseCheckSpecs('api', [{ id: 'api-http', spec: 'tcp://127.0.0.1:1' }, 'http://127.0.0.1:9000/']);
    expect(defs.map((d) => d.id)).toEqual(['api-http', 'api-http-2']);
  });

  it('keeps generated ids within 63 characters', () => {
    const service = `s${'x'.repeat(60)}-y`;
    const defs = parseCheckSpecs(service, ['http://127.0.0.1:1/', 'http://127.0.0.1:2/']);
    for (const d of defs) {
      expect(d.id.length).toBeLessThanOrEqual(63);
      expect(checkDefinitionSchema.safeParse(d).success).toBe(true);
    }
    expect(defs[1]!.id.endsWith('-http-2')).toBe(true);
  });

  it.each<[string, () => unknown, RegExp]>([
    ['a bad service name', () => parseCheckSpecs('Bad Name', ['ttl:30s']), /invalid service name 'Bad Name'/],
    [
      'a bad interval',
      () => parseCheckSpecs('api', ['tcp://127.0.0.1:1'], { interval: 'often' }),
      /invalid check 'tcp:\/\/127\.0\.0\.1:1': interval 'often' is not a duration/,
    ],
    [
      'an interval below 100ms',
      () => parseCheckSpecs('api', ['tcp://127.0.0.1:1'], { interval: '50ms' }),
      /interval 50ms is out of range \(100ms to 24h\)/,
    ],
    [
      'a timeout above 10 minutes',
      () => parseCheckSpecs('api', ['tcp://127.0.0.1:1'], { timeout: '11m' }),
      /timeout 11m is out of range/,
    ],
    [
      'a fractional millisecond count',
      () => parseCheckSpecs('api', ['tcp://127.0.0.1:1'], { interval: 1500.5 }),
      /whole number of milliseconds/,
    ],
    [
      'a threshold of 0',
      () => parseCheckSpecs('api', ['tcp://127.0.0.1:1'], { failuresBeforeCritical: 0 }),
      /failuresBeforeCritical must be a whole number from 1 to 100, not '0'/,
    ],
    [
      'a threshold that is not a number',
      () => parseCheckSpecs('api', ['tcp://127.0.0.1:1'], { successBeforePassing: 'two' }),
      /successBeforePassing must be a whole number/,
    ],
    [
      'a duplicate explicit id',
      () =>
        parseCheckSpecs('api', [
          { id: 'x', ttl: '1m' },
          { id: 'x', ttl: '2m' },
        ]),
      /check id 'x' is used twice/,
    ],
    [
      'a malformed explicit id',
      () => parseCheckSpecs('api', [{ id: 'Not OK', ttl: '1m' }]),
      /check id 'Not OK' must be/,
    ],
    [
      'an object with no kind',
      () => parseCheckSpecs('api', [{ interval: '1s' }]),
      /invalid check '#1': give one of spec, http, tcp, exec, ttl/,
    ],
    [
      'an object with two kinds',
      () => parseCheckSpecs('api', [{ http: 'http://h/', tcp: 'h:1' }]),
      /give only one of http, tcp/,
    ],
    [
      'an object with an unknown field',
      () => parseCheckSpecs('api', [{ ttl: '1m', notes: 'x' } as CheckSpecInput]),
      /invalid check '#1': unknown field 'notes'/,
    ],
    [
      'an http field that is not a URL',
      () => parseCheckSpecs('api', [{ http: '127.0.0.1:80/health' }]),
      /an http check needs an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'a bad spec among good ones',
      () => parseCheckSpecs('api', ['ttl:30s', 'udp://127.0.0.1:53']),
      /invalid check 'udp:\/\/127\.0\.0\.1:53': unknown check kind 'udp'/,
    ],
  ])('refuses %s', (_what, fn, message) => {
    expect(refusal(fn).message).toMatch(message);
  });
});
