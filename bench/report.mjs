/**
 * Turns raw rounds into the figures people read: medians over rounds, ratios against
 * `haproxy-pair` and `direct` (the median of the per-round ratios, since scenarios of one
 * round ran minutes apart at most), the targets of issue 6 with met / not met, and the
 * same table as text for the terminal and as markdown for bench/results/ and the docs.
 */

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const max = (xs) => xs.reduce((a, b) => Math.max(a, b), 0);

/**
 * The smallest haproxy +p99 a ratio divides by (ms): haproxy adds about a millisecond on a quiet
 * box, and a figure near 0 would make any meshctl figure an enormous ratio.
 */
const P99_FLOOR_MS = 0.5;

/** Per-scenario medians (RSS: the peak over all rounds) and ratios. */
export function summarizeDataPlane(dp) {
  const out = {};
  for (const s of dp.scenarios) {
    const rs = dp.rounds.map((r) => r[s.name]).filter(Boolean);
    const per = (f) => median(rs.map(f));
    const ratio = (base, f) =>
      median(dp.rounds.filter((r) => r[s.name] && r[base]).map((r) => f(r[s.name]) / f(r[base])));
    const diff = (base, f) =>
      median(dp.rounds.filter((r) => r[s.name] && r[base]).map((r) => f(r[s.name]) - f(r[base])));
    const hops = (rs[0]?.hops ?? []).map((h, i) => ({
      role: h.role,
      cpuUsPerReq: per((r) => r.hops[i].cpuUsPerReq),
      cpuUsPerReqAtRate: per((r) => r.hops[i].cpuUsPerReqAtRate),
      rssAtRateMB: rs.some((r) => r.hops[i].rssAtRateMB !== undefined)
        ? max(rs.map((r) => r.hops[i].rssAtRateMB ?? 0))
        : undefined,
      rssPeakMB: max(rs.map((r) => r.hops[i].rssPeakMB)),
    }));
    const rps = (r) => r.rps;
    const p99 = (r) => r.latency?.latencyMs.p99;
    const cpuSum = (r) => r.hops.reduce((a, h) => a + h.cpuUsPerReq, 0);
    // Against each haproxy scenario of the same rounds: throughput, CPU per request (all hops),
    // and +p99 over direct (each round's own, then the median and the worst over rounds).
    const ratios = {};
    for (const base of ['haproxy-pair', 'haproxy-http-pair', 'haproxy-pair-close']) {
      const both = dp.rounds.filter((r) => r[s.name] && r[base]);
      if (both.length === 0 || base === s.name) continue;
      // +p99 over direct, each round's own; haproxy's taken as its median over the rounds and
      // never below P99_FLOOR_MS, so that one round where direct itself was slow (a shared box)
      // cannot turn the ratio into a division by ~0.
      const addedOf = (name) =>
        both.filter((r) => r.direct && r[name]?.latency).map((r) => p99(r[name]) - p99(r.direct));
      const baseAdded = Math.max(P99_FLOOR_MS, median(addedOf(base)) ?? 0);
      const mine = addedOf(s.name);
      // Rounds in which the machine's other work disturbed one of the three fixed-rate runs the
      // ratio is made of, even after its retakes (bench/data-plane.mjs), and the same ratio over
      // the undisturbed rounds alone (haproxy's median of those rounds too).
      const withLatency = both.filter((r) => r.direct && r[s.name]?.latency && r[base]?.latency);
      const disturbed = (r) => [r.direct, r[base], r[s.name]].some((m) => m.latency?.disturbed === true);
      // A disturbed run of this scenario's own can only have made it slower; one of direct's or
      // the base's can have helped it (a larger p99 to subtract, a larger divisor).
      const helped = (r) => [r.direct, r[base]].some((m) => m.latency?.disturbed === true);
      const cleanRounds = withLatency.filter((r) => !disturbed(r));
      const addedIn = (rounds, name) => rounds.map((r) => p99(r[name]) - p99(r.direct));
      const clean = addedIn(cleanRounds, s.name);
      const cleanBase = Math.max(P99_FLOOR_MS, median(addedIn(cleanRounds, base)) ?? 0);
      ratios[base] = {
        rps: median(both.map((r) => rps(r[s.name]) / rps(r[base]))),
        cpu: s.name === 'direct' ? undefined : median(both.map((r) => cpuSum(r[s.name]) / cpuSum(r[base]))),
        p99Added: mine.length ? median(mine) / baseAdded : undefined,
        p99AddedWorst: mine.length ? Math.max(...mine) / baseAdded : undefined,
        p99Rounds: withLatency.length,
        p99DisturbedRounds: withLatency.length - clean.length,
        p99HelpedRounds: withLatency.filter(helped).length,
        p99AddedWorstClean: clean.length ? Math.max(...clean) / cleanBase : undefined,
      };
    }
    out[s.name] = {
      kind: s.kind,
      note: s.note,
      rounds: rs.length,
      rps: per(rps),
      rpsVsHaproxy: ratio('haproxy-pair', rps),
      rpsVsDirect: ratio('direct', rps),
      // The cost of traffic policy: the same pair with and without it, round by round.
      rpsVsL7Pair: s.name === 'meshctl-l7-policy-pair' ? ratio('meshctl-l7-pair', rps) : undefined,
      cpuVsL7Pair: s.name === 'meshctl-l7-policy-pair' ? ratio('meshctl-l7-pair', cpuSum) : undefined,
      // The cost of the default resilience (#15): the L7 pair against the same pair with it off,
      // round by round (the bench alternates which of the two runs first).
      rpsVsResilienceOff: s.name === 'meshctl-l7-pair' ? ratio('meshctl-l7-pair-resilience-off', rps) : undefined,
      cpuVsResilienceOff: s.name === 'meshctl-l7-pair' ? ratio('meshctl-l7-pair-resilience-off', cpuSum) : undefined,
      ratios,
      p50Ms: per((r) => r.latency?.latencyMs.p50),
      p99Ms: per(p99),
      p999Ms: per((r) => r.latency?.latencyMs.p999),
      p99AddedMs: diff('direct', p99),
      p99VsHaproxy: ratio('haproxy-pair', p99),
      achievedRps: per((r) => r.latency?.achievedRps),
      generatorLateP99Ms: per((r) => r.latency?.latenessMs.p99),
      // CPUs' worth of other processes' work during the fixed-rate run, and how many of the
      // rounds' runs stayed disturbed after their retakes (bench/data-plane.mjs).
      outsideCpusAtRate: per((r) => r.latency?.outsideCpus),
      disturbedRounds: rs.filter((r) => r.latency?.disturbed === true).length,
      latencyRetakes: rs.reduce((a, r) => a + Math.max(0, (r.latency?.takes?.length ?? 1) - 1), 0),
      hops,
      cpuUsPerReqPerHop: hops.length ? hops.reduce((a, h) => a + h.cpuUsPerReq, 0) / hops.length : undefined,
      cpuVsHaproxy: hops.length
        ? ratio('haproxy-pair', (r) => r.hops.reduce((a, h) => a + h.cpuUsPerReq, 0))
        : undefined,
      errors: rs.reduce((a, r) => a + r.wrkErrors + (r.latency ? r.latency.errors + r.latency.non200 : 0), 0),
      cpuPressurePct: per((r) => r.cpuPressurePct),
    };
  }
  return out;
}

/**
 * The targets of issue 13 (data plane), each a ratio against haproxy measured in the same run
 * so that a noisy machine moves both sides, and the control-plane target of issue 6.
 */
export function evaluateTargets(dpSummary, cp) {
  const t = [];
  const add = (name, target, value, unit, met, note = '', status = undefined) =>
    t.push({ name, target, value, unit, met: value === undefined ? null : met, note, ...(status ? { status } : {}) });
  const l4 = dpSummary?.['meshctl-l4-pair'];
  const l7 = dpSummary?.['meshctl-l7-pair'];
  const l4close = dpSummary?.['meshctl-l4-pair-close'];
  if (dpSummary) {
    const vsHttp = l7?.ratios['haproxy-http-pair'];
    const vsTcp = l4?.ratios['haproxy-pair'];
    add('L7 pair throughput / haproxy-http-pair', '≥ 0.5×', vsHttp?.rps, '×', (vsHttp?.rps ?? 0) >= 0.5);
    add(
      "L7 pair CPU per request (out + in) / haproxy-http-pair's",
      '≤ 3×',
      vsHttp?.cpu,
      '×',
      (vsHttp?.cpu ?? Infinity) <= 3,
      l7 ? `${fmt(l7.hops[0]?.cpuUsPerReq, 1)} + ${fmt(l7.hops[1]?.cpuUsPerReq, 1)} µs` : '',
    );
    // Worst of the rounds, as the issue defines it. A round whose fixed-rate runs the machine's
    // other work disturbed (after retakes) cannot decide it either way (a disturbed haproxy run
    // makes the divisor larger): then it is missed if the undisturbed rounds alone are over the
    // bar, and otherwise "box busy".
    const p99 = p99Target(vsHttp);
    add(
      "L7 pair +p99 at the fixed rate / haproxy-http-pair's +p99, worst of the rounds",
      '≤ 2×',
      vsHttp?.p99AddedWorst,
      '×',
      p99.met,
      l7
        ? `median ${fmt(vsHttp?.p99Added)}×; L7 +p99 ${fmt(l7.p99AddedMs, 2)} ms` +
            (vsHttp?.p99DisturbedRounds
              ? `; ${vsHttp.p99DisturbedRounds} of ${vsHttp.p99Rounds} rounds disturbed by other processes` +
                (vsHttp.p99AddedWorstClean !== undefined
                  ? ` (the undisturbed ones: ${fmt(vsHttp.p99AddedWorstClean)}×)`
                  : '')
              : '')
        : '',
      p99.status,
    );
    const pol = dpSummary['meshctl-l7-policy-pair'];
    if (pol)
      add(
        'L7 pair with 50 routes (10 regex) + a 90/10 split, throughput / the same pair without policy (#14)',
        '≥ 0.9×',
        pol.rpsVsL7Pair,
        '×',
        (pol.rpsVsL7Pair ?? 0) >= 0.9,
        `CPU per request ${fmt(pol.cpuVsL7Pair)}×`,
      );
    if (l7?.rpsVsResilienceOff !== undefined)
      add(
        'L7 pair with the default resilience, throughput / the same pair with it off (#15)',
        '≥ 0.95×',
        l7.rpsVsResilienceOff,
        '×',
        l7.rpsVsResilienceOff >= 0.95,
        `CPU per request (out + in) ${fmt(l7.cpuVsResilienceOff, 3)}×`,
      );
    add('L4 pair throughput / haproxy-pair', '≥ 0.8×', vsTcp?.rps, '×', (vsTcp?.rps ?? 0) >= 0.8);
    add("L4 CPU per request per hop / haproxy's", '≤ 1.5×', vsTcp?.cpu, '×', (vsTcp?.cpu ?? Infinity) <= 1.5);
    const close = l4close?.ratios['haproxy-pair-close'];
    add(
      "new mTLS connection (Connection: close), CPU per hop / haproxy's",
      '≤ 2×',
      close?.cpu,
      '×',
      (close?.cpu ?? Infinity) <= 2,
      l4close ? `${fmt(l4close.cpuUsPerReqPerHop, 1)} µs per request per hop` : '',
    );
    const rss = [l4, l7]
      .filter(Boolean)
      .flatMap((s) => s.hops.map((h) => h.rssAtRateMB))
      .filter((x) => x !== undefined);
    add('largest proxy RSS at the fixed rate', '≤ 70 MB', rss.length ? max(rss) : undefined, 'MB', max(rss) <= 70);
  }
  if (cp) {
    const any = (store, n) => cp.backends.find((b) => b.store === store)?.runs.find((x) => x.watchers === n);
    const run = (store, n) => {
      const x = any(store, n);
      return x?.error === undefined ? x : undefined;
    };
    /** A size that ran and failed has not met its target (rather than "not measured"). */
    const failed = (name, target, store, n) => {
      const x = any(store, n);
      if (x?.error === undefined) return false;
      t.push({ name, target, value: undefined, unit: '', met: false, note: `failed: ${x.error}` });
      return true;
    };
    const r = run('sqlite', 1000)?.registration;
    add('registration → 1,000 watchers answered, p99 (sqlite)', '≤ 200 ms', r?.p99Ms, 'ms', r ? r.p99Ms <= 200 : null);
    // Issue 12: 5,000 agents on etcd with two registries sharing them.
    const e5 = run('etcd', 5000);
    if (!failed('registration → 5,000 watchers answered, p99 (etcd, two registries)', '≤ 1,000 ms', 'etcd', 5000))
      add(
        'registration → 5,000 watchers answered, p99 (etcd, two registries)',
        '≤ 1,000 ms',
        e5?.registration.p99Ms,
        'ms',
        e5 ? e5.registration.p99Ms <= 1000 && e5.registration.answered === 5000 : null,
      );
    add(
      'registry RSS holding 5,000 watchers (etcd, largest registry)',
      '≤ 300 MB',
      e5?.registryRssHoldingMB,
      'MB',
      e5 ? e5.registryRssHoldingMB <= 300 : null,
    );
    for (const b of cp.backends) {
      const x = run(b.store, 5000);
      if (failed(`5,000 new watches held after connecting (${b.store})`, '≤ 60 s', b.store, 5000)) continue;
      add(
        `5,000 new watches held after connecting (${b.store})`,
        '≤ 60 s',
        x?.holdNewSec,
        's',
        x ? x.holdNewSec <= 60 : null,
      );
    }
  }
  return t;
}

/**
 * The +p99 target's verdict from a `ratios[base]` entry: on the worst round when no round was
 * disturbed (bench/data-plane.mjs), or when only the scenario's own runs were and every round is
 * under the bar; else missed if the undisturbed rounds alone miss it, and neither met nor missed
 * otherwise (status 'box busy').
 * @param {any} r
 * @returns {{ met: boolean | null, status?: string }}
 */
export function p99Target(r) {
  if (r?.p99AddedWorst === undefined) return { met: null };
  if (!r.p99DisturbedRounds) return { met: r.p99AddedWorst <= 2 };
  // Under the bar with only the L7 pair's own runs disturbed: those can only have made it worse.
  if (!r.p99HelpedRounds && r.p99AddedWorst <= 2) return { met: true };
  if ((r.p99AddedWorstClean ?? 0) > 2) return { met: false };
  return { met: null, status: 'box busy' };
}

// --- formatting ----------------------------------------------------------------------------

export function fmt(v, digits = 2) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function hopsText(hops, key, digits) {
  return hops.length ? hops.map((h) => fmt(h[key], digits)).join(' | ') : '—';
}

/** Rows of the data-plane table: [header, ...rows], each a list of cells. */
export function dataPlaneRows(summary) {
  const header = [
    'scenario',
    'req/s',
    '× haproxy',
    '× direct',
    'p50 ms',
    'p99 ms',
    '+p99 ms vs direct',
    'p99 × haproxy',
    'generator late p99 ms',
    "others' CPUs @rate",
    'CPU µs/req/hop (out | in)',
    'CPU × haproxy',
    'CPU µs/req @rate (out | in)',
    'RSS MB @rate (out | in)',
    'RSS MB peak (out | in)',
    'errors',
    'CPU pressure %',
  ];
  const rows = Object.entries(summary).map(([name, s]) => [
    name,
    fmt(s.rps, 0),
    fmt(s.rpsVsHaproxy),
    fmt(s.rpsVsDirect),
    fmt(s.p50Ms, 3),
    fmt(s.p99Ms, 3),
    name === 'direct' ? '—' : fmt(s.p99AddedMs, 3),
    fmt(s.p99VsHaproxy),
    fmt(s.generatorLateP99Ms, 1),
    fmt(s.outsideCpusAtRate, 2) + (s.disturbedRounds ? ` (${s.disturbedRounds} disturbed)` : ''),
    hopsText(s.hops, 'cpuUsPerReq', 1),
    fmt(s.cpuVsHaproxy),
    hopsText(s.hops, 'cpuUsPerReqAtRate', 1),
    hopsText(s.hops, 'rssAtRateMB', 1),
    hopsText(s.hops, 'rssPeakMB', 1),
    String(s.errors),
    fmt(s.cpuPressurePct, 0),
  ]);
  return [header, ...rows];
}

export function controlPlaneRows(cp) {
  const header = [
    'store (registries)',
    'watchers',
    'change',
    'p50 ms',
    'p99 ms',
    'max ms',
    'ack ms',
    'p99 ms from send',
    'answered',
    'registry CPU ms per change',
    'registry RSS MB (before → holding)',
    's to hold N new watches',
    'registry CPU ms to take the watches',
  ];
  const rows = [];
  for (const b of cp.backends) {
    for (const run of b.runs) {
      if (run.error !== undefined) {
        rows.push([
          `${b.store} (${b.registries})`,
          fmt(run.watchers, 0),
          `failed: ${run.error}`,
          ...Array(10).fill('—'),
        ]);
        continue;
      }
      for (const kind of ['registration', 'intention']) {
        const k = run[kind];
        if (!k) continue;
        rows.push([
          `${b.store} (${b.registries})`,
          fmt(run.watchers, 0),
          kind,
          fmt(k.p50Ms, 1),
          fmt(k.p99Ms, 1),
          fmt(k.maxMs, 1),
          fmt(k.ackMs, 1),
          fmt(k.p99FromSentMs, 1),
          `${k.answered}/${run.watchers}`,
          fmt(k.registryCpuMs, 0),
          `${fmt(run.registryRssBeforeMB, 1)} → ${fmt(run.registryRssHoldingMB, 1)}`,
          fmt(run.holdNewSec, 1),
          fmt(run.registryCpuArmMs, 0),
        ]);
      }
    }
  }
  return [header, ...rows];
}

export function targetRows(targets) {
  return [
    ['target', 'goal', 'measured', 'status', 'note'],
    ...targets.map((t) => [
      t.name,
      t.target,
      t.value === undefined ? '—' : `${fmt(t.value, t.unit === '×' ? 2 : 1)} ${t.unit}`,
      t.status ?? (t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met'),
      t.note,
    ]),
  ];
}

/** A fixed-width text table. */
export function textTable(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c] ?? '').length)));
  const line = (r) =>
    r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function markdownTable(rows) {
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  return [
    `| ${rows[0].map(esc).join(' | ')} |`,
    `|${rows[0].map((_, i) => (i === 0 ? ':--' : '--:')).join('|')}|`,
    ...rows.slice(1).map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The whole result as markdown (bench/results/latest.md). */
export function markdownReport(result) {
  const m = result.meta;
  const o = m.options;
  const lines = [
    `# meshctl benchmark — ${m.date}`,
    '',
    `- machine: ${m.machine.nproc} CPUs (${m.machine.cpuModel}), ${m.machine.memGB} GB, ${m.machine.kernel}`,
    `- software: Node ${m.machine.node}, ${m.machine.haproxy ?? 'haproxy —'}, ${m.machine.wrk ?? 'wrk —'}, ${m.machine.etcd ?? 'etcd —'}`,
    `- commit: ${m.git.commit}${m.git.dirty ? ' (with uncommitted changes)' : ''}; dist/ ${m.build}`,
    `- command: \`${m.command}\``,
    `- load average before → after: ${m.machine.loadBefore} → ${m.machine.loadAfter} (the machine is shared: figures are noisy, compare ratios within one run)`,
    '',
  ];
  if (result.dataPlane) {
    lines.push(
      '## Data plane',
      '',
      `wrk -t${o.threads} -c${o.connections} -d${o.durationSec}s (keep-alive) for throughput; open-loop ${o.rate} req/s for ${o.latencySec} s for latency; ${o.rounds} rounds, medians (RSS: peak over rounds). ` +
        'CPU is user+system time of each proxy process from /proc per request served; "out" is the web-side (outbound) proxy, "in" the api-side (inbound) one. ' +
        '"CPU pressure" is the share of the throughput run during which some task on the machine waited for a CPU (Linux PSI): the higher, the noisier the row. ' +
        '"generator late" is how far behind schedule the load generator itself sent its requests: when it is high, the machine starved the generator too and that row\'s latencies say more about the machine than about the proxy. ' +
        '"others\' CPUs @rate" is the CPU that processes outside the bench used during the fixed-rate run (/proc/stat less the bench\'s own processes, in CPUs): a run over 0.15 is taken again (--latency-retakes), and one still over it after the retakes is counted as disturbed.',
      '',
      markdownTable(dataPlaneRows(result.dataPlane.summary)),
      '',
    );
  }
  if (result.controlPlane) {
    lines.push(
      '## Control plane',
      '',
      `Watchers hold blocking queries (\`GET /v1/catalog/service/api?index=N&wait=60s\`, \`GET /v1/intentions?index=N&wait=60s\`) over mTLS; time from the change being acknowledged (its PUT answered; "ack ms" is how long that took) to each watcher having the answer that shows it. ${result.controlPlane.rounds} changes of each kind per size, each over all N watchers; medians of the per-change p50/p99, max over all. Stores: ${result.controlPlane.backends.map((b) => `${b.store} (${b.registries} registr${b.registries > 1 ? 'ies' : 'y'})`).join(', ')}; with two registries the watcher processes alternate between them and every change is made through the first; "registry" figures are the largest RSS of any registry and the CPU of all of them. Up to ${result.controlPlane.backends[0]?.perProcess} watchers per client process, one node certificate per ${result.controlPlane.backends[0]?.perIdentity} watchers; "s to hold N new watches" is from arming N watchers on new connections (TLS handshakes) until the registries report all N held.`,
      '',
      markdownTable(controlPlaneRows(result.controlPlane)),
      '',
    );
  }
  lines.push('## Targets', '', markdownTable(targetRows(result.targets)), '');
  return lines.join('\n');
}
