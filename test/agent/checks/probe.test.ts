import { describe, expect, it } from 'vitest';
import { runProbe } from '../../../src/agent/checks/probe.js';

const PREFIX = 'TEST probe';

describe('runProbe (the frame of the HTTP and TCP checks)', () => {
  it('settles on the first result, ignores later ones, and tears down once', async () => {
    let teardowns = 0;
    const r = await runProbe({ prefix: PREFIX, timeoutMs: 60_000 }, ({ finish, onSettled }) => {
      onSettled(() => teardowns++);
      finish({ status: 'passing', output: 'first' });
      finish({ status: 'critical', output: 'second' });
    });
    expect(r).toEqual({ status: 'passing', output: 'first' });
    expect(teardowns).toBe(1);
  });

  it('tears down at once what is registered after the run settled', async () => {
    let torn = false;
    await runProbe({ prefix: PREFIX, timeoutMs: 60_000 }, ({ finish, onSettled }) => {
      finish({ status: 'passing', output: '' });
      onSettled(() => (torn = true));
    });
    expect(torn).toBe(true);
  });

  it('reports a timeout when the probe never answers, and tears it down', async () => {
    let torn = false;
    const r = await runProbe({ prefix: PREFIX, timeoutMs: 20 }, ({ onSettled }) => onSettled(() => (torn = true)));
    expect(r).toEqual({ status: 'critical', output: `${PREFIX}: timed out after 20ms` });
    expect(torn).toBe(true);
  });

  it("takes the check's own timeout result when it gives one", async () => {
    const r = await runProbe(
      { prefix: PREFIX, timeoutMs: 20, timedOut: () => ({ status: 'warning', output: 'partial' }) },
      () => undefined,
    );
    expect(r).toEqual({ status: 'warning', output: 'partial' });
  });

  it('is cancelled by the signal, before it starts or while it runs', async () => {
    const before = new AbortController();
    before.abort();
    let started = false;
    expect(
      await runProbe({ prefix: PREFIX, timeoutMs: 60_000, signal: before.signal }, () => (started = true)),
    ).toEqual({ status: 'critical', output: `${PREFIX}: check cancelled` });
    expect(started).toBe(false);

    const during = new AbortController();
    let torn = false;
    const r = runProbe({ prefix: PREFIX, timeoutMs: 60_000, signal: during.signal }, ({ onSettled }) =>
      onSettled(() => (torn = true)),
    );
    during.abort();
    expect(await r).toEqual({ status: 'critical', output: `${PREFIX}: check cancelled` });
    expect(torn).toBe(true);
  });
});
