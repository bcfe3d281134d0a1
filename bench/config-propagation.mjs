/**
 * Config-entry propagation bench (issue 14: "a change reaches every affected sidecar in
 * milliseconds"): how long after `meshctl apply -f` a changed service-splitter is live in every
 * sidecar that calls the service. All of it is real processes on loopback: a registry
 * (`meshctl registry start`), one agent with an `api` instance, and N agents each with a `web`
 * instance whose sidecar has `api` as an upstream.
 *
 * Each round applies a splitter with new weights and takes, from each web sidecar's own log,
 * the time of its first `snapshot applied` after the apply (pino's `time`, milliseconds, the
 * same clock as this process). The figure is that time minus the moment `apply -f` printed the
 * registry's answer (the change acknowledged; the CLI exits some ms later), and also minus the
 * moment it was started (which adds the CLI's own start, a Node process). Then it checks, untimed,
 * that every sidecar's `GET /stats` has the new weights. Nothing is polled during the timed part
 * except the log files (every 5 ms, which is the resolution).
 *
 *   node bench/config-propagation.mjs [--sidecars 10] [--rounds 10] [--address-base 127.0.11.20] [--port-base 24520]
 *
 * Run after a build; addresses and ports default to policy's block (TEAM.md). Everything it
 * starts it stops by PID: the agents, the registry and the agents' sidecars (which outlive
 * their agent by design).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI_ENTRY } from './lib/dist.mjs';
import { sleep, startProcess, stopAll, killAllNow } from './lib/procs.mjs';

const { values: v } = parseArgs({
  options: {
    sidecars: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '10' },
    'address-base': { type: 'string', default: '127.0.11.20' },
    'port-base': { type: 'string', default: '24520' },
  },
});
const SIDECARS = Number(v.sidecars);
const ROUNDS = Number(v.rounds);
const [a, b, c, d0] = v['address-base'].split('.').map(Number);
const PORT_BASE = Number(v['port-base']);
if (!(SIDECARS >= 1 && SIDECARS <= 40) || !(ROUNDS >= 1 && ROUNDS <= 80) || d0 + SIDECARS > 255) {
  console.error('usage: --sidecars 1..40 --rounds 1..80 (addresses from --address-base must stay in one /24)');
  process.exit(2);
}
const address = (i) => `${a}.${b}.${c}.${d0 + i}`;
const API_ADDRESS = `${a}.${b}.${c}.${d0 - 1}`;

const dir = await mkdtemp(join(tmpdir(), 'meshctl-propagation-'));
const baseEnv = { ...process.env, MESHCTL_CONFIG_DIR: join(dir, 'cli-config') };
let adminEnv = baseEnv;

/** When the last cli() call first printed to stdout (apply prints once the registry answered). */
let firstOutputAt = 0;

/** One CLI command to its end; throws with its stderr when it fails. */
function cli(args, env = adminEnv) {
  firstOutputAt = 0;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (x) => {
      if (firstOutputAt === 0) firstOutputAt = Date.now();
      out += x;
    });
    child.stderr.setEncoding('utf8').on('data', (x) => (err += x));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`meshctl ${args.join(' ')} exited ${code}: ${err.trim()}`)),
    );
  });
}

/** Waits until `file` has a match of `re`; gives the match. */
async function waitInFile(file, re, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const m = re.exec(text);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${file})`);
    await sleep(50);
  }
}

/** GET on an agent's admin socket. */
function agentGet(socketPath, path) {
  return new Promise((resolve, reject) => {
    request({ socketPath, path }, (res) => {
      let body = '';
      res.on('data', (x) => (body += x));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    })
      .on('error', reject)
      .end();
  });
}

/** Sidecars outlive their agent: end the ones launched for our agents (their command lines name our dir). */
async function killSidecars() {
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(`${dir}/`) && cmd.includes('proxy')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

const agents = [];
async function addAgent(name, addr) {
  const dataDir = join(dir, `agent-${name}`);
  const token = JSON.parse(await cli(['token', 'create', '--any-service', '--uses', '1', '--json'])).token;
  await cli(
    [
      'init',
      '--join',
      adminEnv.MESHCTL_REGISTRY,
      '--token',
      token,
      '--ca-fingerprint',
      fingerprint,
      '--node-name',
      name,
      '--advertise',
      addr,
      '--data-dir',
      dataDir,
      '--socket',
      join(dataDir, 'agent.sock'),
      '--services-dir',
      join(dataDir, 'services.d'),
      '--json',
    ],
    baseEnv,
  );
  const log = join(dir, `agent-${name}.log`);
  startProcess(`agent-${name}`, process.execPath, [CLI_ENTRY, 'agent', 'start', '--data-dir', dataDir], {
    logFile: log,
    env: baseEnv,
  });
  await waitInFile(log, /agent started/, `agent ${name}`);
  const agent = { name, addr, dataDir, socket: join(dataDir, 'agent.sock') };
  agents.push(agent);
  return agent;
}
const register = (agent, args) =>
  cli(['register', 'service', ...args, '--address', agent.addr, '--data-dir', agent.dataDir], baseEnv);

const splitter = (v1, v2) =>
  `kind: service-splitter\nname: api\nsplits:\n  - { weight: ${v1}, service_subset: v1 }\n  - { weight: ${v2}, service_subset: v2 }\n`;
const RESOLVER = `kind: service-resolver
name: api
default_subset: v1
subsets:
  v1: { filter: 'Service.Meta.version == v1' }
  v2: { filter: 'Service.Meta.version == v2' }
`;

/** Every web sidecar's splitter weights on `api`, from its `GET /stats` (through its agent). */
async function weightsOf(agent) {
  const { proxies } = await agentGet(agent.socket, '/v1/agent/proxies');
  const routes = proxies?.[0]?.stats?.upstreams?.api?.policy?.routes ?? [];
  const last = routes[routes.length - 1];
  return last ? last.splits.map((s) => s.weight).join('/') : '';
}

async function sidecarLog(agent) {
  const pdir = join(agent.dataDir, 'proxies');
  const name = (await readdir(pdir)).find((f) => f.endsWith('.log'));
  if (!name) throw new Error(`no sidecar log under ${pdir}`);
  return join(pdir, name);
}

/** The `time` of the first `snapshot applied` line past byte `from` of `file`, or undefined. */
async function appliedAfter(file, from) {
  const text = (await readFile(file)).subarray(from).toString('utf8');
  for (const line of text.split('\n')) {
    if (!line.includes('"snapshot applied"')) continue;
    try {
      return JSON.parse(line).time;
    } catch {
      // a line still being written: the next poll reads it whole
    }
  }
  return undefined;
}

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))];
let fingerprint = '';
let code = 0;
process.on('exit', killAllNow);
try {
  const init = JSON.parse(
    await cli(
      [
        'init',
        '--server',
        '--data-dir',
        join(dir, 'registry'),
        '--bind',
        '127.0.0.1:0',
        '--advertise',
        '127.0.0.1',
        '--default-intention',
        'allow',
        '--json',
        '--no-save',
      ],
      baseEnv,
    ),
  );
  fingerprint = init.caFingerprint;
  const regLog = join(dir, 'registry.log');
  startProcess(
    'registry',
    process.execPath,
    [CLI_ENTRY, 'registry', 'start', '--data-dir', join(dir, 'registry'), '--bind', '127.0.0.1:0'],
    { logFile: regLog, env: baseEnv },
  );
  const url = (await waitInFile(regLog, /listening on (https:\/\/127\.0\.0\.1:\d+)/, 'the registry'))[1];
  adminEnv = { ...baseEnv, MESHCTL_TOKEN: init.adminToken, MESHCTL_CA_FILE: init.caCertPath, MESHCTL_REGISTRY: url };

  const api = await addAgent('api-host', API_ADDRESS);
  await register(api, ['api', '--port', String(PORT_BASE - 1), '--protocol', 'http', '--meta', 'version=v1']);
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, `${RESOLVER}---\n${splitter(90, 10)}`);
  await cli(['apply', '-f', policyFile]);
  const webs = [];
  for (let i = 0; i < SIDECARS; i++) {
    const w = await addAgent(`web-${i}`, address(i));
    await register(w, ['web', '--port', '9300', '--protocol', 'http', '--upstream', `api:${PORT_BASE + i}`]);
    webs.push(w);
  }
  // Every sidecar up with the policy before the first timed change.
  const deadline = Date.now() + 60_000;
  for (const w of webs) {
    while ((await weightsOf(w).catch(() => '')) !== '90/10') {
      if (Date.now() > deadline) throw new Error(`${w.name}'s sidecar never had the 90/10 split`);
      await sleep(100);
    }
  }
  const logs = await Promise.all(webs.map(sidecarLog));
  const splitFile = join(dir, 'split.yaml');
  const fromAck = [];
  const fromSend = [];
  const worst = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const w1 = 90 - r;
    await writeFile(splitFile, splitter(w1, 100 - w1));
    const offsets = await Promise.all(logs.map(async (f) => (await stat(f)).size));
    const sent = Date.now();
    await cli(['apply', '-f', splitFile]);
    const exited = Date.now();
    // The change is acknowledged when apply prints what the registry answered, before the CLI exits.
    const acked = firstOutputAt || exited;
    const times = new Array(logs.length).fill(undefined);
    const until = acked + 10_000;
    while (times.some((t) => t === undefined)) {
      if (Date.now() > until) throw new Error(`round ${r}: not every sidecar applied a snapshot within 10 s`);
      await Promise.all(
        logs.map(async (f, i) => {
          if (times[i] === undefined) times[i] = await appliedAfter(f, offsets[i]);
        }),
      );
      await sleep(5);
    }
    for (const w of webs) {
      const got = await weightsOf(w);
      if (got !== `${w1}/${100 - w1}`)
        throw new Error(`round ${r}: ${w.name}'s sidecar has ${got}, not ${w1}/${100 - w1}`);
    }
    const ack = times.map((t) => t - acked);
    fromAck.push(...ack);
    fromSend.push(...times.map((t) => t - sent));
    worst.push(Math.max(...ack));
    console.log(
      `round ${r}: split ${w1}/${100 - w1}; apply printed its answer after ${acked - sent} ms and exited after ${exited - sent} ms; ` +
        `every sidecar had it ${Math.max(...ack)} ms after the answer (first ${Math.min(...ack)} ms)`,
    );
  }
  const s = (xs) => [...xs].sort((x, y) => x - y);
  const A = s(fromAck);
  const S = s(fromSend);
  const W = s(worst);
  console.log(
    `\n${SIDECARS} sidecars × ${ROUNDS} changes: ms from apply -f printing the registry's answer to each ` +
      `sidecar's "snapshot applied" (negative: before the CLI had printed it)\n` +
      `  per sidecar: p50 ${pct(A, 50)}  p99 ${pct(A, 99)}  max ${A[A.length - 1]}\n` +
      `  the last sidecar of each change: median ${pct(W, 50)}  max ${W[W.length - 1]}\n` +
      `  from apply -f started: p50 ${pct(S, 50)}  p99 ${pct(S, 99)}  max ${S[S.length - 1]}`,
  );
} catch (e) {
  console.error(String(e?.stack ?? e));
  code = 1;
} finally {
  await stopAll();
  await killSidecars();
  await rm(dir, { recursive: true, force: true });
}
process.exit(code);
