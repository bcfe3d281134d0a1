/**
 * A whole mesh on this machine, as real processes: a registry on the embedded store and one
 * agent per loopback "host" (127.0.100.2, 127.0.100.3, …), each launching its sidecars. Everything
 * started here is ended here, by PID: agents leave (which stops their sidecars), then the
 * registry stops, and any sidecar still running under the demo's directory is killed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { MeshError } from '../errors/index.js';
import { initServer, type InitServerResult } from '../registry/bootstrap.js';
import { RegistryClient } from '../api/registry-client.js';
import { loadAgentConfig, saveAgentConfig } from '../agent/config.js';
import { joinMesh } from '../agent/join.js';
import { AgentClient } from '../agent/client.js';

/** The demo agents' sidecar drain (agent.json drainSeconds). */
const DEMO_DRAIN_SECONDS = 1;

export interface LocalAgent {
  name: string;
  address: string;
  dataDir: string;
  socket: string;
  proc: ResultPromise;
  client: AgentClient;
}

export class LocalMesh {
  registryUrl = '';
  admin: RegistryClient | undefined;
  init: InitServerResult | undefined;
  readonly agents: LocalAgent[] = [];
  #registry: ResultPromise | undefined;
  readonly #cli: string;

  constructor(
    readonly dir: string,
    opts: { cliEntry?: string } = {},
  ) {
    this.#cli = opts.cliEntry ?? process.argv[1] ?? 'meshctl';
  }

  async startRegistry(): Promise<void> {
    const dataDir = join(this.dir, 'registry');
    this.init = await initServer({
      dataDir,
      bind: '127.0.0.1:0',
      advertise: '127.0.0.1',
      defaultIntention: 'deny',
      leaseTtlSeconds: 5,
      force: true,
    });
    const proc = this.#spawn(['registry', 'start', '--data-dir', dataDir], join(this.dir, 'registry.log'));
    this.#registry = proc;
    let m: RegExpMatchArray;
    try {
      m = await waitForLine(proc, /listening on (https:\/\/127\.0\.0\.1:\d+)/, 'the registry', 60_000);
    } catch (e) {
      await endProcess(proc, 2_000);
      throw e;
    }
    this.registryUrl = m[1]!;
    this.admin = new RegistryClient({
      baseUrl: this.registryUrl,
      ca: await readFile(this.init.caCertPath, 'utf8'),
      token: this.init.adminToken,
    });
  }

  /** Joins a host with a token of its own that lets it serve exactly `services`, as a user should. */
  async addAgent(name: string, address: string, services: string[]): Promise<LocalAgent> {
    if (!this.init || !this.admin) throw new MeshError('MESH_ERR_INTERNAL', 'start the registry first');
    const dataDir = join(this.dir, `agent-${name}`);
    const socket = join(dataDir, 'agent.sock');
    const { token } = await this.admin.createToken(`demo host ${name}`, 3600, { services, uses: 1 });
    await joinMesh({
      registryUrl: this.registryUrl,
      token,
      caFingerprint: this.init.caFingerprint,
      nodeName: name,
      advertise: address,
      dataDir,
      socketPath: socket,
      servicesDir: join(dataDir, 'services.d'),
      force: true,
    });
    // The demo's traffic never stops before teardown, so a sidecar's drain would run its full
    // time; a demo has nothing worth 30 s of waiting in flight.
    const { config, paths } = await loadAgentConfig(dataDir);
    await saveAgentConfig(paths, { ...config, drainSeconds: DEMO_DRAIN_SECONDS });
    const proc = this.#spawn(['agent', 'start', '--data-dir', dataDir], join(this.dir, `agent-${name}.log`));
    try {
      // Printed by `agent start` itself (not a log line), whatever the log level.
      await waitForLine(proc, /meshctl agent running as node/, `agent ${name}`, 60_000);
    } catch (e) {
      await endProcess(proc, 2_000);
      throw e;
    }
    const agent: LocalAgent = { name, address, dataDir, socket, proc, client: new AgentClient(socket) };
    this.agents.push(agent);
    return agent;
  }

  /** Ends everything this mesh started. Safe to call twice. */
  async stop(): Promise<void> {
    // Side by side: `leave` deregisters the host and drains its sidecars; the agent then exits.
    await Promise.all(
      this.agents.splice(0).map(async (a) => {
        await a.client.leave().catch(() => undefined);
        a.client.close();
        await endProcess(a.proc, 5_000);
      }),
    );
    this.admin?.close();
    if (this.#registry) await endProcess(this.#registry, 5_000);
    this.#registry = undefined;
    await killStrays(this.dir);
  }

  #spawn(args: string[], logFile: string): ResultPromise {
    const proc = execa(process.execPath, [this.#cli, ...args], {
      reject: false,
      stdin: 'ignore',
      all: true,
      buffer: false,
      env: { MESHCTL_LOG_LEVEL: process.env.MESHCTL_LOG_LEVEL ?? 'info' },
    });
    // Keep each process's output in a log file for the curious (and for bug reports).
    void import('node:fs').then(({ createWriteStream }) => {
      const out = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
      out.on('error', () => undefined);
      proc.all?.pipe(out);
    });
    return proc;
  }
}

function waitForLine(proc: ResultPromise, re: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = re.exec(out);
      if (m) done(() => resolve(m));
    };
    const onExit = () =>
      done(() => reject(new MeshError('MESH_ERR_UNAVAILABLE', `${what} exited while starting:\n${out.slice(-2000)}`)));
    const timer = setTimeout(
      () =>
        done(() =>
          reject(
            new MeshError(
              'MESH_ERR_TIMEOUT',
              `${what} did not start within ${timeoutMs / 1000}s:\n${out.slice(-2000)}`,
            ),
          ),
        ),
      timeoutMs,
    );
    const done = (fn: () => void) => {
      clearTimeout(timer);
      proc.all?.off('data', onData);
      proc.off('exit', onExit);
      fn();
    };
    proc.all?.on('data', onData);
    proc.once('exit', onExit);
  });
}

async function endProcess(proc: ResultPromise, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await proc;
  clearTimeout(timer);
}

/** Sidecars are detached from their agent by design; end any left under this mesh's directory. */
async function killStrays(dir: string): Promise<void> {
  const marker = `${dir}/`;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(marker)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}
