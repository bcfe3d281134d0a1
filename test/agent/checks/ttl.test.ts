import { afterEach, describe, expect, it } from 'vitest';
import { CheckManager, TtlCheck, type CheckChange, type CheckResult } from '../../../src/agent/checks/index.js';
import { checkDef, waitFor } from './helpers.js';

describe('TtlCheck', () => {
  const made: TtlCheck[] = [];
  const ttl = (ms: number, onExpire: (r: CheckResult) => void): TtlCheck => {
    const t = new TtlCheck(ms, onExpire);
    made.push(t);
    return t;
  };
  afterEach(() => {
    for (const t of made.splice(0)) t.stop();
  });

  it('turns critical when the TTL passes without an update', async () => {
    const expired: CheckResult[] = [];
    ttl(150, (r) => expired.push(r)).start();
    await waitFor(() => expired.length > 0, 'the TTL to expire');
    expect(expired).toEqual([{ status: 'critical', output: 'TTL expired: no update within 150ms' }]);
  });

  it('returns the reported state, with the note as output', () => {
    const t = ttl(60_000, () => {});
    expect(t.update('warning', 'disk 91% full')).toEqual({ status: 'warning', output: 'disk 91% full' });
    expect(t.update('passing')).toEqual({ status: 'passing', output: '' });
  });

  it('restarts the countdown on every update', async () => {
    // a is armed first, then b, then a again. Timers of equal length fire in the order they
    // were armed, so a expiring after b shows that the update re-armed it.
    const order: string[] = [];
    const a = ttl(300, () => order.push('a'));
    const b = ttl(300, () => order.push('b'));
    a.start();
    b.start();
    a.update('passing');
    await waitFor(() => order.length === 2, 'both TTLs to expire');
    expect(order).toEqual(['b', 'a']);
  });

  it('does not expire once stopped', async () => {
    const order: string[] = [];
    const stopped = ttl(100, () => order.push('stopped'));
    const witness = ttl(100, () => order.push('witness'));
    stopped.start();
    witness.start();
    stopped.stop();
    stopped.update('passing'); // a late report must not re-arm a stopped check
    await waitFor(() => order.includes('witness'), 'the witness TTL to expire');
    expect(order).toEqual(['witness']);
  });
});

describe('TTL checks in the CheckManager', () => {
  let manager: CheckManager | undefined;
  afterEach(async () => {
    await manager?.stop();
    manager = undefined;
  });

  it('follows pass/warn/fail reports at once and turns critical on expiry', async () => {
    manager = new CheckManager();
    const changes: CheckChange[] = [];
    manager.on('change', (c) => changes.push(c));
    // Thresholds do not apply to reports.
    manager.set('api-1', [
      checkDef({ id: 'api-ttl', kind: 'ttl', ttlMs: 400, successBeforePassing: 3, failuresBeforeCritical: 3 }),
    ]);
    expect(manager.states()[0]).toMatchObject({ status: 'critical', lastRunAt: null });

    const view = manager.ttlUpdate('api-ttl', 'passing', 'all good');
    expect(view).toMatchObject({ instanceId: 'api-1', checkId: 'api-ttl', status: 'passing', output: 'all good' });
    expect(changes.map((c) => [c.previous, c.status, c.output])).toEqual([['critical', 'passing', 'all good']]);

    manager.ttlUpdate('api-ttl', 'passing', 'still good');
    expect(changes).toHaveLength(1); // same status: no event
    expect(manager.states()[0]!.output).toBe('still good');

    manager.ttlUpdate('api-ttl', 'warning', 'slow');
    expect(changes.at(-1)).toMatchObject({ previous: 'passing', status: 'warning', output: 'slow', kind: 'ttl' });

    await waitFor(() => changes.length === 3, 'the TTL to expire');
    expect(changes[2]).toMatchObject({
      previous: 'warning',
      status: 'critical',
      output: 'TTL expired: no update within 400ms',
    });

    manager.ttlUpdate('api-ttl', 'passing');
    expect(changes.at(-1)).toMatchObject({ previous: 'critical', status: 'passing' });
  });

  it('refuses reports for unknown, ambiguous and non-TTL checks', () => {
    manager = new CheckManager();
    manager.set('a-1', [
      checkDef({ id: 'shared', kind: 'ttl', ttlMs: 60_000 }),
      checkDef({ id: 'web', kind: 'tcp', target: '127.0.0.1:1', intervalMs: 60_000 }),
    ]);
    manager.set('a-2', [checkDef({ id: 'shared', kind: 'ttl', ttlMs: 60_000 })]);

    expect(() => manager!.ttlUpdate('nope', 'passing')).toThrow(
      expect.objectContaining({ code: 'MESH_ERR_NOT_FOUND', message: "no check 'nope'" }),
    );
    expect(() => manager!.ttlUpdate('web', 'passing')).toThrow(
      expect.objectContaining({
        code: 'MESH_ERR_INVALID_ARGUMENT',
        message: "check 'web' is of kind tcp; only TTL checks take pass/warn/fail reports",
      }),
    );
    expect(() => manager!.ttlUpdate('shared', 'passing')).toThrow(
      expect.objectContaining({
        code: 'MESH_ERR_INVALID_ARGUMENT',
        message: "check id 'shared' is used by instances 'a-1', 'a-2'",
      }),
    );
    expect(() => manager!.ttlUpdate('shared', 'bogus' as 'passing', '', { instanceId: 'a-1' })).toThrow(
      expect.objectContaining({ code: 'MESH_ERR_INVALID_ARGUMENT' }),
    );
    expect(() => manager!.ttlUpdate('shared', 'passing', '', { instanceId: 'a-3' })).toThrow(
      expect.objectContaining({ code: 'MESH_ERR_NOT_FOUND' }),
    );

    expect(manager.ttlUpdate('shared', 'passing', 'ok', { instanceId: 'a-2' })).toMatchObject({
      instanceId: 'a-2',
      status: 'passing',
    });
    const states = manager.states();
    expect(states.find((s) => s.instanceId === 'a-1' && s.checkId === 'shared')!.status).toBe('critical');
  });
});
