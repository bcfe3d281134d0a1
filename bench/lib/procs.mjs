/**
 * Child processes of the bench, and what /proc says about them. Every process the bench
 * starts goes through here, so clean-up stops exactly those PIDs and nothing else, on a
 * normal end, an error, Ctrl-C or the global deadline.
 */
import { spawn, execFileSync } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';

/** @typedef {{ pid: number, name: string, child: import('node:child_process').ChildProcess, exited: Promise<{ code: number | null, signal: string | null }> }} Started */

/** @type {Set<Started>} */
const running = new Set();

/**
 * Starts a long-lived process with stdout/stderr appended to `logFile`.
 * @param {string} name @param {string} cmd @param {string[]} args
 * @param {{ logFile: string, env?: NodeJS.ProcessEnv, ipc?: boolean, cwd?: string }} o
 * @returns {Started}
 */
export function startProcess(name, cmd, args, o) {
  const fd = openSync(o.logFile, 'a', 0o600);
  let child;
  try {
    child = spawn(cmd, args, {
      cwd: o.cwd,
      env: o.env ?? process.env,
      stdio: o.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd} (see ${o.logFile})`);
  /** @type {Started} */
  const p = { pid: child.pid, name, child, exited };
  running.add(p);
  void exited.then(() => running.delete(p));
  return p;
}

/**
 * Runs a command to completion and returns its stdout; killed (and rejected) after `timeoutMs`.
 * @param {string} cmd @param {string[]} args @param {{ timeoutMs: number, cwd?: string }} o
 * @returns {Promise<{ stdout: string, stderr: string, code: number | null }>}
 */
export function runToEnd(cmd, args, o) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) {
      child.once('error', reject);
      return;
    }
    /** @type {Started} */
    const p = {
      pid: child.pid,
      name: cmd,
      child,
      exited: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))),
    };
    running.add(p);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d.length + stderr.length > 64_000 ? '' : d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} did not finish within ${Math.round(o.timeoutMs / 1000)} s`));
    }, o.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      running.delete(p);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(p);
      resolve({ stdout, stderr, code });
    });
  });
}

/**
 * Stops one started process: SIGTERM, then SIGKILL if it is still there after `graceMs`.
 * @param {Started} p @param {number} [graceMs]
 */
export async function stopProcess(p, graceMs = 3000) {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
}

/** Stops every process this bench started and that is still running. */
export async function stopAll() {
  await Promise.all([...running].map((p) => stopProcess(p, 2000)));
}

/** Synchronous last resort (process 'exit'): SIGKILL whatever of ours is left. */
export function killAllNow() {
  for (const p of running) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

// --- /proc ------------------------------------------------------------------------------

let clkTck = 0;
/** Kernel clock ticks per second (the unit of utime/stime in /proc/<pid>/stat). */
export function clockTicksPerSecond() {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** A process's CPU so far (µs) in user and in kernel mode (utime, stime of /proc/PID/stat). */
export function cpuSplitMicros(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const hz = clockTicksPerSecond();
  return { user: (Number(f[11]) * 1e6) / hz, sys: (Number(f[12]) * 1e6) / hz };
}

/** User + system CPU time of a process so far, in microseconds. */
export function cpuMicros(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  const ticks = Number(f[11]) + Number(f[12]);
  return (ticks * 1e6) / clockTicksPerSecond();
}

/**
 * Idle time of the whole machine so far (idle + iowait over all CPUs, from /proc/stat), in
 * microseconds, and the number of CPUs, or undefined where there is no /proc/stat. The busy time of
 * a window is then CPUs × wall − idle: /proc/stat's idle is measured exactly on a tickless kernel,
 * while its user and system times are sampled at the timer tick and miss much of a fixed-rate
 * run's short bursts of work (they read 10-20 % under the processes' own times there).
 * @returns {{ idleUs: number, cpus: number } | undefined}
 */
export function machineIdle() {
  try {
    const lines = readFileSync('/proc/stat', 'utf8').split('\n');
    const f = lines[0].trim().split(/\s+/);
    // cpu  user nice system idle iowait irq softirq steal …
    const cpus = lines.filter((l) => /^cpu\d/.test(l)).length;
    return { idleUs: ((Number(f[4]) + Number(f[5])) * 1e6) / clockTicksPerSecond(), cpus };
  } catch {
    return undefined;
  }
}

/**
 * CPUs' worth of work other processes did over a window: the machine's busy time (CPUs × wall
 * less its idle time, machineIdle) less the bench's own processes' (each PID once: a `-close`
 * scenario runs on its base scenario's processes, so a list of every scenario's hops names those
 * twice), the bench's and the load generator's. All in µs; `bench0`/`bench1` map a PID to its CPU
 * at the start and the end.
 * @param {{ idle0: number, idle1: number, cpus: number, bench0: Map<number, number>, bench1: Map<number, number>,
 *   selfUs: number, generatorUs: number, wallUs: number }} w
 */
export function outsideCpus(w) {
  let benchUs = 0;
  for (const [pid, before] of w.bench0) benchUs += (w.bench1.get(pid) ?? before) - before;
  const busyUs = w.cpus * w.wallUs - (w.idle1 - w.idle0);
  return (busyUs - benchUs - w.selfUs - w.generatorUs) / w.wallUs;
}

/** CPU so far of each PID, once each (a Map keyed by PID; 0 for one that is gone). */
export function cpuByPid(pids) {
  return new Map([...new Set(pids)].map((pid) => [pid, cpuMicrosOrZero(pid)]));
}

/** User + system CPU time of a process so far in µs, or 0 once it is gone. */
export function cpuMicrosOrZero(pid) {
  try {
    return cpuMicros(pid);
  } catch {
    return 0;
  }
}

/** Resident set size in bytes (VmRSS), or undefined once the process is gone. */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Total microseconds during which some runnable task waited for a CPU (/proc/pressure/cpu,
 * "some"), or undefined where the kernel has no PSI.
 */
export function cpuPressureMicros() {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the RSS of some processes on an interval and keeps the maximum of each. */
export class RssSampler {
  /** @param {number[]} pids @param {number} [intervalMs] */
  constructor(pids, intervalMs = 200) {
    /** @type {Map<number, number>} */
    this.max = new Map(pids.map((p) => [p, 0]));
    /**
     * Max RSS per phase and pid (see mark): whether a peak comes while connections are taken,
     * while queries are held or while one change's answers go out.
     * @type {Map<string, Map<number, number>>}
     */
    this.phases = new Map();
    /** @type {string | undefined} */
    this.phase = undefined;
    /** @type {Array<{ t: number, phase: string }>} when each phase began (ms since the epoch) */
    this.marks = [];
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }
  /**
   * From now on samples count toward `phase` too (one phase at a time). A sample is taken at
   * the boundary for both sides, so a phase shorter than the interval still has one.
   * @param {string} phase
   */
  mark(phase) {
    this.sample();
    this.phase = phase;
    // mono: the clock of a --cpu-prof profile (monotonic µs), to cut a profile to one phase.
    this.marks.push({ t: Date.now(), mono: Number(process.hrtime.bigint() / 1000n), phase });
    if (!this.phases.has(phase)) this.phases.set(phase, new Map());
    this.sample();
  }
  sample() {
    const ph = this.phase === undefined ? undefined : this.phases.get(this.phase);
    for (const pid of this.max.keys()) {
      const r = rssBytes(pid);
      if (r === undefined) continue;
      if (r > (this.max.get(pid) ?? 0)) this.max.set(pid, r);
      if (ph && r > (ph.get(pid) ?? 0)) ph.set(pid, r);
    }
  }
  /** @returns {Map<number, number>} max RSS in bytes per pid */
  stop() {
    clearInterval(this.timer);
    this.sample();
    return this.max;
  }
  /** @param {number} pid @returns {Record<string, number>} max RSS in bytes per phase for one pid */
  byPhase(pid) {
    return Object.fromEntries([...this.phases].map(([phase, m]) => [phase, m.get(pid) ?? 0]));
  }
}

// --- ports and readiness -----------------------------------------------------------------

/** A port that is free on `host` right now (the OS picks it). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/**
 * Resolves once a TCP connect to host:port succeeds; rejects after `timeoutMs`, or at once
 * when `proc` (the process that should listen there) has exited.
 * @param {string} host @param {number} port @param {number} [timeoutMs] @param {string} [what] @param {Started} [proc]
 */
export async function waitForPort(host, port, timeoutMs = 15_000, what = `${host}:${port}`, proc = undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`${what} exited (${proc.child.exitCode ?? proc.child.signalCode}) before listening`);
    }
    const ok = await new Promise((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`${what} is not accepting connections after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(50);
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether an executable is on PATH. */
export function onPath(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
