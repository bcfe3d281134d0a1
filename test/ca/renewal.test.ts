/** The half-life rule (src/ca/renewal.ts) that service leaves and node certificates share. */
import { describe, expect, it } from 'vitest';
import { renewAt, renewalDue } from '../../src/ca/renewal.js';
import { LeafStore } from '../../src/agent/proxies/leaf.js';

const DAY = 86_400_000;
const v = { notBefore: 1_000_000, notAfter: 1_000_000 + DAY };

describe('renewal at half-life', () => {
  it('is due from the middle of the validity on, and when there is no certificate', () => {
    expect(renewAt(v)).toBe(1_000_000 + DAY / 2);
    expect(renewalDue(v, renewAt(v) - 1)).toBe(false);
    expect(renewalDue(v, renewAt(v))).toBe(true);
    expect(renewalDue(v, v.notAfter + 1)).toBe(true);
    expect(renewalDue(undefined)).toBe(true);
  });

  it('is the rule the agent applies to service leaves', () => {
    const leaf = { certPem: '', keyPem: '', rootsPem: [], ...v };
    expect(LeafStore.due(leaf, renewAt(v) - 1)).toBe(false);
    expect(LeafStore.due(leaf, renewAt(v))).toBe(true);
    expect(LeafStore.due(undefined)).toBe(true);
  });
});
