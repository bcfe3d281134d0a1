/**
 * Data-plane bench: every scenario (lib/scenarios.mjs) measured in the same run, in rounds,
 * the scenario order rotated each round so none always runs first or last. Per scenario
 * and round:
 *
 *   throughput  wrk -tT -cC -dDs (keep-alive) → requests/s; CPU of each proxy process read
 *               from /proc before and after → µs of CPU per request per hop; peak RSS
 *   latency     open-loop at a fixed rate (loadgen.mjs) → p50/p99; RSS and CPU per request
 *               of each proxy at that rate
 *
 * Medians over rounds are reported by report.mjs; the raw rounds stay in the JSON.
 *
 * The fixed-rate run is the one a shared machine moves most: a p99 is the 1 % slowest requests,
 * and a few seconds of someone else's work on the 2 CPUs the whole path shares sets it. So the
 * bench measures, during each fixed-rate run, the CPU the machine spent outside the bench (every
 * process's time from /proc/stat less the bench's own processes, the load generator and the
 * bench itself), and takes a run again, up to `latencyRetakes` times, while that outside work
 * was above OUTSIDE_LIMIT_CPUS; the first run under the limit is kept, else the least disturbed,
 * marked `disturbed` (report.mjs then does not call the +p99 target met or missed on it alone).
 */

/**
 * CPUs' worth of work by other processes during a fixed-rate run above which the run measured the
 * machine rather than the scenario (0.15: 7.5 % of this 2-CPU box). On a box with nothing else
 * running the estimate reads −0.05 to 0.1 (clock-tick rounding, kernel threads); another
 * engineer's test or bench reads 0.6–1.7 (docs/BENCHMARKS.md "The L7 tail").
 */
export const OUTSIDE_LIMIT_CPUS = 0.15;
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { REPO } from './lib/dist.mjs';
import { startScenarios } from './lib/scenarios.mjs';
import {
  cpuMicros,
  cpuByPid,
  cpuPressureMicros,
  machineIdle,
  outsideCpus,
  RssSampler,
  runToEnd,
  sleep,
} from './lib/procs.mjs';

/** Run by default, in this order. */
export const DEFAULT_SCENARIOS = [
  'direct',
  'haproxy-pair',
  'haproxy-http-pair',
  'meshctl-l4-pair',
  'meshctl-l7-pair',
  'haproxy-pair-close',
  'meshctl-l4-pair-close',
];
/**
 * Everything --scenarios accepts (node-http-proxy and node-undici are opt-in reference points;
 * meshctl-l7-pair-resilience-off the L7 pair without timeouts, retries, limits or ejection;
 * meshctl-l7-policy-pair, the L7 pair with a traffic policy: run it beside meshctl-l7-pair).
 */
export const ALL_SCENARIOS = [
  ...DEFAULT_SCENARIOS,
  'meshctl-l7-pair-resilience-off',
  'meshctl-l7-policy-pair',
  'node-http-proxy',
  'node-undici',
];

/**
 * @typedef {{ rounds: number, durationSec: number, connections: number, threads: number, rate: number,
 *   latencySec: number, latencyRetakes: number, warmupSec: number, scenarios: string[], dir: string, profileDir?: string, proxyNodeArgs?: string[],
 *   log: (s: string) => void }} DataPlaneOptions
 */

/** wrk at fixed concurrency; returns its summary (wrk-report.lua). */
async function runWrk(url, o, durationSec, close = false) {
  const args = [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${durationSec}s`,
    '--timeout',
    '5s',
    ...(close ? ['-H', 'Connection: close'] : []),
    '-s',
    join(REPO, 'bench', 'wrk-report.lua'),
    url,
  ];
  const r = await runToEnd('wrk', args, { timeoutMs: (durationSec + 30) * 1000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk gave no summary (exit ${r.code}): ${r.stderr || r.stdout}`.slice(0, 2000));
  const s = JSON.parse(line.slice('WRKJSON '.length));
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  return {
    requests: s.requests,
    seconds: s.duration_us / 1e6,
    rps: s.requests / (s.duration_us / 1e6),
    errors,
    errorDetail: s.errors,
    latencyUs: s.latency_us,
  };
}

async function runLoadgen(url, o) {
  // Enough connections that a slow answer never makes the next request wait for a socket in
  // the generator: queueing must happen in the system under test, where it is measured.
  const spec = { url, rate: o.rate, durationMs: o.latencySec * 1000, warmupMs: 1000, connections: 64 };
  const r = await runToEnd(process.execPath, [join(REPO, 'bench', 'loadgen.mjs'), JSON.stringify(spec)], {
    timeoutMs: (o.latencySec + 30) * 1000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('LOADGEN '));
  if (!line) throw new Error(`the load generator gave no result (exit ${r.code}): ${r.stderr}`.slice(0, 2000));
  return JSON.parse(line.slice('LOADGEN '.length));
}

/**
 * CPU µs per request of each hop over a run, and peak RSS of each, around `fn`. With `benchPids`
 * (every process the bench started), also the CPUs' worth of work the rest of the machine did
 * meanwhile: `fn`'s result may give its own process's CPU as `cpuUs` (the load generator's).
 */
async function withResources(hops, fn, benchPids = undefined) {
  const sampler = new RssSampler(hops.map((h) => h.pid));
  const before = hops.map((h) => cpuMicros(h.pid));
  const psi0 = cpuPressureMicros();
  const machine0 = benchPids ? machineIdle() : undefined;
  const bench0 = cpuByPid(benchPids ?? []);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const after = hops.map((h) => cpuMicros(h.pid));
  const psi1 = cpuPressureMicros();
  const machine1 = benchPids ? machineIdle() : undefined;
  const bench1 = cpuByPid(benchPids ?? []);
  const self = process.cpuUsage(self0);
  const wallUs = (performance.now() - t0) * 1000;
  const rss = sampler.stop();
  return {
    result,
    outsideCpus:
      machine0 === undefined || machine1 === undefined
        ? undefined
        : outsideCpus({
            idle0: machine0.idleUs,
            idle1: machine1.idleUs,
            cpus: machine1.cpus,
            bench0,
            bench1,
            selfUs: self.user + self.system,
            generatorUs: result?.cpuUs ?? 0,
            wallUs,
          }),
    // Share of the run during which some runnable task waited for a CPU (Linux PSI): how
    // contended the machine was while this figure was taken.
    cpuPressurePct:
      psi0 === undefined || psi1 === undefined ? undefined : Math.min(100, ((psi1 - psi0) / wallUs) * 100),
    perHop: hops.map((h, i) => ({ role: h.role, cpuUs: after[i] - before[i], rssBytes: rss.get(h.pid) ?? 0 })),
  };
}

/** Now on CLOCK_MONOTONIC in µs: the clock of the proxies' --cpu-prof profiles (profile-summary.mjs --results). */
function monotonicUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * The fixed-rate run, taken again while the machine's other work disturbed it (see the top of
 * this file). RSS at the rate: the peak over every take.
 */
async function fixedRate(s, o, benchPids) {
  const takes = [];
  for (let i = 0; i <= o.latencyRetakes; i++) {
    const t = await withResources(s.hops, () => runLoadgen(s.url, o), benchPids);
    takes.push(t);
    if (!(t.outsideCpus > OUTSIDE_LIMIT_CPUS)) break;
    o.log(
      `  ${s.name}: other processes used ${t.outsideCpus.toFixed(2)} CPUs during the fixed-rate run` +
        (i < o.latencyRetakes ? '; taking it again' : '; kept the least disturbed take'),
    );
    if (i < o.latencyRetakes) await sleep(500);
  }
  const kept =
    takes.find((t) => !(t.outsideCpus > OUTSIDE_LIMIT_CPUS)) ??
    takes.reduce((a, b) => ((b.outsideCpus ?? Infinity) < (a.outsideCpus ?? Infinity) ? b : a));
  const rssBytes = s.hops.map((_, i) => Math.max(...takes.map((t) => t.perHop[i].rssBytes)));
  return {
    ...kept,
    result: {
      ...kept.result,
      outsideCpus: kept.outsideCpus,
      disturbed: kept.outsideCpus > OUTSIDE_LIMIT_CPUS,
      takes: takes.map((t) => ({ outsideCpus: t.outsideCpus, p99: t.result.latencyMs.p99 })),
    },
    perHop: kept.perHop.map((h, i) => ({ ...h, rssBytes: rssBytes[i] })),
  };
}

async function measureScenario(s, o, benchPids) {
  const fromUs = monotonicUs();
  const tp = await withResources(s.hops, () => runWrk(s.url, o, o.durationSec, s.close === true));
  // When the throughput run ran, so a profile can be cut to it (the latency run follows in the same processes).
  const throughputWindowUs = [fromUs, monotonicUs()];
  const requests = tp.result.requests;
  await sleep(500);
  // A Connection: close scenario measures the cost of new connections at saturation only.
  if (s.close) {
    return {
      rps: tp.result.rps,
      requests,
      wrkErrors: tp.result.errors,
      wrkErrorDetail: tp.result.errorDetail,
      wrkLatencyUs: tp.result.latencyUs,
      cpuPressurePct: tp.cpuPressurePct,
      throughputWindowUs,
      latency: undefined,
      hops: s.hops.map((h, i) => ({
        role: h.role,
        cpuUsPerReq: tp.perHop[i].cpuUs / Math.max(1, requests),
        rssPeakMB: tp.perHop[i].rssBytes / 1048576,
      })),
    };
  }
  const lat = await fixedRate(s, o, benchPids);
  // The latency run's CPU counts its 1 s warm-up too; divide by every request it sent.
  const latRequests = Math.max(1, Math.round(lat.result.issued * (1 + 1000 / (o.latencySec * 1000))));
  const hops = s.hops.map((h, i) => ({
    role: h.role,
    cpuUsPerReq: tp.perHop[i].cpuUs / Math.max(1, requests),
    cpuUsPerReqAtRate: lat.perHop[i].cpuUs / latRequests,
    rssPeakMB: tp.perHop[i].rssBytes / 1048576,
    rssAtRateMB: lat.perHop[i].rssBytes / 1048576,
  }));
  return {
    rps: tp.result.rps,
    requests,
    wrkErrors: tp.result.errors,
    wrkErrorDetail: tp.result.errorDetail,
    wrkLatencyUs: tp.result.latencyUs,
    cpuPressurePct: tp.cpuPressurePct,
    throughputWindowUs,
    latency: lat.result,
    hops,
  };
}

/**
 * @param {DataPlaneOptions} o
 * @returns {Promise<{ scenarios: Array<{ name: string, kind: string, note: string, hopCount: number }>, rounds: Array<Record<string, any>> }>}
 */
export async function runDataPlane(o) {
  o.log(`starting ${o.scenarios.join(', ')} (registry, certificates, proxies) …`);
  const env = await startScenarios({
    dir: o.dir,
    names: o.scenarios,
    profileDir: o.profileDir,
    proxyNodeArgs: o.proxyNodeArgs,
    log: o.log,
  });
  try {
    const list = env.scenarios;
    if (o.warmupSec > 0) {
      o.log(`warm-up: ${o.warmupSec} s of wrk on each scenario`);
      for (const s of list) await runWrk(s.url, o, o.warmupSec);
    }
    const benchPids = [env.upstreamPid, ...list.flatMap((s) => s.hops.map((h) => h.pid))];
    const rounds = [];
    for (let r = 0; r < o.rounds; r++) {
      // Rotated each round, but the Connection: close runs last: they share the L4 pair's
      // processes, and the thousands of connections they churn would raise the RSS those
      // processes show in the keep-alive runs after them.
      const keep = list.filter((s) => !s.close);
      const order = [...keep.map((_, i) => keep[(i + r) % keep.length]), ...list.filter((s) => s.close)];
      const round = {};
      for (const s of order) {
        const m = await measureScenario(s, o, benchPids);
        round[s.name] = m;
        const errs = m.wrkErrors + (m.latency ? m.latency.errors + m.latency.non200 : 0);
        o.log(
          `round ${r + 1}/${o.rounds} ${s.name.padEnd(21)} ${Math.round(m.rps).toString().padStart(6)} req/s` +
            (m.cpuPressurePct !== undefined ? ` (cpu pressure ${Math.round(m.cpuPressurePct)}%)` : '') +
            (m.latency
              ? `  p50 ${m.latency.latencyMs.p50.toFixed(3)} ms  p99 ${m.latency.latencyMs.p99.toFixed(3)} ms` +
                (m.latency.outsideCpus !== undefined ? ` (others ${m.latency.outsideCpus.toFixed(2)} CPUs)` : '') +
                (m.latency.disturbed ? ' DISTURBED' : '')
              : '') +
            (m.hops.length ? `  cpu ${m.hops.map((h) => h.cpuUsPerReq.toFixed(1)).join('/')} µs/req` : '') +
            (errs ? `  ERRORS ${errs}` : ''),
        );
      }
      rounds.push(round);
    }
    return {
      scenarios: list.map((s) => ({ name: s.name, kind: s.kind, note: s.note, hopCount: s.hops.length, url: s.url })),
      rounds,
    };
  } finally {
    await env.stop();
  }
}
