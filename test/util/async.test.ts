import { describe, expect, it } from 'vitest';
import { ignore, sleep } from '../../src/util/async.js';

/** Timers that keep the event loop alive right now. */
function liveTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('sleep', () => {
  it('resolves after its time, holding the process open meanwhile', async () => {
    const before = liveTimers();
    const done = sleep(20);
    expect(liveTimers()).toBe(before + 1);
    await expect(done).resolves.toBeUndefined();
    expect(liveTimers()).toBe(before);
  });

  it('with unref, it still resolves but does not keep the process alive', async () => {
    const before = liveTimers();
    const done = sleep(20, { unref: true });
    expect(liveTimers()).toBe(before);
    await expect(done).resolves.toBeUndefined();
  });
});

describe('ignore', () => {
  it('takes anything and returns nothing, so it can stand for any listener or catch handler', async () => {
    expect(ignore()).toBeUndefined();
    await expect(Promise.reject(new Error('x')).catch(ignore)).resolves.toBeUndefined();
  });
});
