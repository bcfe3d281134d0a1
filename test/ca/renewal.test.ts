/** The half-life rule (src/ca/renewal.ts) that service leaves and node certificates share. */
import { describe, expect, it } from 'vitest';
import { CLOCK_SKEW_MS, issuedAt, renewAt, renewalDue } from '../../src/ca/renewal.js';
import { LeafStore } from '../../src/agent/proxies/leaf.js';

const DAY = 86_400_000;
const MINUTE = 60_000;
const issued = 1_000_000_000;
/** As the CA makes them: NotBefore backdated, NotAfter a lifetime after the issue. */
const cert = (ttl: number) => ({ notBefore: issued - CLOCK_SKEW_MS, notAfter: issued + ttl });
const v = cert(DAY);

describe('renewal at half-life', () => {
  it('is due from half-way between the issue and the expiry on, and when there is no certificate', () => {
    expect(issuedAt(v)).toBe(issued);
    expect(renewAt(v)).toBe(issued + DAY / 2);
    expect(renewalDue(v, renewAt(v) - 1)).toBe(false);
    expect(renewalDue(v, renewAt(v))).toBe(true);
    expect(renewalDue(v, v.notAfter + 1)).toBe(true);
    expect(renewalDue(undefined)).toBe(true);
  });

  it('counts from the issue, not the backdated NotBefore: a 2-minute leaf is not due at once', () => {
    // Two minutes of backdating on a two-minute leaf: half-life from NotBefore would be the
    // issue time itself, and the agent would renew it for ever.
    expect(CLOCK_SKEW_MS).toBe(2 * MINUTE);
    const short = cert(2 * MINUTE);
    expect(renewalDue(short, issued)).toBe(false);
    expect(renewAt(short)).toBe(issued + MINUTE);
    // The shortest leaf the CA signs (1 minute) renews after 30 s.
    expect(renewAt(cert(MINUTE))).toBe(issued + 30_000);
  });

  it('takes a certificate backdated less (an older registry) as issued later, so it still renews before expiry', () => {
    const older = { notBefore: issued - MINUTE, notAfter: issued + 2 * MINUTE };
    expect(renewAt(older)).toBeGreaterThan(issued);
    expect(renewAt(older)).toBeLessThan(older.notAfter);
    // A validity shorter than the backdating cannot put the issue after the expiry.
    const odd = { notBefore: issued, notAfter: issued + 1000 };
    expect(issuedAt(odd)).toBe(odd.notAfter);
    expect(renewalDue(odd, odd.notAfter)).toBe(true);
  });

  it('is the rule the agent applies to service leaves', () => {
    const leaf = { certPem: '', keyPem: '', rootsPem: [], ...v };
    expect(LeafStore.due(leaf, renewAt(v) - 1)).toBe(false);
    expect(LeafStore.due(leaf, renewAt(v))).toBe(true);
    expect(LeafStore.due(undefined)).toBe(true);
  });
});
