/** The pieces under the proxy's figures and access logs: Traffic and the traceparent rules. */
import * as hdr from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import { ensureTraceparent, isValidTraceparent, newTraceparent } from '../../src/proxy/trace.js';
import { ReasonCounter } from '../../src/proxy/stats.js';
import type { MeshErrorKind } from '../../src/errors/reasons.js';
import { MAX_LATENCY_US, Traffic } from '../../src/proxy/traffic.js';

describe('Traffic', () => {
  it("keeps the service's answers and the mesh's apart, and /stats sees both", () => {
    const t = new Traffic();
    t.requests = 4;
    t.response(200);
    t.response(503);
    t.meshError('intention-deny', 403);
    t.meshError('connect-failure', 0);
    const m = t.toMetrics();
    expect(m.responses).toEqual({ '2xx': 1, '5xx': 1 });
    expect(m.meshErrors).toEqual({ 'intention-deny': 1, 'connect-failure': 1 });
    expect(t.allResponses()).toEqual({ '2xx': 1, '4xx': 1, '5xx': 1 });
    expect(m.latency).toBe('');
  });

  it("records µs, clamps to the range, and encodes in the contract's format (cached until a new value)", () => {
    for (const compact of [false, true]) {
      const t = new Traffic(undefined, { compact });
      t.latencyMs(1.5);
      t.latencyMs(250);
      t.latencyMs(-3); // a clock step back: recorded as 0, never thrown
      t.latencyMs(10 * 3_600_000); // ten hours: recorded as the top of the range
      const first = t.encodedLatency();
      expect(t.encodedLatency()).toBe(first);
      const h = hdr.decodeFromCompressedBase64(first);
      expect(h.totalCount).toBe(4);
      expect(h.getValueAtPercentile(25)).toBe(0);
      expect(h.getValueAtPercentile(50)).toBeGreaterThanOrEqual(1_490);
      expect(h.getValueAtPercentile(50)).toBeLessThanOrEqual(1_510);
      expect(h.getValueAtPercentile(75)).toBeGreaterThanOrEqual(248_000);
      expect(h.maxValue).toBeGreaterThanOrEqual(MAX_LATENCY_US * 0.99);
      t.latencyMs(2);
      expect(t.encodedLatency()).not.toBe(first);
      expect(t.latencyCount).toBe(5);
    }
  });

  it('keeps the number of reasons bounded, counting the rest as other', () => {
    const c = new ReasonCounter(4);
    for (let i = 0; i < 10; i++) c.add(`r${i}`);
    c.add('r0');
    expect(c.toJSON()).toEqual({ r0: 2, r1: 1, r2: 1, other: 7 });
    const t = new Traffic();
    for (let i = 0; i < 100; i++) t.meshError(`kind-${i}` as MeshErrorKind);
    const m = t.toMetrics().meshErrors;
    expect(Object.keys(m).length).toBeLessThanOrEqual(32);
    expect(Object.values(m).reduce((a, b) => a + b, 0)).toBe(100);
  });
});

describe('traceparent', () => {
  it('accepts only version 00, lower-case hex, non-zero ids', () => {
    expect(isValidTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(true);
    expect(isValidTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')).toBe(true);
    for (const bad of [
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      ' 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '',
      undefined,
      ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ]) {
      expect(isValidTraceparent(bad), String(bad)).toBe(false);
    }
  });

  it('starts sampled traces with fresh random ids', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const tp = newTraceparent();
      expect(isValidTraceparent(tp)).toBe(true);
      expect(tp.endsWith('-01')).toBe(true);
      seen.add(tp.slice(3, 35));
    }
    expect(seen.size).toBe(500);
    const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(ensureTraceparent(given)).toBe(given);
    expect(ensureTraceparent('nope')).not.toBe('nope');
  });
});
