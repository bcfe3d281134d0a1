import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, eventually, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/faults.js';
import { RegistryClient } from '../../src/api/registry-client.js';
import { recordFault } from './record.js';

describe('the registry client under injected faults (delay, refused connections)', () => {
  let t: TestRegistry;
  let fault: FaultProxy;
  let slow: RegistryClient;

  beforeAll(async () => {
    t = await startTestRegistry();
    fault = await startFaultProxy({ host: '127.0.0.1', port: t.registry.port });
    slow = new RegistryClient({
      baseUrl: `https://127.0.0.1:${fault.port}`,
      ca: t.caPem,
      token: t.init.adminToken,
      timeoutMs: 2_000,
    });
  });
  afterAll(async () => {
    slow.close();
    await fault.close();
    await t.close();
  });

  it('works through 150 ms of added delay each way', async () => {
    fault.setDelay(150);
    const t0 = Date.now();
    let failed = 0;
    for (let i = 0; i < 20; i++) await slow.services().catch(() => (failed += 1));
    await expect(slow.services()).resolves.toMatchObject({ services: [] });
    // Sanity that the delay was real (a lower bound, not a timing assertion on our code).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    recordFault({
      scenario: 'added delay (fault proxy)',
      load: '21 catalog reads, one at a time',
      fault: '150 ms added to every chunk each way between client and registry (client timeout 2 s)',
      sent: 21,
      failed,
      lostWrites: '—',
      expected: '0 failed within the timeout; beyond it MESH_ERR_TIMEOUT',
      result: failed === 0 ? 'PASS' : 'FAIL',
    });
    expect(failed).toBe(0);
  });

  it('reports a timeout with a clear code when the delay exceeds the client bound', async () => {
    fault.setDelay(3_000);
    await expect(slow.services()).rejects.toMatchObject({ code: 'MESH_ERR_TIMEOUT' });
    fault.setDelay(0);
  });

  it('answers UNAVAILABLE when connections are refused, and recovers when they are not', async () => {
    slow.close();
    slow = new RegistryClient({
      baseUrl: `https://127.0.0.1:${fault.port}`,
      ca: t.caPem,
      token: t.init.adminToken,
      timeoutMs: 2_000,
    });
    fault.setRefuseRate(1);
    await expect(slow.services()).rejects.toMatchObject({ code: 'MESH_ERR_UNAVAILABLE' });
    fault.setRefuseRate(0);
    await eventually(async () => (await slow.services()).services !== undefined, { what: 'recovery' });
    expect(fault.counts().refused).toBeGreaterThan(0);
  });
});
