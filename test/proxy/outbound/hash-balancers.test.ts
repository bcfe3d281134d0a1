import { describe, expect, it } from 'vitest';
import { Maglev, RingHash } from '../../../src/proxy/outbound/hash-balancers.js';
import { fnv1a, mix32 } from '../../../src/proxy/outbound/http/hash.js';

interface E {
  id: string;
  weight: number;
  inFlight: number;
}
const eps = (n: number, weight = (_i: number) => 1): E[] =>
  Array.from({ length: n }, (_, i) => ({ id: `api-${i}.n${i}`, weight: weight(i), inFlight: 0 }));
const keys = Array.from({ length: 4000 }, (_, i) => mix32(fnv1a(`user-${i}`)));

for (const [name, make] of [
  ['ring_hash', () => new RingHash<E>(() => 0)],
  ['maglev', () => new Maglev<E>(() => 0)],
] as const) {
  describe(name, () => {
    it('one hash always lands on one endpoint, and keys spread over all of them', () => {
      const b = make();
      const list = eps(4);
      const counts = new Map<string, number>();
      for (const k of keys) {
        const e = b.pick(list, undefined, k)!;
        expect(b.pick(list, undefined, k)).toBe(e);
        counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
      }
      expect(counts.size).toBe(4);
      // 1,000 each on average; consistent hashing is lumpier than round robin, but not by 2x.
      for (const n of counts.values()) expect(n).toBeGreaterThan(500);
    });

    it('an endpoint that comes moves only the keys it takes over', () => {
      const b = make();
      const four = eps(4);
      const five = [...four, ...eps(5).slice(4)];
      const before = keys.map((k) => b.pick(four, undefined, k)!.id);
      const after = keys.map((k) => b.pick(five, undefined, k)!.id);
      const movedTo = after.filter((id, i) => id !== before[i]);
      // Ideally 1/5 of the keys move, all of them to the new endpoint; both structures are
      // resized for five (the ring keeps its size, so each old endpoint gives up points), so more
      // move (a modulo hash would move 4/5).
      expect(movedTo.length).toBeLessThan(keys.length * 0.35);
      expect(movedTo.filter((id) => id === 'api-4.n4').length).toBeGreaterThan(movedTo.length * 0.6);
    });

    it('weights count: weight 3 gets about three times the keys of weight 1', () => {
      const b = make();
      const list = eps(2, (i) => (i === 0 ? 3 : 1));
      let heavy = 0;
      for (const k of keys) if (b.pick(list, undefined, k)!.id === 'api-0.n0') heavy += 1;
      expect(heavy / keys.length).toBeGreaterThan(0.65);
      expect(heavy / keys.length).toBeLessThan(0.85);
    });

    it('failover goes to another endpoint, the same one for the same key; none left is undefined', () => {
      const b = make();
      const list = eps(3);
      const first = b.pick(list, undefined, keys[0])!;
      const second = b.pick(list, [first], keys[0])!;
      expect(second).not.toBe(first);
      expect(b.pick(list, [first], keys[0])).toBe(second);
      expect(b.pick(list, list, keys[0])).toBeUndefined();
      expect(b.pick([], undefined, keys[0])).toBeUndefined();
    });

    it('a request without a hash gets a random endpoint', () => {
      const list = eps(3);
      expect(make().pick(list)).toBe(list[0]); // random() = 0
    });
  });
}
