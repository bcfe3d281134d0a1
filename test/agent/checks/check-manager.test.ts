import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CheckManager,
  type CheckChange,
  type CheckDefinition,
  type CheckRun,
} from '../../../src/agent/checks/index.js';
import { checkDef, closedPort, processRunning, startHttpServer, waitFor, type TestServer } from './helpers.js';

/**
 * One real HTTP server whose answers the tests script per path: `queue(path, codes)` makes
 * the next requests to `path` answer with those codes, then `always(path, code)` applies.
 */
let server: TestServer;
const queued = new Map<string, number[]>();
const steady = new Map<string, number>();
const queue = (path: string, ...codes: number[]): void =>
  void queued.set(path, [...(queued.get(path) ?? []), ...codes]);
const always = (path: string, code: number): void => void steady.set(path, code);

let dir = '';
let path = '';
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-scheduler-'));
  server = await startHttpServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const code = queued.get(p)?.shift() ?? steady.get(p) ?? 200;
    res.writeHead(code);
    res.end(`answer ${code}`);
  });
});
afterAll(async () => {
  await server.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let manager: CheckManager;
let changes: CheckChange[];
let runs: CheckRun[];

afterEach(async () => {
  await manager?.stop();
});

function fresh(): void {
  manager = new CheckManager({ maxFirstRunDelayMs: 50 });
  changes = [];
  runs = [];
  manager.on('change', (c) => changes.push(c));
  manager.on('run', (r) => runs.push(r));
  path = `/p${++n}`;
}

const httpCheck = (fields: Partial<CheckDefinition> = {}): CheckDefinition =>
  checkDef({
    id: 'web-http',
    kind: 'http',
    target: `${server.url}${path}`,
    intervalMs: 100,
    timeoutMs: 2_000,
    ...fields,
  });

const runsOf = (checkId: string): CheckRun[] => runs.filter((r) => r.checkId === checkId);
const state = (instanceId: string, checkId: string) => manager.states(instanceId).find((s) => s.checkId === checkId);

describe('CheckManager', () => {
  it('starts critical, reports the first pass once and never repeats a stable state', async () => {
    fresh();
    manager.set('web-1', [httpCheck()]);
    expect(manager.states()).toEqual([
      expect.objectContaining({
        instanceId: 'web-1',
        checkId: 'web-http',
        kind: 'http',
        status: 'critical',
        output: '',
        lastRunAt: null,
        consecutiveSuccesses: 0,
      }),
    ]);
    await waitFor(() => runs.length >= 6, 'six runs');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      instanceId: 'web-1',
      checkId: 'web-http',
      kind: 'http',
      previous: 'critical',
      status: 'passing',
    });
    expect(changes[0]!.output).toContain('200 OK');
    const s = state('web-1', 'web-http')!;
    expect(s.status).toBe('passing');
    expect(s.consecutiveSuccesses).toBeGreaterThanOrEqual(6);
    expect(s.lastRunAt).not.toBeNull();
  });

  it('emits nothing while a check stays critical, but keeps the latest output', async () => {
    fresh();
    always(path, 503);
    manager.set('web-1', [httpCheck()]);
    await waitFor(() => runs.length >= 3, 'three runs');
    expect(changes).toEqual([]);
    expect(state('web-1', 'web-http')).toMatchObject({ status: 'critical', consecutiveFailures: runs.length });
    expect(state('web-1', 'web-http')!.output).toContain('503');
  });

  it('with failuresBeforeCritical 2: one failure does not flip, two in a row do', async () => {
    fresh();
    manager.set('web-1', [httpCheck({ failuresBeforeCritical: 2 })]);
    await waitFor(() => changes.length === 1, 'passing');

    queue(path, 500);
    const mark = runs.length;
    // The lone failure, then a success after it.
    await waitFor(
      () =>
        runs
          .slice(mark)
          .some(
            (r, i, after) =>
              r.result.status === 'critical' && after.slice(i + 1).some((x) => x.result.status === 'passing'),
          ),
      'a failure followed by a success',
    );
    expect(changes).toHaveLength(1);
    expect(runs.slice(mark).every((r) => r.status === 'passing')).toBe(true);
    expect(state('web-1', 'web-http')!.status).toBe('passing');

    queue(path, 500, 500);
    await waitFor(() => changes.length === 2, 'critical');
    expect(changes[1]).toMatchObject({ previous: 'passing', status: 'critical' });
    expect(changes[1]!.output).toContain('500 Internal Server Error');
    // The flip came on the second failure in a row.
    const flip = runs.findIndex((r, i) => i >= mark && r.status === 'critical');
    expect(runs[flip]!.result.status).toBe('critical');
    expect(runs[flip - 1]!.result.status).toBe('critical');
    expect(runs[flip - 1]!.status).toBe('passing');
  });

  it('with successBeforePassing 3: flips to passing on the third success in a row', async () => {
    fresh();
    manager.set('web-1', [httpCheck({ successBeforePassing: 3 })]);
    await waitFor(() => changes.length === 1, 'passing');
    expect(runs.slice(0, 3).map((r) => [r.result.status, r.status])).toEqual([
      ['passing', 'critical'],
      ['passing', 'critical'],
      ['passing', 'passing'],
    ]);

    // A failure (threshold 1) flips at once; the way back needs three successes again.
    queue(path, 500);
    await waitFor(() => changes.length === 3, 'critical, then passing again');
    const back = runs.findIndex((r) => r.result.status === 'critical');
    expect(runs.slice(back, back + 4).map((r) => r.status)).toEqual(['critical', 'critical', 'critical', 'passing']);
    expect(changes.map((c) => c.status)).toEqual(['passing', 'critical', 'passing']);
  });

  it('reports warning at once, whatever the thresholds', async () => {
    fresh();
    manager.set('web-1', [httpCheck({ failuresBeforeCritical: 3, successBeforePassing: 1 })]);
    await waitFor(() => changes.length === 1, 'passing');
    queue(path, 429);
    await waitFor(() => changes.length === 3, 'warning, then passing again');
    expect(changes.map((c) => [c.previous, c.status])).toEqual([
      ['critical', 'passing'],
      ['passing', 'warning'],
      ['warning', 'passing'],
    ]);
    expect(changes[1]!.output).toContain('429');
  });

  it('keeps state and counters when set() gets an unchanged definition', async () => {
    fresh();
    const def = httpCheck({ successBeforePassing: 2 });
    manager.set('web-1', [def]);
    await waitFor(() => (state('web-1', 'web-http')?.consecutiveSuccesses ?? 0) >= 3, 'three successes');
    const before = state('web-1', 'web-http')!;

    manager.set('web-1', [structuredClone(def)]);
    const after = state('web-1', 'web-http')!;
    expect(after.status).toBe('passing');
    expect(after.statusSince).toBe(before.statusSince);
    expect(after.consecutiveSuccesses).toBeGreaterThanOrEqual(before.consecutiveSuccesses);
    // Had the check restarted, its counter would have begun at zero with two successes needed.
    const count = runs.length;
    await waitFor(() => runs.length >= count + 2, 'two more runs');
    expect(state('web-1', 'web-http')!.consecutiveSuccesses).toBeGreaterThan(before.consecutiveSuccesses);
    expect(changes).toHaveLength(1);
  });

  it('restarts a changed definition, keeping its reported status until the new one decides', async () => {
    fresh();
    manager.set('web-1', [httpCheck()]);
    await waitFor(() => changes.length === 1, 'passing');

    const oldPath = path;
    path = `/p${++n}`;
    always(path, 500);
    manager.set('web-1', [httpCheck()]); // same id, new target
    expect(state('web-1', 'web-http')).toMatchObject({
      status: 'passing',
      consecutiveSuccesses: 0,
      target: `${server.url}${path}`,
    });

    await waitFor(() => changes.length === 2, 'critical from the new target');
    expect(changes[1]).toMatchObject({ previous: 'passing', status: 'critical' });
    // The old target is no longer polled.
    const oldHits = server.hits(oldPath);
    const newHits = server.hits(path);
    await waitFor(() => server.hits(path) >= newHits + 3, 'three more runs');
    expect(server.hits(oldPath)).toBe(oldHits);
  });

  it('removes checks left out of set(), and whole instances with remove()', async () => {
    fresh();
    const pathA = path;
    const pathB = `/p${++n}`;
    const a = checkDef({ id: 'a', kind: 'http', target: `${server.url}${pathA}`, intervalMs: 100 });
    const b = checkDef({ id: 'b', kind: 'http', target: `${server.url}${pathB}`, intervalMs: 100 });
    manager.set('web-1', [a, b]);
    manager.set('web-2', [checkDef({ id: 'ttl', kind: 'ttl', ttlMs: 60_000 })]);
    await waitFor(() => runsOf('a').length >= 1 && runsOf('b').length >= 1, 'both checks to run');

    manager.set('web-1', [a]);
    expect(manager.states('web-1').map((s) => s.checkId)).toEqual(['a']);
    const bHits = server.hits(pathB);
    const aHits = server.hits(pathA);
    await waitFor(() => server.hits(pathA) >= aHits + 3, 'three more runs of a');
    expect(server.hits(pathB)).toBe(bHits);

    expect(manager.remove('web-1')).toBe(true);
    expect(manager.remove('web-1')).toBe(false);
    expect(manager.states().map((s) => `${s.instanceId}/${s.checkId}`)).toEqual(['web-2/ttl']);
    manager.set('web-2', []);
    expect(manager.states()).toEqual([]);
  });

  it('refuses invalid definitions and changes nothing', () => {
    fresh();
    manager.set('web-1', [checkDef({ id: 'keep', kind: 'ttl', ttlMs: 60_000 })]);
    const before = manager.states();
    const bad: Array<[string, readonly CheckDefinition[], RegExp]> = [
      [
        'web-1',
        [checkDef({ id: 'x', kind: 'ttl', ttlMs: 60_000 }), checkDef({ id: 'x', kind: 'ttl', ttlMs: 60_000 })],
        /two checks with id 'x'/,
      ],
      ['web-1', [checkDef({ id: 'y', kind: 'ttl' })], /a TTL check needs ttlMs/],
      [
        'web-1',
        [{ ...checkDef({ id: 'z', kind: 'tcp', target: '127.0.0.1:1' }), intervalMs: 5 }],
        /check 'z': intervalMs: /,
      ],
      ['', [checkDef({ id: 'x', kind: 'ttl', ttlMs: 60_000 })], /instance id must not be empty/],
    ];
    for (const [instance, defs, message] of bad) {
      expect(() => manager.set(instance, defs)).toThrow(
        expect.objectContaining({ code: 'MESH_ERR_INVALID_ARGUMENT', message: expect.stringMatching(message) }),
      );
    }
    expect(manager.states()).toEqual(before);
  });

  it('never overlaps runs of one check', async () => {
    fresh();
    // The command holds a lock for longer than the interval; an overlapping run would find it taken.
    const lock = join(dir, `lock-${n}`);
    manager.set('job-1', [
      checkDef({
        id: 'job-exec',
        kind: 'exec',
        target: `mkdir ${lock} || exit 2; sleep 0.3; rmdir ${lock}`,
        intervalMs: 100,
        timeoutMs: 10_000,
      }),
    ]);
    await waitFor(() => runs.length >= 4, 'four runs', 20_000);
    expect(runs.map((r) => r.result)).toEqual(runs.map(() => ({ status: 'passing', output: 'exit code 0' })));
  });

  it('keeps checking when a change listener throws', async () => {
    fresh();
    manager.on('change', () => {
      throw new Error('listener bug');
    });
    manager.set('web-1', [httpCheck()]);
    await waitFor(() => runs.length >= 3, 'three runs');
    expect(changes).toHaveLength(1);
    expect(state('web-1', 'web-http')!.status).toBe('passing');
  });

  it('runs tcp and exec checks too', async () => {
    fresh();
    const port = await closedPort();
    manager.set('svc-1', [
      checkDef({ id: 'svc-tcp', kind: 'tcp', target: `127.0.0.1:${server.port}`, intervalMs: 100 }),
      checkDef({ id: 'svc-tcp-2', kind: 'tcp', target: `127.0.0.1:${port}`, intervalMs: 100 }),
      checkDef({ id: 'svc-exec', kind: 'exec', target: 'echo degraded; exit 1', intervalMs: 100 }),
    ]);
    await waitFor(() => changes.length === 2 && runsOf('svc-tcp-2').length >= 1, 'the tcp and exec checks to decide');
    expect(manager.states('svc-1').map((s) => [s.checkId, s.status])).toEqual([
      ['svc-exec', 'warning'],
      ['svc-tcp', 'passing'],
      ['svc-tcp-2', 'critical'],
    ]);
    expect(state('svc-1', 'svc-tcp-2')!.output).toContain('connection refused');
  });

  it('stop() cancels runs in flight, clears every timer and refuses further use', async () => {
    fresh();
    const pidFile = join(dir, `stop-${n}.pid`);
    manager.set('web-1', [httpCheck()]);
    manager.set('job-1', [
      checkDef({
        id: 'job-exec',
        kind: 'exec',
        target: `sleep 100 & echo $! > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; wait`,
        intervalMs: 100,
        timeoutMs: 60_000,
      }),
    ]);
    manager.set('ttl-1', [checkDef({ id: 'beat', kind: 'ttl', ttlMs: 300 })]);
    await waitFor(() => existsSync(pidFile) && runsOf('web-http').length >= 2, 'the checks to be running');
    const pid = Number(await readFile(pidFile, 'utf8'));

    manager.ttlUpdate('beat', 'passing');
    await manager.stop();
    expect(processRunning(pid)).toBe(false);
    expect(manager.states()).toEqual([]);
    const eventsAtStop = changes.length + runs.length;
    const hitsAtStop = server.hits(path);

    // Watch long enough for the stopped checks to have fired many times over: a second
    // manager's check on the same interval runs five times (400ms of intervals at least),
    // by which time the TTL (300ms) would have expired.
    const witness = new CheckManager({ maxFirstRunDelayMs: 0 });
    const witnessPath = `/p${++n}`;
    let witnessRuns = 0;
    witness.on('run', () => witnessRuns++);
    witness.set('w', [checkDef({ id: 'w', kind: 'http', target: `${server.url}${witnessPath}`, intervalMs: 100 })]);
    try {
      await waitFor(() => witnessRuns >= 5, 'the witness to run five times');
    } finally {
      await witness.stop();
    }
    expect(server.hits(path)).toBe(hitsAtStop);
    expect(changes.length + runs.length).toBe(eventsAtStop);

    expect(() => manager.set('web-1', [httpCheck()])).toThrow(
      expect.objectContaining({ code: 'MESH_ERR_UNAVAILABLE' }),
    );
    await manager.stop(); // idempotent
  });
});
