/**
 * `npm run bench`: builds the project, then runs the data-plane bench (direct, haproxy pairs,
 * meshctl L4/L7 pairs, side by side) and the control-plane bench (watchers), prints the
 * tables with ratios and the targets, and writes bench/results/<time>.json, latest.json and
 * latest.md. Everything runs on loopback, stops by itself (a global deadline), and stops
 * only processes it started.
 *
 *   npm run bench -- [--rounds 3] [--duration 8] [--connections 32] [--threads 2]
 *                    [--rate 1000] [--latency-duration 6] [--latency-retakes 2] [--warmup 2]
 *                    [--scenarios direct,haproxy-pair,…] [--watchers 100,1000[,5000]]
 *                    [--cp-rounds 3] [--cp-store sqlite,etcd] (sqlite, memory, etcd: each in turn)
 *                    [--skip-control-plane] [--skip-data-plane] [--no-build]
 *                    [--profile DIR] [--proxy-node-args '--trace-gc …'] [--quick] [--deadline-min 20]
 *                    [--keep-logs]
 *
 * --latency-retakes N: a fixed-rate run during which other processes used more than 0.15 CPUs
 * (the machine's other work, measured from /proc/stat) is taken again, up to N times; the first
 * undisturbed take is kept, else the least disturbed, marked DISTURBED (bench/data-plane.mjs).
 *
 * MESHCTL_PROXY_STALL_LOG_MS=N in the environment makes the meshctl proxies log every event-loop
 * stall of N ms or more (src/proxy/loop-delay.ts) into their logs (kept with --keep-logs).
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results');

let parsed;
try {
  parsed = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '8' },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      rate: { type: 'string', default: '1000' },
      'latency-duration': { type: 'string', default: '6' },
      'latency-retakes': { type: 'string', default: '2' },
      warmup: { type: 'string', default: '2' },
      scenarios: { type: 'string' },
      // 5,000 is opt-in: on a shared 2-core box its 5,000 TLS handshakes alone take minutes.
      watchers: { type: 'string', default: '100,1000' },
      'cp-rounds': { type: 'string', default: '3' },
      // Both backends side by side in one run (issue 12); etcd runs two registries on 3 members.
      'cp-store': { type: 'string', default: 'sqlite,etcd' },
      'skip-control-plane': { type: 'boolean', default: false },
      'skip-data-plane': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      profile: { type: 'string' },
      'proxy-node-args': { type: 'string' },
      quick: { type: 'boolean', default: false },
      'deadline-min': { type: 'string', default: '20' },
      'keep-logs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n  see: npm run bench -- --help\n`);
  process.exit(2);
}
const v = parsed.values;

if (v.help) {
  const src = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  process.stdout.write(`${src.slice(src.indexOf('/**'), src.indexOf('*/') + 2)}\n`);
  process.exit(0);
}

const num = (name, value, min, maxV) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > maxV) {
    process.stderr.write(`error: --${name} must be a number from ${min} to ${maxV} (got '${value}')\n`);
    process.exit(2);
  }
  return n;
};

const quick = v.quick;
const opts = {
  rounds: quick ? 1 : num('rounds', v.rounds, 1, 20),
  durationSec: quick ? 3 : num('duration', v.duration, 1, 120),
  connections: num('connections', v.connections, 1, 4096),
  threads: num('threads', v.threads, 1, 64),
  rate: num('rate', v.rate, 1, 100_000),
  latencySec: quick ? 3 : num('latency-duration', v['latency-duration'], 1, 120),
  latencyRetakes: quick ? 0 : num('latency-retakes', v['latency-retakes'], 0, 10),
  warmupSec: quick ? 1 : num('warmup', v.warmup, 0, 60),
};
const watchers = (quick ? '100' : v.watchers).split(',').map((x) => num('watchers', x, 1, 20_000));
const cpRounds = quick ? 1 : num('cp-rounds', v['cp-rounds'], 1, 20);
const cpStores = v['cp-store'].split(',').filter((x) => x !== '');
const badStore = cpStores.find((x) => !['sqlite', 'memory', 'etcd'].includes(x));
if (badStore !== undefined || cpStores.length === 0) {
  process.stderr.write(
    `error: --cp-store takes a comma-separated list of sqlite, memory and etcd (got '${v['cp-store']}')\n`,
  );
  process.exit(2);
}

const log = (s) => process.stdout.write(`[bench] ${s}\n`);

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
function firstLine(cmd, args) {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim()) ?? undefined;
  } catch {
    return undefined;
  }
}

// Tools first: install nothing, say what is missing and stop.
if (!v['skip-data-plane']) {
  const missing = ['wrk', 'haproxy'].filter((c) => !which(c));
  if (missing.length) {
    process.stderr.write(
      `error: the data-plane bench needs ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed.\n  apt-get install wrk haproxy\n(or run only the control-plane bench: npm run bench -- --skip-data-plane)\n`,
    );
    process.exit(3);
  }
}

if (!v['skip-control-plane'] && cpStores.includes('etcd') && !which('etcd')) {
  process.stderr.write(
    `error: the control-plane bench on etcd needs etcd, which is not installed.\n  apt-get install etcd-server\n(or run the control plane on sqlite only: npm run bench -- --cp-store sqlite)\n`,
  );
  process.exit(3);
}

let buildNote = v['no-build'] ? 'not built by this run (--no-build)' : 'built';
if (!v['no-build']) {
  log('building (npx tsc -p tsconfig.build.json) …');
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, stdio: 'inherit' });
  // tsc exits 2 when it found type errors but still wrote every file (noEmitOnError is off):
  // in a tree where others are mid-change that is usually someone else's folder, so the bench
  // goes on and says so in its results; any other failure stops it.
  if (r.status === 2) {
    buildNote = 'built with type errors (see the build output)';
    log(
      'warning: the build reported type errors (above) but wrote dist/; benchmarking that build, and the results say so',
    );
  } else if (r.status !== 0) {
    process.stderr.write(
      'error: the build failed; fix the errors above, or run with --no-build against the current dist/.\n',
    );
    process.exit(1);
  }
}

// Imported after the build: these load compiled modules from dist/.
const procs = await import('../bench/lib/procs.mjs');
const { runDataPlane, ALL_SCENARIOS, DEFAULT_SCENARIOS } = await import('../bench/data-plane.mjs');
const { runControlPlane } = await import('../bench/control-plane.mjs');
const { etcdVersion } = await import('../bench/lib/etcd.mjs');
const report = await import('../bench/report.mjs');

const scenarios = v.scenarios ? v.scenarios.split(',') : DEFAULT_SCENARIOS;
for (const s of scenarios) {
  if (!ALL_SCENARIOS.includes(s)) {
    process.stderr.write(`error: unknown scenario '${s}' (known: ${ALL_SCENARIOS.join(', ')})\n`);
    process.exit(2);
  }
}

const workDir = mkdtempSync(join(tmpdir(), 'meshctl-bench-'));
let failed = false;
const cleanup = async () => {
  await procs.stopAll();
  if (!failed && !v['keep-logs']) rmSync(workDir, { recursive: true, force: true });
};
process.on('exit', () => procs.killAllNow());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping everything this bench started`);
    failed = true;
    void cleanup().finally(() => process.exit(130));
  });
}
const deadlineMin = num('deadline-min', v['deadline-min'], 1, 240);
const deadline = setTimeout(() => {
  process.stderr.write(`error: the bench ran past its ${deadlineMin}-minute deadline; stopping (logs in ${workDir})\n`);
  failed = true;
  void cleanup().finally(() => process.exit(1));
}, deadlineMin * 60_000);
deadline.unref();

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO, encoding: 'utf8' }).trim()
        .length > 0;
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const started = new Date();
const meta = {
  date: started.toISOString(),
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  options: { ...opts, scenarios, watchers, cpRounds, cpStores },
  git: gitInfo(),
  build: buildNote,
  machine: {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGB: Math.round(totalmem() / 2 ** 30),
    freeMemGB: Math.round(freemem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.version,
    haproxy: which('haproxy') ? firstLine('haproxy', ['-v']) : undefined,
    wrk: which('wrk') ? firstLine('wrk', ['-v'])?.replace(/ Copyright.*/, '') : undefined,
    etcd: etcdVersion(),
    loadBefore: load(),
    loadAfter: '',
  },
};

const result = { meta, dataPlane: undefined, controlPlane: undefined, targets: [] };
try {
  log(
    `machine: ${meta.machine.nproc} × ${meta.machine.cpuModel}, load ${meta.machine.loadBefore}; work dir ${workDir}`,
  );
  if (!v['skip-data-plane']) {
    const profileDir = v.profile ? join(v.profile) : undefined;
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    const proxyNodeArgs = v['proxy-node-args'] ? v['proxy-node-args'].split(/\s+/).filter(Boolean) : [];
    const dp = await runDataPlane({ ...opts, scenarios, dir: workDir, profileDir, proxyNodeArgs, log });
    result.dataPlane = { ...dp, summary: report.summarizeDataPlane(dp) };
    if (profileDir)
      log(`CPU profiles of the meshctl proxies: ${profileDir} (read one with: node bench/profile-summary.mjs FILE)`);
  }
  if (!v['skip-control-plane']) {
    const profileDir = v.profile ? join(v.profile) : undefined;
    const backends = [];
    for (const store of cpStores) {
      backends.push(
        await runControlPlane({
          watchers,
          rounds: cpRounds,
          store,
          dir: join(workDir, `cp-${store}`),
          profileDir: profileDir ? join(profileDir, `cp-${store}`) : undefined,
          log,
        }),
      );
    }
    result.controlPlane = { rounds: cpRounds, backends };
    if (profileDir) log(`CPU profiles of the registries: ${join(profileDir, 'cp-<store>')}`);
  }
  meta.machine.loadAfter = load();
  result.targets = report.evaluateTargets(result.dataPlane?.summary, result.controlPlane);

  process.stdout.write('\n');
  if (result.dataPlane)
    process.stdout.write(
      `DATA PLANE (medians of ${opts.rounds} rounds; ratios vs haproxy-pair and direct)\n${report.textTable(report.dataPlaneRows(result.dataPlane.summary))}\n\n`,
    );
  if (result.controlPlane)
    process.stdout.write(`CONTROL PLANE\n${report.textTable(report.controlPlaneRows(result.controlPlane))}\n\n`);
  process.stdout.write(`TARGETS\n${report.textTable(report.targetRows(result.targets))}\n\n`);
  process.stdout.write(
    `load average before → after: ${meta.machine.loadBefore} → ${meta.machine.loadAfter} (shared machine: figures are noisy)\n`,
  );

  mkdirSync(RESULTS, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify(result, null, 2);
  writeFileSync(join(RESULTS, `${stamp}.json`), json);
  writeFileSync(join(RESULTS, 'latest.json'), json);
  writeFileSync(join(RESULTS, 'latest.md'), report.markdownReport(result));
  log(`wrote bench/results/${stamp}.json, latest.json and latest.md`);
  const errors = Object.values(result.dataPlane?.summary ?? {}).reduce((a, s) => a + s.errors, 0);
  if (errors > 0) log(`warning: ${errors} requests failed during the data-plane runs (see the errors column)`);
} catch (e) {
  failed = true;
  process.stderr.write(
    `error: the bench failed: ${e instanceof Error ? e.message : String(e)}\n  logs and configs are kept in ${workDir}\n`,
  );
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await cleanup();
}
