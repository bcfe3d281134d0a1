/**
 * A whole mesh of real processes on loopback for end-to-end tests: one registry and N agents,
 * each agent a separate `meshctl agent start` with its own address (127.0.0.2, 127.0.0.3, …),
 * data dir and socket. Everything the harness starts it also stops, by PID.
 */
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { runCli, startCli, type CliDaemon, type CliResult } from './cli.js';

export interface MeshAgent {
  name: string;
  address: string;
  dataDir: string;
  socket: string;
  servicesDir: string;
  daemon: CliDaemon | undefined;
  /** Runs a CLI command against this agent (adds --data-dir). */
  cli(args: string[]): Promise<CliResult>;
  /**
   * `meshctl register service` on this agent (address: the agent's own unless given); throws with
   * stderr if refused, else gives the result so a test can read what the command printed.
   */
  register(service: ServiceSpec): Promise<CliResult>;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A service as the tests register it with `meshctl register service`. */
export interface ServiceSpec {
  name: string;
  port: number;
  address?: string;
  protocol?: 'http' | 'tcp';
  meta?: Record<string, string>;
  /** `api:15001`, one per upstream. */
  upstreams?: string[];
  /** false: `--no-proxy` (no sidecar). */
  proxy?: false;
  /** More flags as given (`--check URL --interval 500ms`). */
  extra?: string[];
}

/** The `meshctl register service …` arguments for `s` (without --data-dir). */
export function registerArgs(s: ServiceSpec & { address: string }): string[] {
  return [
    'register',
    'service',
    s.name,
    '--port',
    String(s.port),
    '--address',
    s.address,
    ...(s.protocol === undefined ? [] : ['--protocol', s.protocol]),
    ...Object.entries(s.meta ?? {}).flatMap(([k, v]) => ['--meta', `${k}=${v}`]),
    ...(s.upstreams ?? []).flatMap((u) => ['--upstream', u]),
    ...(s.proxy === false ? ['--no-proxy'] : []),
    ...(s.extra ?? []),
  ];
}

/** One sidecar as its agent reports it (`GET /v1/agent/proxies`): what the agent knows of it, and its `GET /stats`. */
export interface AgentProxy {
  info: { serviceId: string; pid: number; adopted: boolean; snapshotVersion: number | null };
  stats: any;
}

/** The sidecars the agent on `socketPath` runs, as it reports them. */
export function agentProxies(socketPath: string): Promise<AgentProxy[]> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: '/v1/agent/proxies' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          try {
            resolve((JSON.parse(body) as { proxies: AgentProxy[] }).proxies);
          } catch (e) {
            reject(new Error(`GET /v1/agent/proxies answered ${res.statusCode}: ${body.slice(0, 200)}`, { cause: e }));
          }
        });
      })
      .on('error', reject);
  });
}

/** GET / on 127.0.0.1:`port`: its status once the body is read, or 0 on an error or after `timeoutMs`. */
export function getStatus(port: number, opts: { agent?: http.Agent; timeoutMs?: number } = {}): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/', agent: opts.agent ?? false, timeout: opts.timeoutMs ?? 5_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

export interface TestMesh {
  dir: string;
  env: Record<string, string>;
  registryUrl: string;
  registryPort: number;
  joinToken: string;
  caFingerprint: string;
  registry: CliDaemon | undefined;
  agents: MeshAgent[];
  /** Runs a CLI command as the admin on the control plane. */
  admin(args: string[]): Promise<CliResult>;
  adminJson<T>(args: string[]): Promise<T>;
  startRegistry(): Promise<void>;
  stopRegistry(signal?: NodeJS.Signals): Promise<void>;
  /**
   * `meshctl init --join` for host `name` with a single-use join token of its own (any service
   * unless `services` scopes it), then `args` (data dir, socket, --json…), with `env` added to
   * the CLI's environment (a skewed clock). Starts nothing.
   */
  joinHost(
    name: string,
    address: string,
    args: string[],
    opts?: { services?: string[]; env?: Record<string, string> },
  ): Promise<CliResult>;
  /**
   * Joins and starts an agent, with a join token of its own: any service unless `services` scopes
   * it; `agentArgs` go to `meshctl agent start` (e.g. `--metrics-bind`), on every start.
   */
  addAgent(name: string, address: string, opts?: { services?: string[]; agentArgs?: string[] }): Promise<MeshAgent>;
  close(): Promise<void>;
}

export async function startMesh(
  opts: {
    agents?: Array<{ name: string; address: string }>;
    defaultIntention?: 'allow' | 'deny';
    leaseTtl?: string;
    leafTtl?: string;
    nodeCertTtl?: string;
  } = {},
): Promise<TestMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-e2e-'));
  const env = { MESHCTL_CONFIG_DIR: join(dir, 'cli-config') };
  const regDir = join(dir, 'registry');
  const init = await runCli(
    [
      'init',
      '--server',
      '--data-dir',
      regDir,
      '--bind',
      '127.0.0.1:0',
      '--advertise',
      '127.0.0.1',
      '--default-intention',
      opts.defaultIntention ?? 'deny',
      '--lease-ttl',
      opts.leaseTtl ?? '5s',
      ...(opts.leafTtl ? ['--leaf-ttl', opts.leafTtl] : []),
      ...(opts.nodeCertTtl ? ['--node-cert-ttl', opts.nodeCertTtl] : []),
      '--json',
      '--no-save',
    ],
    env,
  );
  if (init.exitCode !== 0) throw new Error(`init --server failed: ${init.stderr}`);
  const made = JSON.parse(init.stdout) as {
    joinToken: string;
    caFingerprint: string;
    adminToken: string;
    caCertPath: string;
  };

  const mesh: TestMesh = {
    dir,
    env: { ...env, MESHCTL_TOKEN: made.adminToken, MESHCTL_CA_FILE: made.caCertPath },
    registryUrl: '',
    registryPort: 0,
    joinToken: made.joinToken,
    caFingerprint: made.caFingerprint,
    registry: undefined,
    agents: [],
    admin: (args) => runCli(args, { ...mesh.env, MESHCTL_REGISTRY: mesh.registryUrl }),
    async adminJson<T>(args: string[]) {
      const r = await mesh.admin([...args, '--json']);
      if (r.exitCode !== 0) throw new Error(`meshctl ${args.join(' ')} failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    async startRegistry() {
      // The first start picks a free port; restarts keep it, so agents find the registry again.
      const d = startCli(['registry', 'start', '--data-dir', regDir, '--bind', `127.0.0.1:${mesh.registryPort}`], env);
      const m = await d.waitFor(/listening on (https:\/\/127\.0\.0\.1:(\d+))/);
      mesh.registry = d;
      mesh.registryUrl = m[1]!;
      mesh.registryPort = Number(m[2]);
    },
    async stopRegistry(signal = 'SIGTERM') {
      await mesh.registry?.kill(signal);
      mesh.registry = undefined;
    },
    async joinHost(name, address, args, joinOpts = {}) {
      const scope = joinOpts.services ? joinOpts.services.flatMap((s) => ['--service', s]) : ['--any-service'];
      const token = await mesh.adminJson<{ token: string }>(['token', 'create', ...scope, '--uses', '1']);
      return runCli(
        ['init', '--join', mesh.registryUrl, '--token', token.token, '--ca-fingerprint', mesh.caFingerprint].concat([
          '--node-name',
          name,
          '--advertise',
          address,
          ...args,
        ]),
        { ...env, ...joinOpts.env },
      );
    },
    async addAgent(name, address, agentOpts = {}) {
      const dataDir = join(dir, `agent-${name}`);
      const socket = join(dataDir, 'agent.sock');
      const servicesDir = join(dataDir, 'services.d');
      await mkdir(servicesDir, { recursive: true });
      const join_ = await mesh.joinHost(
        name,
        address,
        ['--data-dir', dataDir, '--socket', socket, '--services-dir', servicesDir, '--json'],
        agentOpts,
      );
      if (join_.exitCode !== 0) throw new Error(`init --join ${name} failed: ${join_.stderr}`);
      const agent: MeshAgent = {
        name,
        address,
        dataDir,
        socket,
        servicesDir,
        daemon: undefined,
        cli: (args) => runCli([...args, '--data-dir', dataDir], env),
        async register(service) {
          const r = await agent.cli(registerArgs({ address, ...service }));
          if (r.exitCode !== 0) throw new Error(`register service ${service.name} on ${name} failed: ${r.stderr}`);
          return r;
        },
        async start() {
          const d = startCli(['agent', 'start', '--data-dir', dataDir, ...(agentOpts.agentArgs ?? [])], env);
          await d.waitFor(/agent started/);
          agent.daemon = d;
        },
        async stop(signal = 'SIGTERM') {
          await agent.daemon?.kill(signal);
          agent.daemon = undefined;
        },
      };
      await agent.start();
      mesh.agents.push(agent);
      return agent;
    },
    async close() {
      for (const a of mesh.agents) await a.stop('SIGKILL');
      // Sidecars outlive their agent by design (adoption); the test started them, so it ends them.
      for (const a of mesh.agents) await killProxies(a.dataDir);
      await mesh.stopRegistry('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await mesh.startRegistry();
    for (const a of opts.agents ?? []) await mesh.addAgent(a.name, a.address);
  } catch (e) {
    await mesh.close();
    throw e;
  }
  return mesh;
}

/**
 * Ends every proxy launched for the agent of `agentDataDir` (its admin socket path, under the
 * data dir, is on its command line): processes this test started, found by PID in /proc.
 */
export async function killProxies(agentDataDir: string): Promise<number> {
  const marker = join(agentDataDir, 'proxies') + '/';
  let killed = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(marker) || !cmdline.includes('proxy')) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed += 1;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

/** A tiny HTTP app that answers who it is, on a given loopback address; stoppable and restartable on the same port. */
export interface TestApp {
  address: string;
  port: number;
  name: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startApp(name: string, address: string, port = 0): Promise<TestApp> {
  let server: http.Server | undefined;
  const app: TestApp = {
    address,
    port,
    name,
    async start() {
      server = http.createServer((req, res) => {
        const body = JSON.stringify({ app: name, path: req.url, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      // An Upgrade (WebSocket-like: no frames) is accepted with a 101 naming the app and the
      // path it got, then each chunk comes back prefixed with the app's name.
      server.on('upgrade', (req, socket: Socket) => {
        socket.on('error', () => socket.destroy());
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${String(req.headers.upgrade)}\r\nConnection: Upgrade\r\nx-app: ${name}\r\nx-path: ${req.url ?? ''}\r\n\r\n`,
        );
        socket.on('data', (d: Buffer) => socket.write(`${name}:${d.toString('utf8')}`));
        socket.on('end', () => socket.end());
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(app.port, address, () => resolve());
      });
      app.port = (server.address() as AddressInfo).port;
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = undefined;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  await app.start();
  return app;
}
