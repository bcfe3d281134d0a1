/**
 * Loaded into a process by the benches with `--import` (the control-plane bench's `--mem-log`
 * for the registries; `npm run bench -- --proxy-node-args=--import=<this file>` for the
 * proxies): every 100 ms one JSON line of process.memoryUsage(), the V8 young, old and code
 * space sizes (committed and physical) and the kernel's split of RSS into anonymous and
 * file-backed pages, appended to the file MESHCTL_BENCH_MEM_LOG names. /proc shows only RSS;
 * this says how much of it is the JS heap (and which generation), how much is outside it
 * (OpenSSL, socket buffers, malloc) and how much is the node binary's and libraries' own pages
 * (RssFile), per phase of the bench. Each line carries the pid and MESHCTL_PROXY_SERVICE (the
 * bench's proxies set it), so one file can hold several processes. Nothing in meshctl loads it.
 */
import { openSync, readFileSync, writeSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

/** RssAnon and RssFile of this process in bytes (/proc/self/status), or undefined off Linux. */
function rssSplit() {
  try {
    const s = readFileSync('/proc/self/status', 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
  } catch {
    return { rssAnon: undefined, rssFile: undefined };
  }
}

const file = process.env.MESHCTL_BENCH_MEM_LOG;
if (file) {
  const fd = openSync(file, 'a', 0o600);
  const service = process.env.MESHCTL_PROXY_SERVICE;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const stats = getHeapSpaceStatistics();
    const spaces = Object.fromEntries(stats.map((s) => [s.space_name, s.space_size]));
    const physical = Object.fromEntries(stats.map((s) => [s.space_name, s.physical_space_size]));
    const line = {
      t: Date.now(),
      // The clock of a --cpu-prof profile (monotonic µs): a phase's epoch times map onto it.
      mono: Number(process.hrtime.bigint() / 1000n),
      pid: process.pid,
      ...(service ? { service } : {}),
      rss: m.rss,
      ...rssSplit(),
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      newSpace: spaces.new_space ?? 0,
      oldSpace: spaces.old_space ?? 0,
      newSpacePhysical: physical.new_space ?? 0,
      oldSpacePhysical: physical.old_space ?? 0,
      codeSpacePhysical: physical.code_space ?? 0,
      largeObjectSpacePhysical: physical.large_object_space ?? 0,
    };
    writeSync(fd, `${JSON.stringify(line)}\n`);
  }, 100);
  // Never what keeps the process alive.
  timer.unref();
}
