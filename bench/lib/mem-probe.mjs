/**
 * Loaded into a registry by the control-plane bench with `--mem-log` (NODE_OPTIONS
 * `--import`): every 100 ms one JSON line of process.memoryUsage() and the V8 young and old
 * space sizes, appended to the file MESHCTL_BENCH_MEM_LOG names. /proc shows only RSS; this
 * says how much of it is the JS heap (and which generation) and how much is outside it
 * (OpenSSL, socket buffers), per phase of the bench. Nothing in meshctl loads it.
 */
import { openSync, writeSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const file = process.env.MESHCTL_BENCH_MEM_LOG;
if (file) {
  const fd = openSync(file, 'a', 0o600);
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
    const line = {
      t: Date.now(),
      // The clock of a --cpu-prof profile (monotonic µs): a phase's epoch times map onto it.
      mono: Number(process.hrtime.bigint() / 1000n),
      rss: m.rss,
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      newSpace: spaces.new_space ?? 0,
      oldSpace: spaces.old_space ?? 0,
    };
    writeSync(fd, `${JSON.stringify(line)}\n`);
  }, 100);
  // Never what keeps the registry alive.
  timer.unref();
}
