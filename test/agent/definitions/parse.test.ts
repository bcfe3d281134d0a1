import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshError, type MeshError } from '../../../src/errors/index.js';
import { serviceRegistrationSchema } from '../../../src/api/schemas.js';
import {
  definitionErrorOf,
  MAX_DEFINITION_BYTES,
  parseDefinitionFile,
  parseUpstreamShorthand,
  readDefinitionFile,
  type DefinitionErrorDetails,
} from '../../../src/agent/definitions/index.js';

/** Parses, expecting MESH_ERR_INVALID_FILE; returns the error. */
function refuse(file: string, text: string, opts: { maxBytes?: number } = {}): MeshError {
  try {
    parseDefinitionFile(file, text, opts);
  } catch (e) {
    if (isMeshError(e) && e.code === 'MESH_ERR_INVALID_FILE') return e;
    throw e;
  }
  throw new Error(`expected ${file} to be refused`);
}

function where(e: MeshError): { line?: number; column?: number } {
  const d = e.details as DefinitionErrorDetails;
  return { line: d.line, column: d.column };
}

const FULL = `# the example from the docs
service:
  name: api
  port: 9000
  address: 127.0.0.1
  mesh_port: 21000
  tags: [v1]
  meta: { version: v1 }
  weight: 10
  protocol: http
  upstreams:
    - db:15432
    - { service: cache, local_port: 16379, load_balancer: least_request }
  checks:
    - http: http://127.0.0.1:9000/health
      interval: 10s
      timeout: 2s
    - tcp: 127.0.0.1:9000
      success_before_passing: 2
      failures_before_critical: 3
    - exec: /usr/local/bin/check-api
    - ttl: 30s
      id: api-heartbeat
  proxy: true
`;

describe('definition format → registrations', () => {
  it('converts every field of the full example, with shorthands and defaults', () => {
    const { services } = parseDefinitionFile('/etc/meshctl/services.d/api.yaml', FULL);
    expect(services).toEqual([
      {
        name: 'api',
        address: '127.0.0.1',
        port: 9000,
        meshPort: 21000,
        tags: ['v1'],
        meta: { version: 'v1' },
        weight: 10,
        protocol: 'http',
        upstreams: [
          { service: 'db', localPort: 15432, localAddress: '127.0.0.1', loadBalancer: 'round_robin' },
          { service: 'cache', localPort: 16379, localAddress: '127.0.0.1', loadBalancer: 'least_request' },
        ],
        checks: [
          {
            id: 'api-http',
            kind: 'http',
            target: 'http://127.0.0.1:9000/health',
            intervalMs: 10_000,
            timeoutMs: 2_000,
            successBeforePassing: 1,
            failuresBeforeCritical: 1,
          },
          {
            id: 'api-tcp',
            kind: 'tcp',
            target: '127.0.0.1:9000',
            intervalMs: 10_000,
            timeoutMs: 2_000,
            successBeforePassing: 2,
            failuresBeforeCritical: 3,
          },
          {
            id: 'api-exec',
            kind: 'exec',
            target: '/usr/local/bin/check-api',
            intervalMs: 10_000,
            timeoutMs: 2_000,
            successBeforePassing: 1,
            failuresBeforeCritical: 1,
          },
          {
            id: 'api-heartbeat',
            kind: 'ttl',
            target: '',
            ttlMs: 30_000,
            intervalMs: 10_000,
            timeoutMs: 2_000,
            successBeforePassing: 1,
            failuresBeforeCritical: 1,
          },
        ],
        proxy: true,
      },
    ]);
    // What a file yields is exactly what the API accepts.
    for (const s of services) expect(serviceRegistrationSchema.parse(s)).toEqual(s);
  });

  it('fills the wire defaults for a minimal service', () => {
    const { services } = parseDefinitionFile('min.yml', 'service: { name: web, port: 8080 }\n');
    expect(services).toEqual([
      {
        name: 'web',
        port: 8080,
        tags: [],
        meta: {},
        weight: 1,
        protocol: 'tcp',
        upstreams: [],
        checks: [],
        proxy: true,
      },
    ]);
  });

  it('reads several services from one file, with explicit ids and proxy opt-out', () => {
    const text = `services:
  - name: api
    id: api-1
    port: 9001
  - name: api
    id: api-2
    port: 9002
    proxy: false
  - name: worker
    port: 7000
`;
    const { services } = parseDefinitionFile('many.yaml', text);
    expect(services.map((s) => [s.id, s.name, s.port, s.proxy])).toEqual([
      ['api-1', 'api', 9001, true],
      ['api-2', 'api', 9002, false],
      [undefined, 'worker', 7000, true],
    ]);
  });

  it('numbers repeated check kinds and skips ids taken explicitly', () => {
    const text = `service:
  name: api
  port: 9000
  checks:
    - http: http://127.0.0.1:9000/a
    - http: http://127.0.0.1:9000/b
      id: api-http-2
    - http: http://127.0.0.1:9000/c
    - tcp: "[::1]:9000"
    - ttl: 1m
    - ttl: 2m
`;
    const { services } = parseDefinitionFile('checks.yaml', text);
    expect(services[0]!.checks.map((c) => c.id)).toEqual([
      'api-http',
      'api-http-2',
      'api-http-3',
      'api-tcp',
      'api-ttl',
      'api-ttl-2',
    ]);
    expect(services[0]!.checks.map((c) => c.ttlMs)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      60_000,
      120_000,
    ]);
  });

  it('reads JSON with the same meaning as YAML', () => {
    const json = JSON.stringify(
      {
        services: [
          {
            name: 'api',
            port: 9000,
            tags: ['v1'],
            meta: { version: 'v1' },
            upstreams: ['db:15432', { service: 'cache', local_port: 16379, local_address: '127.0.0.2' }],
            checks: [{ http: 'https://127.0.0.1:9000/health', interval: '500ms', timeout: '250ms' }, { ttl: '1h30m' }],
          },
        ],
      },
      null,
      2,
    );
    const yaml = `services:
  - name: api
    port: 9000
    tags: [v1]
    meta: { version: v1 }
    upstreams: [db:15432, { service: cache, local_port: 16379, local_address: 127.0.0.2 }]
    checks:
      - { http: "https://127.0.0.1:9000/health", interval: 500ms, timeout: 250ms }
      - ttl: 1h30m
`;
    const fromJson = parseDefinitionFile('api.json', json).services;
    expect(fromJson).toEqual(parseDefinitionFile('api.yaml', yaml).services);
    expect(fromJson[0]!.upstreams[1]).toEqual({
      service: 'cache',
      localPort: 16379,
      localAddress: '127.0.0.2',
      loadBalancer: 'round_robin',
    });
    expect(fromJson[0]!.checks.map((c) => [c.id, c.intervalMs, c.timeoutMs, c.ttlMs])).toEqual([
      ['api-http', 500, 250, undefined],
      ['api-ttl', 10_000, 2_000, 5_400_000],
    ]);
  });

  it('accepts a byte-order mark, YAML anchors, and services: []', () => {
    expect(parseDefinitionFile('bom.json', '\uFEFF{"service":{"name":"a","port":1}}').services).toHaveLength(1);
    const anchors = `services:
  - name: a
    port: 1
    checks: &common
      - tcp: 127.0.0.1:1
  - name: b
    port: 2
    checks: *common
`;
    const { services } = parseDefinitionFile('anchors.yaml', anchors);
    expect(services.map((s) => s.checks[0]!.id)).toEqual(['a-tcp', 'b-tcp']);
    expect(parseDefinitionFile('none.yaml', 'services: []\n').services).toEqual([]);
  });

  it('parses the upstream shorthand on its own (for --upstream)', () => {
    expect(parseUpstreamShorthand('db:15432')).toEqual({ service: 'db', localPort: 15432 });
    expect(parseUpstreamShorthand('db')).toMatch(/SERVICE:LOCALPORT/);
    expect(parseUpstreamShorthand('DB:1')).toMatch(/not a valid service name/);
    expect(parseUpstreamShorthand('db:70000')).toMatch(/out of range/);
  });
});

describe('refusals name the file, line and column', () => {
  it('bad YAML syntax', () => {
    const e = refuse('/d/api.yaml', 'service:\n  name: api\n\tport: 9000\n');
    expect(e.message).toBe('/d/api.yaml:3:1: invalid YAML: Tabs are not allowed as indentation');
    expect(where(e)).toEqual({ line: 3, column: 1 });
    expect(e.exitCode).toBe(65);
    expect(refuse('a.yaml', 'service:\n  name: api\n  tags: [v1, v2\n  port: 1\n').message).toMatch(
      /^a\.yaml:4:\d+: invalid YAML: /,
    );
    expect(refuse('a.yaml', 'service:\n  name: "api\n').message).toBe(
      'a.yaml:3:1: invalid YAML: Missing closing "quote',
    );
  });

  it('duplicate keys in YAML and JSON', () => {
    const y = refuse('a.yaml', 'service:\n  name: a\n  port: 1\n  port: 2\n');
    expect(y.message).toMatch(/^a\.yaml:4:3: invalid YAML: .*unique/);
    const j = refuse('a.json', '{\n  "service": {"name": "a", "port": 1,\n    "port": 2}\n}\n');
    expect(j.message).toMatch(/^a\.json:3:5: invalid JSON: duplicate key/);
  });

  it('bad JSON syntax, with the position where JSON.parse stopped', () => {
    expect(refuse('a.json', '{\n  "service": {\n    "name": "a",\n  }\n}').message).toMatch(
      /^a\.json:4:3: invalid JSON: /,
    );
    expect(refuse('a.json', '{\n  "service": {"name": "a", "port": tru }\n}').message).toMatch(
      /^a\.json:2:3[6-9]: invalid JSON: Unexpected token/,
    );
    expect(refuse('a.json', '[1,\n 2,]').message).toMatch(/^a\.json:2:4: invalid JSON: /);
    expect(refuse('a.json', '{"service":\n').message).toMatch(/^a\.json:1:\d+: invalid JSON: unexpected end of input/);
  });

  it('unknown keys, pointing at the key and suggesting snake_case', () => {
    const e = refuse(
      'api.yaml',
      'service:\n  name: api\n  port: 9000\n  upstreams:\n    - service: db\n      localPort: 15432\n',
    );
    expect(e.message).toBe(
      "api.yaml:6:7: service.upstreams[0].localPort: unknown key 'localPort' (did you mean 'local_port'?) (and 1 more problem)",
    );
    const details = e.details as DefinitionErrorDetails;
    expect(details.issues).toEqual([
      {
        path: 'service.upstreams[0].localPort',
        message: "unknown key 'localPort' (did you mean 'local_port'?)",
        line: 6,
        column: 7,
      },
      { path: 'service.upstreams[0].local_port', message: 'is required', line: 5, column: 7 },
    ]);
    expect(refuse('t.yaml', 'service: { name: a, port: 1 }\nextra: 1\n').message).toBe(
      "t.yaml:2:1: extra: unknown key 'extra'",
    );
  });

  it('port out of range, in YAML and in JSON', () => {
    expect(refuse('p.yaml', 'service:\n  name: api\n  port: 70000\n').message).toBe(
      'p.yaml:3:9: service.port: must be at most 65535',
    );
    expect(refuse('p.json', '{\n  "services": [\n    {"name": "api", "port": 0}\n  ]\n}').message).toBe(
      'p.json:3:29: services[0].port: must be at least 1',
    );
    expect(refuse('p.yaml', 'service: { name: api, port: "9000" }').message).toBe(
      'p.yaml:1:29: service.port: must be a number, not "9000"',
    );
    expect(refuse('p.yaml', 'service:\n  name: api\n  port: 1\n  upstreams: [db:99999]\n').message).toBe(
      'p.yaml:4:15: service.upstreams[0]: local port 99999 is out of range 1-65535',
    );
  });

  it('bad durations', () => {
    const base = 'service:\n  name: api\n  port: 9000\n  checks:\n    - http: http://127.0.0.1:9000/\n';
    expect(refuse('d.yaml', `${base}      interval: 10x\n`).message).toBe(
      'd.yaml:6:17: service.checks[0].interval: "10x" is not a duration: use a number with a unit (500ms, 10s, 5m, 24h)',
    );
    expect(refuse('d.yaml', `${base}      interval: 10\n`).message).toBe(
      'd.yaml:6:17: service.checks[0].interval: needs a unit: write "10s" or "10ms", not 10',
    );
    expect(refuse('d.yaml', `${base}      timeout: 1ms\n`).message).toBe(
      'd.yaml:6:16: service.checks[0].timeout: must be between 10ms and 10m, not 1ms',
    );
    expect(
      refuse('d.yaml', 'service:\n  name: a\n  port: 1\n  checks:\n    - ttl: 10s\n      interval: 5s\n').message,
    ).toMatch(/^d\.yaml:6:17: service\.checks\[0\]\.interval: a ttl check has no interval/);
  });

  it('bad names', () => {
    expect(refuse('n.yaml', 'service:\n  name: API_Server\n  port: 1\n').message).toMatch(
      /^n\.yaml:2:9: service\.name: must be 1-63 lowercase letters/,
    );
    expect(refuse('n.yaml', 'service:\n  port: 1\n').message).toBe('n.yaml:1:1: service.name: is required');
    expect(refuse('n.yaml', 'services:\n  - port: 1\n').message).toBe('n.yaml:2:5: services[0].name: is required');
    const long = 'a'.repeat(60);
    expect(
      refuse('n.yaml', `service:\n  name: ${long}\n  port: 1\n  checks:\n    - tcp: 127.0.0.1:1\n`).message,
    ).toMatch(
      /^n\.yaml:5:7: service\.checks\[0\]: the check id made from the service name, 'a{60}-tcp', is too long: give this check an `id` \(and 1 more problem\)$/,
    );
  });

  it('duplicate ids: services in one file, and checks in one service', () => {
    const svc = refuse('dup.yaml', 'services:\n  - name: api\n    port: 1\n  - name: api\n    port: 2\n');
    expect(svc.message).toBe(
      "dup.yaml:4:11: services[1].name: service id 'api' is already defined at services[0] in this file: give one of them another `id`",
    );
    const chk = refuse(
      'dup.yaml',
      'service:\n  name: api\n  port: 1\n  checks:\n    - { tcp: "127.0.0.1:1", id: c }\n    - { ttl: 5s, id: c }\n',
    );
    expect(chk.message).toBe("dup.yaml:6:22: service.checks[1].id: check id 'c' is already used by checks[0]");
  });

  it('checks with no kind, two kinds, or a bad target', () => {
    const base = 'service:\n  name: a\n  port: 1\n  checks:\n';
    expect(refuse('c.yaml', `${base}    - interval: 5s\n`).message).toBe(
      'c.yaml:5:7: service.checks[0]: a check needs one of http:, tcp:, exec: or ttl:',
    );
    expect(refuse('c.yaml', `${base}    - { http: "http://x/", tcp: "x:1" }\n`).message).toBe(
      'c.yaml:5:7: service.checks[0]: a check has one kind, this one has http and tcp',
    );
    expect(refuse('c.yaml', `${base}    - http: ftp://x/\n`).message).toBe(
      'c.yaml:5:13: service.checks[0].http: the URL must start with http:// or https:// (e.g. http://127.0.0.1:9000/health)',
    );
    expect(refuse('c.yaml', `${base}    - tcp: localhost\n`).message).toBe(
      'c.yaml:5:12: service.checks[0].tcp: expected host:port (e.g. 127.0.0.1:9000)',
    );
  });

  it('wrong types say what was written', () => {
    expect(refuse('t.yaml', 'service:\n  name: a\n  port: 1\n  meta:\n    version: 2\n').message).toBe(
      't.yaml:5:14: service.meta.version: must be a string, not 2; quote it: "2"',
    );
    expect(refuse('t.yaml', 'service:\n  name: a\n  port: 1\n  proxy: yes\n').message).toBe(
      't.yaml:4:10: service.proxy: must be true or false, not "yes"',
    );
    expect(refuse('t.yaml', 'service:\n  name: a\n  port: 1\n  protocol: grpc\n').message).toBe(
      't.yaml:4:13: service.protocol: must be one of "http", "tcp", not "grpc"',
    );
    expect(refuse('t.yaml', 'service:\n  name: a\n  port: 1\n  upstreams: [15432]\n').message).toBe(
      't.yaml:4:15: service.upstreams[0]: must be "SERVICE:LOCALPORT" or a mapping with service and local_port, not 15432',
    );
  });

  it('limits enforced by the wire schema map back to the file', () => {
    const tags = Array.from({ length: 33 }, (_, i) => `t${i}`).join(', ');
    expect(refuse('w.yaml', `service:\n  name: a\n  port: 1\n  tags: [${tags}]\n`).message).toBe(
      'w.yaml:4:9: service.tags: may have at most 32 items',
    );
    const ups = Array.from({ length: 65 }, (_, i) => `u:${i + 1}`).join(', ');
    expect(refuse('w.yaml', `service:\n  name: a\n  port: 1\n  upstreams: [${ups}]\n`).message).toBe(
      'w.yaml:4:14: service.upstreams: may have at most 64 items',
    );
  });

  it('a root that is not a mapping, an empty file, or neither service nor services', () => {
    expect(refuse('r.yaml', '- name: a\n  port: 1\n').message).toBe(
      "r.yaml:1:1: the file must be a mapping with 'service:' (one service) or 'services:' (a list), not a list",
    );
    expect(refuse('r.json', '"api"').message).toBe(
      "r.json:1:1: the file must be a mapping with 'service:' (one service) or 'services:' (a list), not \"api\"",
    );
    expect(refuse('r.yaml', '# nothing yet\n').message).toBe(
      "r.yaml: the file is empty: it must hold 'service:' (one service) or 'services:' (a list)",
    );
    expect(refuse('r.yaml', 'name: a\n').message).toBe("r.yaml:1:1: name: unknown key 'name' (and 1 more problem)");
    expect(refuse('r.yaml', 'service: { name: a, port: 1 }\nservices: []\n').message).toBe(
      "r.yaml:2:1: services: use either 'service:' or 'services:', not both",
    );
    expect(refuse('r.yaml', 'a: 1\n---\nb: 2\n').message).toMatch(/^r\.yaml:2:1: invalid YAML: /);
  });

  it('too big, and other extensions', () => {
    const e = refuse('big.yaml', `service: { name: a, port: 1 }\n${'#'.repeat(MAX_DEFINITION_BYTES)}\n`);
    expect(e.message).toBe('big.yaml: file is larger than the 1 MiB limit for definition files');
    expect(where(e)).toEqual({ line: undefined, column: undefined });
    expect(refuse('small.yaml', 'service: { name: a, port: 1 }\n', { maxBytes: 10 }).message).toMatch(
      /larger than the 1 KiB limit/,
    );
    expect(refuse('api.toml', 'x').message).toMatch(/^api\.toml: unsupported file type '\.toml'/);
  });

  it('definitionErrorOf gives message, line and column for reporting', () => {
    const e = refuse('p.yaml', 'service:\n  name: api\n  port: 70000\n');
    expect(definitionErrorOf(e)).toEqual({
      message: 'p.yaml:3:9: service.port: must be at most 65535',
      line: 3,
      column: 9,
    });
    expect(definitionErrorOf(new Error('x'))).toBeUndefined();
  });
});

describe('readDefinitionFile (real files)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-defs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads YAML and JSON files from disk, also through a symlink', async () => {
    await writeFile(join(dir, 'api.yaml'), FULL);
    await writeFile(join(dir, 'web.json'), '{"service": {"name": "web", "port": 8080, "upstreams": ["api:18000"]}}');
    await symlink(join(dir, 'web.json'), join(dir, 'link.json'));
    expect((await readDefinitionFile(join(dir, 'api.yaml'))).services[0]!.checks).toHaveLength(4);
    expect((await readDefinitionFile(join(dir, 'web.json'))).services[0]!.upstreams[0]!.localPort).toBe(18000);
    expect((await readDefinitionFile(join(dir, 'link.json'))).services[0]!.name).toBe('web');
  });

  it('missing file is NOT_FOUND; a directory, a big file, binary data and other extensions are INVALID_FILE', async () => {
    await expect(readDefinitionFile(join(dir, 'nope.yaml'))).rejects.toMatchObject({ code: 'MESH_ERR_NOT_FOUND' });
    await mkdir(join(dir, 'sub.yaml'));
    await expect(readDefinitionFile(join(dir, 'sub.yaml'))).rejects.toMatchObject({
      code: 'MESH_ERR_INVALID_FILE',
      message: `${join(dir, 'sub.yaml')}: not a regular file`,
    });
    await writeFile(join(dir, 'big.yaml'), Buffer.alloc(MAX_DEFINITION_BYTES + 1, 0x23));
    await expect(readDefinitionFile(join(dir, 'big.yaml'))).rejects.toMatchObject({
      code: 'MESH_ERR_INVALID_FILE',
      message: expect.stringMatching(/larger than the 1 MiB limit/),
    });
    await writeFile(join(dir, 'bin.yaml'), Buffer.from([0x73, 0x3a, 0xff, 0xfe, 0x0a]));
    await expect(readDefinitionFile(join(dir, 'bin.yaml'))).rejects.toMatchObject({
      code: 'MESH_ERR_INVALID_FILE',
      message: `${join(dir, 'bin.yaml')}: the file is not UTF-8 text`,
    });
    await writeFile(join(dir, 'api.txt'), 'service: {name: a, port: 1}');
    await expect(readDefinitionFile(join(dir, 'api.txt'))).rejects.toMatchObject({
      code: 'MESH_ERR_INVALID_FILE',
      message: expect.stringMatching(/unsupported file type '\.txt'/),
    });
  });

  it('refuses with the line of the problem when read from disk', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      'service:\n  name: api\n  port: 9000\n  checks:\n    - http: http://127.0.0.1:9000/\n      interval: soon\n',
    );
    await expect(readDefinitionFile(join(dir, 'bad.yaml'))).rejects.toMatchObject({
      code: 'MESH_ERR_INVALID_FILE',
      message: `${join(dir, 'bad.yaml')}:6:17: service.checks[0].interval: "soon" is not a duration: use a number with a unit (500ms, 10s, 5m, 24h)`,
      details: { line: 6, column: 17 },
    });
  });
});
