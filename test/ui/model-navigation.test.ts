import { describe, expect, it } from 'vitest';
import type { Key } from 'ink';
import { serviceDetail, serviceRows } from '../../src/ui/model.js';
import { INITIAL_NAV, keyAction, navigate, type NavState } from '../../src/ui/navigation.js';
import { demoSnapshot, instance } from './fixtures.js';

describe('model', () => {
  it('joins the catalog with the metrics per service, and has none where metrics are missing', () => {
    const rows = serviceRows(demoSnapshot());
    expect(rows.map((r) => [r.name, r.healthy, r.total, r.metrics?.rps ?? null])).toEqual([
      ['api', 1, 2, 20],
      ['db', 1, 1, null],
      // Nothing in the mesh calls web: no figures rather than zeros.
      ['web', 1, 1, null],
    ]);
    expect(serviceRows(demoSnapshot({ metrics: null })).every((r) => r.metrics === null)).toBe(true);
  });

  it('matches instance metrics by node and id, and upstreams declared or measured', () => {
    const api = serviceDetail(demoSnapshot(), 'api')!;
    expect(api.instances.map((i) => [i.node, i.state, i.metrics?.rps ?? null])).toEqual([
      // Callers' attempts to each instance.
      ['host-b', 'critical', 2],
      ['host-a', 'passing', 18],
    ]);
    const web = serviceDetail(demoSnapshot(), 'web')!;
    expect(web.upstreams).toHaveLength(1);
    expect(web.upstreams[0]).toMatchObject({
      service: 'api',
      local: '127.0.0.1:18000',
      endpoints: [{ endpoint: 'api@host-a' }, { endpoint: 'api@host-b' }],
    });
    // Declared but never measured: listed, without figures.
    const quiet = serviceDetail(demoSnapshot({ metrics: null }), 'web')!;
    expect(quiet.upstreams[0]).toMatchObject({ service: 'api', metrics: null, endpoints: [] });
    expect(serviceDetail(demoSnapshot(), 'nope')).toBeNull();
  });

  it('explains an instance by its worst check, counting a declared check with no report as critical', () => {
    const check = {
      id: 'late',
      kind: 'ttl' as const,
      target: '',
      intervalMs: 1000,
      timeoutMs: 100,
      successBeforePassing: 1,
      failuresBeforeCritical: 1,
    };
    const snap = demoSnapshot({
      services: [{ name: 'x', instances: 2, healthy: 0, tags: [], protocols: [] }],
      instances: [
        instance('x', 'host-a', { checks: [check], checkStates: {} }),
        instance('x', 'host-b', {
          checkStates: {
            a: { status: 'passing', output: 'ok', updatedAt: '' },
            b: { status: 'warning', output: 'slow', updatedAt: '' },
          },
        }),
      ],
    });
    const d = serviceDetail(snap, 'x')!;
    expect(d.instances.find((i) => i.node === 'host-a')!.check).toEqual({
      id: 'late',
      status: 'critical',
      output: 'no result reported yet',
      others: 0,
    });
    expect(d.instances.find((i) => i.node === 'host-b')!.check).toEqual({
      id: 'b',
      status: 'warning',
      output: 'slow',
      others: 1,
    });
  });
});

const key = (over: Partial<Key> = {}): Key =>
  ({
    upArrow: false,
    downArrow: false,
    leftArrow: false,
    rightArrow: false,
    pageDown: false,
    pageUp: false,
    home: false,
    end: false,
    return: false,
    escape: false,
    ctrl: false,
    shift: false,
    tab: false,
    backspace: false,
    delete: false,
    meta: false,
    ...over,
  }) as Key;

describe('navigation', () => {
  const names = ['api', 'db', 'web'];
  const run = (actions: Parameters<typeof navigate>[1][], from: NavState = INITIAL_NAV) =>
    actions.reduce((s, a) => navigate(s, a, names), from);

  it('maps keys to actions', () => {
    expect(keyAction('', key({ downArrow: true }))).toBe('down');
    expect(keyAction('', key({ tab: true, shift: true }))).toBe('prev');
    expect(keyAction('', key({ return: true }))).toBe('open');
    expect(keyAction('', key({ escape: true }))).toBe('back');
    expect(keyAction('q', key())).toBe('quit');
    expect(keyAction('?', key())).toBe('help');
    expect(keyAction('x', key())).toBeUndefined();
  });

  it('moves the selection, clamping arrows and wrapping tab', () => {
    expect(run(['down']).selected).toBe('db');
    expect(run(['up']).selected).toBe('api');
    expect(run(['down', 'down', 'down']).selected).toBe('web');
    expect(run(['prev']).selected).toBe('web');
    expect(run(['next', 'next', 'next']).selected).toBe('api');
  });

  it('opens the selected service and goes back', () => {
    expect(run(['down', 'open'])).toEqual({ mode: 'detail', help: false, selected: 'db' });
    expect(run(['down', 'open', 'back'])).toEqual({ mode: 'overview', help: false, selected: 'db' });
    expect(navigate(INITIAL_NAV, 'open', [])).toEqual(INITIAL_NAV);
  });

  it('treats help as modal', () => {
    const help = run(['help']);
    expect(help.help).toBe(true);
    expect(navigate(help, 'down', names)).toEqual(help);
    expect(navigate(help, 'back', names).help).toBe(false);
    expect(navigate(help, 'help', names).help).toBe(false);
  });

  it('keeps a selection that left the list from breaking moves', () => {
    expect(navigate({ ...INITIAL_NAV, selected: 'gone' }, 'down', names).selected).toBe('db');
  });
});
