/**
 * Control-plane bench: how fast a change reaches every agent. A registry runs as its own
 * process (`meshctl registry start`, default sqlite store) so its RSS and CPU are its own;
 * N simulated agents (watchers.mjs, up to 500 per process) each hold a blocking query; then
 *
 *   registration  a node registers a new `api` instance  → every catalog watcher has it
 *   intention     the admin flips web → api              → every intentions watcher has it
 *
 * timed from the change being acknowledged (the PUT answered) to each watcher's answer.
 * Runnable alone after a build: node bench/control-plane.mjs [--watchers 100,1000] [--rounds 3] [--store sqlite|memory] [--profile DIR]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CLI_ENTRY, REPO, distImport } from './lib/dist.mjs';
import {
  cpuMicros,
  freePort,
  rssBytes,
  RssSampler,
  sleep,
  startProcess,
  stopAll,
  stopProcess,
  waitForPort,
} from './lib/procs.mjs';
import { median } from './report.mjs';

const PER_PROCESS = 500;
const now = () => performance.timeOrigin + performance.now();

function percentile(sorted, q) {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))];
}

/** One watcher process: a promise-based face over its IPC messages. */
function watcherProcess(dir, i) {
  const p = startProcess(`watchers-${i}`, process.execPath, [join(REPO, 'bench', 'watchers.mjs')], {
    logFile: join(dir, `watchers-${i}.log`),
    ipc: true,
  });
  /** @type {Array<(m: any) => void>} */
  let waiting = [];
  p.child.on('message', (m) => {
    const w = waiting;
    waiting = [];
    for (const f of w) f(m);
  });
  const next = (cmd, timeoutMs) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new Error(
              `watcher process ${i}: no '${cmd}' within ${Math.round(timeoutMs / 1000)} s (log: ${join(dir, `watchers-${i}.log`)})`,
            ),
          ),
        timeoutMs,
      );
      t.unref();
      const f = (m) => {
        if (m.cmd === cmd) {
          clearTimeout(t);
          resolve(m);
        } else waiting.push(f);
      };
      waiting.push(f);
    });
  return { proc: p, send: (m) => p.child.send(m), next };
}

/**
 * @param {{ watchers: number[], rounds: number, store: 'sqlite' | 'memory', dir: string, profileDir?: string, log: (s: string) => void }} o
 */
export async function runControlPlane(o) {
  const { initServer } = await distImport('registry/bootstrap.js');
  const { RegistryClient } = await distImport('api/registry-client.js');
  const { createKeyAndCsr, nodeId } = await distImport('ca/index.js');

  const dataDir = join(o.dir, 'cp-registry');
  const port = await freePort('127.0.0.1');
  const init = await initServer({
    dataDir,
    bind: `127.0.0.1:${port}`,
    defaultIntention: 'deny',
    advertise: '127.0.0.1',
  });
  const caPem = await readFile(init.caCertPath, 'utf8');
  const nodeArgs = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, 'registry')] : [];
  const registry = startProcess(
    'registry',
    process.execPath,
    [...nodeArgs, CLI_ENTRY, 'registry', 'start', '--data-dir', dataDir, '--store', o.store],
    {
      logFile: join(o.dir, 'cp-registry.log'),
      env: { ...process.env, MESHCTL_LOG_LEVEL: 'warn' },
    },
  );
  const clients = [];
  const client = (x) => {
    const c = new RegistryClient({ baseUrl: `https://127.0.0.1:${port}`, ca: caPem, ...x });
    clients.push(c);
    return c;
  };
  try {
    await waitForPort('127.0.0.1', port, 20_000, `the registry (log: ${join(o.dir, 'cp-registry.log')})`, registry);
    const admin = client({ token: init.adminToken });
    const joinNode = async (name) => {
      const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(init.trustDomain, name) });
      // Join tokens are single-use and scoped: one per node, allowed to register any service.
      const made = await admin.createToken(`bench node ${name}`, undefined, { anyService: true, uses: 1 });
      const res = await client({ token: made.token }).join({ nodeName: name, address: '127.0.0.1', csr: csrPem });
      const c = client({ cert: res.certificate, key: keyPem });
      // An hour's lease: no lease expiry may wake the watchers during the bench.
      await c.heartbeat(name, 3600);
      return { client: c, certPem: res.certificate, keyPem };
    };
    const registrar = await joinNode('cp-registrar');
    const maxProcs = Math.ceil(Math.max(...o.watchers) / PER_PROCESS);
    const identities = [];
    for (let i = 0; i < maxProcs; i++) identities.push(await joinNode(`cp-agent-${i + 1}`));
    let intentionAction = 'allow';

    const runs = [];
    for (const n of o.watchers) {
      const procCount = Math.ceil(n / PER_PROCESS);
      const counts = Array.from({ length: procCount }, (_, i) => Math.min(PER_PROCESS, n - i * PER_PROCESS));
      o.log(`control plane: ${n} watchers in ${procCount} process(es)`);
      const procs = counts.map((_, i) => watcherProcess(o.dir, `${n}-${i}`));
      try {
        await Promise.all(
          procs.map((w, i) => {
            const ready = w.next('ready', 20_000);
            w.send({
              cmd: 'init',
              baseUrl: `https://127.0.0.1:${port}`,
              caPem,
              certPem: identities[i].certPem,
              keyPem: identities[i].keyPem,
              count: counts[i],
            });
            return ready;
          }),
        );
        const rssBefore = rssBytes(registry.pid) ?? 0;
        const sampler = new RssSampler([registry.pid], 100);
        const armCpu = [];
        const samples = { registration: [], intention: [] };

        /** Arms every watcher, waits until the registry holds all N queries, makes the change, collects. */
        const measure = async (kind, index, expect, change) => {
          const cpu0 = cpuMicros(registry.pid);
          const results = procs.map((w) => {
            const p = w.next('result', 90_000 + 60 * n);
            // Awaited below; until then a failure elsewhere must not make it an unhandled rejection.
            p.catch(() => undefined);
            return p;
          });
          await Promise.all(
            procs.map((w) => {
              const armed = w.next('armed', 120_000);
              w.send({ cmd: 'arm', kind, index, expect, timeoutMs: 60_000 + 60 * n });
              return armed;
            }),
          );
          // New connections cost a TLS handshake each on both sides; give a loaded box time.
          const holdMs = 30_000 + 60 * n;
          const deadline = Date.now() + holdMs;
          for (;;) {
            const st = await admin.status();
            if (st.blockingQueries >= n) break;
            if (Date.now() > deadline)
              throw new Error(
                `the registry holds ${st.blockingQueries} of ${n} blocking queries after ${Math.round(holdMs / 1000)} s`,
              );
            await sleep(200);
          }
          armCpu.push((cpuMicros(registry.pid) - cpu0) / 1000);
          await sleep(200);
          const cpu1 = cpuMicros(registry.pid);
          const sent = now();
          await change();
          const acked = now();
          const got = await Promise.all(results);
          const cpu2 = cpuMicros(registry.pid);
          const times = got.flatMap((g) => g.times);
          const errors = got.flatMap((g) => g.errors);
          // Measured from the acknowledgement, as the target says; an answer can come before the
          // ack reaches us (the registry notifies at commit), which counts as 0.
          const lat = times.map((t) => Math.max(0, t - acked)).sort((a, b) => a - b);
          const fromSent = times.map((t) => t - sent).sort((a, b) => a - b);
          return {
            answered: times.length,
            errors,
            ackMs: acked - sent,
            p99FromSentMs: percentile(fromSent, 99),
            p50Ms: percentile(lat, 50),
            p99Ms: percentile(lat, 99),
            maxMs: lat[lat.length - 1],
            registryCpuMs: (cpu2 - cpu1) / 1000,
          };
        };

        for (let r = 0; r < o.rounds; r++) {
          const { revision } = await admin.instances('api');
          const id = `api-${n}-${r + 1}`;
          samples.registration.push(
            await measure('catalog', revision, { id }, () =>
              registrar.client.register({ id, name: 'api', port: 9000 + r, protocol: 'http' }),
            ),
          );
          intentionAction = intentionAction === 'allow' ? 'deny' : 'allow';
          const action = intentionAction;
          const { revision: irev } = await admin.intentions();
          samples.intention.push(
            await measure('intentions', irev, { source: 'web', destination: 'api', action }, () =>
              admin.putIntention('web', 'api', action, 'bench'),
            ),
          );
          const last = samples.registration[r];
          const lastI = samples.intention[r];
          o.log(
            `  round ${r + 1}/${o.rounds}: registration p50 ${last.p50Ms?.toFixed(1)} p99 ${last.p99Ms?.toFixed(1)} ms (${last.answered}/${n}); ` +
              `intention p50 ${lastI.p50Ms?.toFixed(1)} p99 ${lastI.p99Ms?.toFixed(1)} ms (${lastI.answered}/${n})`,
          );
        }
        const rss = sampler.stop().get(registry.pid) ?? 0;
        const agg = (list) => ({
          p50Ms: median(list.map((x) => x.p50Ms)),
          p99Ms: median(list.map((x) => x.p99Ms)),
          maxMs: Math.max(...list.map((x) => x.maxMs ?? 0)),
          answered: Math.min(...list.map((x) => x.answered)),
          ackMs: median(list.map((x) => x.ackMs)),
          p99FromSentMs: median(list.map((x) => x.p99FromSentMs)),
          registryCpuMs: median(list.map((x) => x.registryCpuMs)),
          errors: list.flatMap((x) => x.errors).slice(0, 5),
          rounds: list,
        });
        runs.push({
          watchers: n,
          processes: procCount,
          registryRssBeforeMB: rssBefore / 1048576,
          registryRssHoldingMB: rss / 1048576,
          registryCpuArmMs: median(armCpu),
          registration: agg(samples.registration),
          intention: agg(samples.intention),
        });
      } finally {
        for (const w of procs) {
          if (w.proc.child.connected) w.send({ cmd: 'close' });
        }
        await Promise.all(procs.map((w) => stopProcess(w.proc, 3000)));
      }
    }
    return { store: o.store, rounds: o.rounds, perProcess: PER_PROCESS, runs };
  } catch (e) {
    const c = registry.child;
    if (c.exitCode !== null || c.signalCode !== null) {
      throw new Error(
        `${e instanceof Error ? e.message : String(e)}; the registry had exited (${c.exitCode ?? c.signalCode}; log: ${join(o.dir, 'cp-registry.log')})`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    for (const c of clients) c.close();
    await stopProcess(registry, 5000);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        watchers: { type: 'string', default: '100,1000' },
        rounds: { type: 'string', default: '3' },
        store: { type: 'string', default: 'sqlite' },
        profile: { type: 'string' },
      },
    }));
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  }
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-bench-cp-'));
  try {
    const r = await runControlPlane({
      watchers: values.watchers.split(',').map(Number),
      rounds: Number(values.rounds),
      store: values.store,
      dir,
      profileDir: values.profile,
      log: (s) => console.log(s),
    });
    console.log(
      JSON.stringify(
        r.runs.map(({ registration, intention, ...rest }) => ({
          ...rest,
          registration: { ...registration, rounds: undefined },
          intention: { ...intention, rounds: undefined },
        })),
        null,
        2,
      ),
    );
    await rm(dir, { recursive: true, force: true });
  } catch (e) {
    console.error(`control-plane bench failed: ${e instanceof Error ? e.message : String(e)} (logs in ${dir})`);
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}
