/**
 * Open-loop load at a fixed rate (wrk cannot hold a rate, and Debian has no wrk2): requests
 * start on a schedule whether or not earlier ones have finished, so a slow proxy shows up as
 * latency instead of quietly lowering the rate. Latencies go into an HDR histogram.
 *
 * Latency is measured from the moment the request is issued to the last byte of the answer.
 * The generator's own lateness (the timer firing after the scheduled start) is recorded
 * apart, so a run where the generator could not keep up is visible rather than hidden.
 *
 *   node bench/loadgen.mjs '{"url":"http://127.0.0.1:P/","rate":1000,"durationMs":8000,"warmupMs":1000,"connections":8}'
 *
 * Prints one JSON line (`LOADGEN {...}`) and exits.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';

const o = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(o.url);
const rate = Number(o.rate ?? 1000);
const durationMs = Number(o.durationMs ?? 8000);
const warmupMs = Number(o.warmupMs ?? 1000);
const connections = Number(o.connections ?? 8);
const REQUEST_TIMEOUT_MS = 5000;

const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
const histogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
/** Microseconds, issue → last byte. */
const latency = histogram();
/** Microseconds the issue came after its scheduled time. */
const lateness = histogram();

let issued = 0;
let completed = 0;
let ok = 0;
let errors = 0;
let non200 = 0;
let outstanding = 0;

function fire(scheduledAt, measured) {
  const start = performance.now();
  if (measured) {
    issued += 1;
    lateness.recordValue(Math.max(1, Math.round((start - scheduledAt) * 1000)));
  }
  outstanding += 1;
  let settled = false;
  const finish = (good, status) => {
    if (settled) return;
    settled = true;
    outstanding -= 1;
    if (!measured) return;
    completed += 1;
    if (!good) errors += 1;
    else if (status !== 200) non200 += 1;
    else {
      ok += 1;
      latency.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)));
    }
  };
  const req = request(
    { host: url.hostname, port: url.port, path: url.pathname, agent, timeout: REQUEST_TIMEOUT_MS },
    (res) => {
      res.on('data', () => {});
      res.once('end', () => finish(true, res.statusCode));
      res.once('error', () => finish(false));
    },
  );
  req.once('timeout', () => req.destroy(new Error('timeout')));
  req.once('error', () => finish(false));
  req.end();
}

const intervalMs = 1000 / rate;
const t0 = performance.now() + 20;
const measureFrom = t0 + warmupMs;
const end = measureFrom + durationMs;
let n = 0;

function tick() {
  const now = performance.now();
  for (;;) {
    const at = t0 + n * intervalMs;
    if (at > now || at >= end) break;
    fire(at, at >= measureFrom);
    n += 1;
  }
  if (t0 + n * intervalMs >= end) {
    void finishRun();
    return;
  }
  setTimeout(tick, Math.max(0, t0 + n * intervalMs - performance.now()));
}

function cpuUsedUs() {
  const c = process.cpuUsage();
  return Math.round(c.user + c.system);
}

async function finishRun() {
  const deadline = performance.now() + REQUEST_TIMEOUT_MS + 1000;
  while (outstanding > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const ms = (h, q) => Math.round(h.getValueAtPercentile(q)) / 1000;
  const result = {
    rate,
    durationMs,
    issued,
    completed,
    ok,
    errors: errors + outstanding,
    non200,
    achievedRps: Math.round((issued / durationMs) * 1000),
    latencyMs: {
      p50: ms(latency, 50),
      p90: ms(latency, 90),
      p99: ms(latency, 99),
      p999: ms(latency, 99.9),
      max: latency.maxValue / 1000,
      mean: Math.round(latency.mean) / 1000,
    },
    latenessMs: { p50: ms(lateness, 50), p99: ms(lateness, 99), max: lateness.maxValue / 1000 },
    // All the CPU this process used, start-up included: the bench counts it as its own, not the machine's other work.
    cpuUs: cpuUsedUs(),
  };
  process.stdout.write(`LOADGEN ${JSON.stringify(result)}\n`);
  agent.destroy();
  process.exit(0);
}

setTimeout(tick, 20);
