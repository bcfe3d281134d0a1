/**
 * What an idle registry holds, per store: `meshctl registry start` on sqlite and on etcd (a
 * 3-member etcd of its own), in turns, each left alone for `--settle` seconds, then its VmRSS
 * and JS heap (lib/mem-probe.mjs). The etcd registry's extra is the etcd3/gRPC client and what
 * it keeps; issue 12's RSS goal (≤ 300 MB holding 2,500 watchers) starts from this figure.
 *
 * Runnable alone after a build:
 *   node bench/registry-idle.mjs [--rounds 3] [--settle 5] [--etcd-port BASE] [--stores sqlite,etcd]
 *     [--host ADDR] [--ports BASE] (the registries' address, default 127.0.0.1, and ports BASE, BASE+1, …;
 *     default free ones) [--cli A.js,B.js] (compare builds: each round starts each store's registry from
 *     each of these CLI entries in turns, e.g. a copy of dist/ made before a change; default this build's)
 *     [--registry-node-flags 'FLAGS'] (node's flags for the registry; default its systemd unit's,
 *     src/systemd/process-flags.ts; '' for node's defaults)
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI_ENTRY, REPO, distImport } from './lib/dist.mjs';
import { startEtcd } from './lib/etcd.mjs';
import { freePort, rssBytes, sleep, startProcess, stopAll, stopProcess, waitForPort } from './lib/procs.mjs';
import { median } from './report.mjs';

const MB = 1048576;

/** Makes the mesh for a registry on `store` (once: each round restarts the same registry). */
async function initStore(store, dir, etcdEndpoints, host, port) {
  const dataDir = join(dir, `registry-${store}`);
  const common = { dataDir, bind: `${host}:${port}`, defaultIntention: 'deny', advertise: host };
  if (store === 'etcd') {
    const { initEtcdServer } = await distImport('registry/bootstrap-etcd.js');
    await initEtcdServer({ ...common, etcd: { endpoints: etcdEndpoints } });
    return { store, host, port, dataDir, extra: [] };
  }
  const { initServer } = await distImport('registry/bootstrap.js');
  await initServer(common);
  return { store, host, port, dataDir, extra: ['--store', store] };
}

/** The registry made by initStore, started and idle for `settleMs`: its VmRSS and last heap line, in MB. */
async function idleOnce({ store, host, port, dataDir, extra }, dir, settleMs, cli, nodeFlags) {
  const memLog = join(dir, `mem-${store}.jsonl`);
  const proc = startProcess(
    `registry-${store}`,
    process.execPath,
    [
      ...nodeFlags,
      '--import',
      pathToFileURL(join(REPO, 'bench', 'lib', 'mem-probe.mjs')).href,
      cli,
      'registry',
      'start',
      '--data-dir',
      dataDir,
      ...extra,
    ],
    {
      logFile: join(dir, `registry-${store}.log`),
      env: { ...process.env, MESHCTL_LOG_LEVEL: 'warn', MESHCTL_BENCH_MEM_LOG: memLog },
    },
  );
  try {
    await waitForPort(host, port, 30_000, `registry on ${store}`, proc);
    await sleep(settleMs);
    const rss = (rssBytes(proc.pid) ?? 0) / MB;
    const lines = (await readFile(memLog, 'utf8')).split('\n').filter(Boolean);
    const last = JSON.parse(lines[lines.length - 1]);
    return {
      rss,
      heapUsed: last.heapUsed / MB,
      heapTotal: last.heapTotal / MB,
      external: last.external / MB,
      newSpace: last.newSpace / MB,
      oldSpace: last.oldSpace / MB,
    };
  } finally {
    await stopProcess(proc, 5000);
    await rm(memLog, { force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      settle: { type: 'string', default: '5' },
      'etcd-port': { type: 'string' },
      stores: { type: 'string', default: 'sqlite,etcd' },
      host: { type: 'string', default: '127.0.0.1' },
      ports: { type: 'string' },
      cli: { type: 'string' },
      'registry-node-flags': { type: 'string' },
    },
  });
  // The node flags the registry's systemd unit runs it with, unless asked for others ('' for none).
  const { REGISTRY_NODE_FLAGS } = await distImport('systemd/process-flags.js');
  const nodeFlags =
    values['registry-node-flags'] === undefined
      ? [...REGISTRY_NODE_FLAGS]
      : values['registry-node-flags'].split(' ').filter(Boolean);
  const stores = values.stores.split(',');
  const clis = values.cli === undefined ? [CLI_ENTRY] : values.cli.split(',');
  const basePort = values.ports === undefined ? undefined : Number(values.ports);
  if (basePort !== undefined && !(Number.isInteger(basePort) && basePort >= 1024 && basePort < 65500)) {
    console.error(`error: --ports takes a port from 1024 to 65499 (got '${values.ports}')`);
    process.exit(2);
  }
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-bench-idle-'));
  let etcd;
  try {
    if (stores.includes('etcd')) {
      etcd = await startEtcd({
        dir: join(dir, 'etcd'),
        basePort: values['etcd-port'] === undefined ? undefined : Number(values['etcd-port']),
      });
    }
    // A build's label in the output: its CLI entry, when there are several to compare.
    const label = (s, cli) => (clis.length > 1 ? `${s} (${cli})` : s);
    /** @type {Record<string, any[]>} */
    const got = {};
    const made = [];
    for (const [i, s] of stores.entries()) {
      const port = basePort === undefined ? await freePort(values.host) : basePort + i;
      made.push(await initStore(s, dir, etcd?.endpoints, values.host, port));
    }
    // In turns, so the box's load falls on every store and build alike.
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const reg of made) {
        for (const cli of clis) {
          const s = label(reg.store, cli);
          const m = await idleOnce(reg, dir, Number(values.settle) * 1000, cli, nodeFlags);
          (got[s] ??= []).push(m);
          console.log(
            `${s} round ${r + 1}: VmRSS ${m.rss.toFixed(1)} MB, heap used ${m.heapUsed.toFixed(1)} of ${m.heapTotal.toFixed(1)} MB (new space ${m.newSpace.toFixed(1)}, old ${m.oldSpace.toFixed(1)}), external ${m.external.toFixed(1)} MB`,
          );
        }
      }
    }
    for (const s of Object.keys(got)) {
      const med = (k) => median(got[s].map((m) => m[k])).toFixed(1);
      console.log(
        `${s} median: VmRSS ${med('rss')} MB, heap used ${med('heapUsed')} MB, heap total ${med('heapTotal')} MB`,
      );
    }
  } catch (e) {
    console.error(`registry-idle bench failed: ${e instanceof Error ? e.message : String(e)} (logs in ${dir})`);
    process.exitCode = 1;
  } finally {
    await etcd?.stop();
    await stopAll();
    if (!process.exitCode) await rm(dir, { recursive: true, force: true });
  }
}
