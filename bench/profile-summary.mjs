/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`, which `npm run bench -- --profile` adds to
 * the meshctl proxies) and prints where the time went: the top functions by self time, and
 * the top by total (inclusive) time, each with its share of all samples.
 *
 *   node bench/profile-summary.mjs FILE.cpuprofile [--top 25] [--callers NAME] [--from US --to US]
 *
 * --callers NAME lists the call paths (up to 6 frames) that lead to functions whose label
 * contains NAME, by time, to see who asks for a hot function.
 * --from/--to keep only the samples taken in that window, in the profile's own clock
 * (monotonic µs, the clock of `process.hrtime()`), to see what ran during one event-loop stall.
 * --results FILE.json --scenario NAME keep only the samples taken during that scenario's
 * throughput runs (wrk at saturation, every round; the bench records each run's window): the
 * proxies also serve the fixed-rate latency run, which would otherwise blur the saturation
 * figures. E.g. on vs off over the same phase:
 *
 *   node bench/profile-summary.mjs DIR/meshctl-l7-pair-out/*.cpuprofile --results bench/results/latest.json --scenario meshctl-l7-pair
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
      .map(([fn, us]) => ({
        fn,
        ms: Math.round(us / 100) / 10,
        pct: Math.round((us / Math.max(1, totalUs)) * 1000) / 10,
      }));
  return { totalMs: Math.round(totalUs / 1000), self: rank(selfUs), inclusive: rank(inclUs) };
}

/**
 * The profile cut to the samples taken within [fromUs, toUs] (monotonic µs, the profile's
 * `startTime` clock); each kept sample keeps its own duration.
 */
export function sliceProfile(profile, fromUs, toUs) {
  return { ...sliceProfileWindows(profile, [[fromUs, toUs]]), startTime: fromUs, endTime: toUs };
}

/**
 * The profile cut to the samples taken within any of `windows` ([fromUs, toUs] pairs, the
 * profile's clock); each kept sample keeps its own duration.
 * @param {any} profile
 * @param {Array<[number, number]>} windows
 */
export function sliceProfileWindows(profile, windows) {
  const deltas = profile.timeDeltas ?? [];
  const samples = [];
  const timeDeltas = [0];
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += deltas[i] ?? 0;
    if (!windows.some(([from, to]) => t >= from && t <= to)) return;
    samples.push(id);
    timeDeltas.push(deltas[i + 1] ?? 0);
  });
  return { ...profile, samples, timeDeltas };
}

/**
 * The throughput-run windows of one scenario in a bench results file (bench/results/*.json),
 * one per round. An unknown scenario, or results from before the bench recorded them, is an error.
 * @param {any} results
 * @param {string} scenario
 * @returns {Array<[number, number]>}
 */
export function throughputWindows(results, scenario) {
  const rounds = results?.dataPlane?.rounds ?? [];
  const windows = rounds.map((r) => r[scenario]?.throughputWindowUs).filter((w) => Array.isArray(w));
  if (windows.length === 0)
    throw new Error(
      `no throughput windows for scenario ${scenario} in the results (scenarios: ${
        Object.keys(rounds[0] ?? {}).join(', ') || 'none'
      }; results from before the bench recorded them have none)`,
    );
  return windows;
}

/** Where a frame's code lives, coarsely: whose code the time is spent in. */
export function areaOf(callFrame) {
  const url = callFrame.url ?? '';
  const fn = callFrame.functionName ?? '';
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)' || fn === '(root)') return 'V8/native (program)';
  if (url.includes('/dist/proxy/')) return 'meshctl proxy code (dist/proxy)';
  if (url.includes('/dist/')) return 'meshctl other code (dist)';
  if (url.includes('node_modules/http-proxy')) return 'http-proxy';
  if (url.includes('node_modules/'))
    return `other dependencies (${url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')})`;
  if (/^node:_http_|^node:https?$/.test(url)) return 'Node http (server, client, agent, parser)';
  if (/^node:(_tls|tls)/.test(url)) return 'Node tls (JS side)';
  if (/^node:(net|internal\/stream_base|internal\/streams|stream)/.test(url)) return 'Node net/streams (JS side)';
  if (/^node:(events|internal\/process|internal\/timers|timers)/.test(url)) return 'Node events/ticks/timers';
  if (url === '' && fn) return 'native calls (socket writes incl. TLS encryption, certificate reads, …)';
  return `other Node internals`;
}

/** Self time summed by area (areaOf), the share of busy (non-idle) time each takes. */
export function byArea(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const deltas = profile.timeDeltas ?? [];
  const us = new Map();
  profile.samples.forEach((id, i) => {
    const n = nodes.get(id);
    if (!n) return;
    const a = areaOf(n.callFrame);
    us.set(a, (us.get(a) ?? 0) + (deltas[i + 1] ?? 0));
  });
  const busy = [...us.entries()].filter(([a]) => a !== 'idle').reduce((t, [, v]) => t + v, 0);
  return [...us.entries()]
    .filter(([a]) => a !== 'idle')
    .sort((a, b) => b[1] - a[1])
    .map(([area, v]) => ({
      area,
      ms: Math.round(v / 100) / 10,
      pctOfBusy: Math.round((v / Math.max(1, busy)) * 1000) / 10,
    }));
}

/** Call paths into functions whose label contains `name`, ranked by the time spent below them. */
export function callersOf(profile, name, top = 10) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const short = (n) => {
    const cf = n.callFrame;
    const file = cf.url ? cf.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1').replace(/^node:/, '') : '';
    return `${cf.functionName || '(anonymous)'}${file ? `@${file.split('/').pop()}:${cf.lineNumber + 1}` : ''}`;
  };
  const paths = new Map();
  const deltas = profile.timeDeltas ?? [];
  profile.samples.forEach((id, i) => {
    const dt = deltas[i + 1] ?? 0;
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const n = nodes.get(cur);
      if (!short(n).includes(name)) continue;
      const chain = [];
      for (let p = cur; p !== undefined && chain.length < 6; p = parent.get(p)) chain.push(short(nodes.get(p)));
      const key = chain.join(' ← ');
      paths.set(key, (paths.get(key) ?? 0) + dt);
      break;
    }
  });
  return [...paths.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([path, us]) => ({ path, ms: Math.round(us / 100) / 10 }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.on('error', () => process.exit(0));
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      callers: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      results: { type: 'string' },
      scenario: { type: 'string' },
    },
  });
  if (positionals.length !== 1) {
    process.stderr.write(
      'usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--callers NAME] [--from US --to US]\n' +
        '       [--results RESULTS.json --scenario NAME]\n',
    );
    process.exit(2);
  }
  if ((values.results === undefined) !== (values.scenario === undefined)) {
    process.stderr.write('--results and --scenario go together\n');
    process.exit(2);
  }
  let profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
  if (values.from !== undefined || values.to !== undefined)
    profile = sliceProfile(profile, Number(values.from ?? -Infinity), Number(values.to ?? Infinity));
  if (values.results !== undefined && values.scenario !== undefined) {
    let windows;
    try {
      windows = throughputWindows(JSON.parse(readFileSync(values.results, 'utf8')), values.scenario);
    } catch (e) {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    }
    profile = sliceProfileWindows(profile, windows);
    process.stdout.write(`throughput runs of ${values.scenario}: ${windows.length} windows\n`);
  }
  if (values.callers) {
    for (const c of callersOf(profile, values.callers, Number(values.top)))
      process.stdout.write(`${c.ms.toFixed(1).padStart(9)} ms  ${c.path}\n`);
    process.exit(0);
  }
  const s = summarizeProfile(profile, Number(values.top));
  process.stdout.write(`profile: ${s.totalMs} ms sampled\n\nbusy time by area:\n`);
  for (const r of byArea(profile))
    process.stdout.write(`  ${r.pctOfBusy.toFixed(1).padStart(5)}%  ${r.ms.toFixed(1).padStart(8)} ms  ${r.area}\n`);
  process.stdout.write('\nby self time:\n');
  for (const r of s.self)
    process.stdout.write(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(1).padStart(8)} ms  ${r.fn}\n`);
  process.stdout.write('\nby total time (the function and what it calls):\n');
  for (const r of s.inclusive)
    process.stdout.write(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(1).padStart(8)} ms  ${r.fn}\n`);
}
