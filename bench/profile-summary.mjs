/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`, which `npm run bench -- --profile` adds to
 * the meshctl proxies) and prints where the time went: the top functions by self time, and
 * the top by total (inclusive) time, each with its share of all samples.
 *
 *   node bench/profile-summary.mjs FILE.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/**
 * @param {any} profile a parsed .cpuprofile
 * @param {number} top
 * @returns {{ totalMs: number, self: Array<{ fn: string, ms: number, pct: number }>, inclusive: Array<{ fn: string, ms: number, pct: number }> }}
 */
export function summarizeProfile(profile, top = 25) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n) => {
    const cf = n.callFrame;
    const file = cf.url ? cf.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/|dist\/)/, '$1') : '';
    return `${cf.functionName || '(anonymous)'}${file ? ` ${file}:${cf.lineNumber + 1}` : ''}`;
  };
  // Time per sample: the delta that follows it (the profile's own timing).
  const selfUs = new Map();
  const inclUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = deltas[i + 1] ?? 0;
    totalUs += dt;
    const n = nodes.get(id);
    if (!n) return;
    const l = label(n);
    selfUs.set(l, (selfUs.get(l) ?? 0) + dt);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cl = label(nodes.get(cur));
      if (seen.has(cl)) continue;
      seen.add(cl);
      inclUs.set(cl, (inclUs.get(cl) ?? 0) + dt);
    }
  });
  const rank = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: Math.round(us / 100) / 10, pct: Math.round((us / Math.max(1, totalUs)) * 1000) / 10 }));
  return { totalMs: Math.round(totalUs / 1000), self: rank(selfUs), inclusive: rank(inclUs) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const s = summarizeProfile(JSON.parse(readFileSync(positionals[0], 'utf8')), Number(values.top));
  process.stdout.write(`profile: ${s.totalMs} ms sampled\n\nby self time:\n`);
  for (const r of s.self) process.stdout.write(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(1).padStart(8)} ms  ${r.fn}\n`);
  process.stdout.write('\nby total time (the function and what it calls):\n');
  for (const r of s.inclusive) process.stdout.write(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(1).padStart(8)} ms  ${r.fn}\n`);
}
