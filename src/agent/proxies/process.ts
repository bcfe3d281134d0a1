/**
 * One sidecar proxy process: launched detached (so an agent restart does not take it down,
 * and a restarted agent adopts it through its admin socket), watched through that socket,
 * and relaunched with backoff when it dies or stops answering.
 */
import { openSync, closeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { execa } from 'execa';
import type { Logger } from '../../util/log.js';
import { HttpClient } from '../../api/http-client.js';
import { PROXY_NODE_FLAGS } from '../../proxy/process-flags.js';
import type { ProxyHealth } from '../../proxy/proxy.js';
import type { ProxyMetrics } from '../../api/metrics.js';
import { Backoff } from '../../util/backoff.js';
import { sleep } from '../../util/async.js';

export interface ProxyProcessOptions {
  serviceId: string;
  adminSocket: string;
  snapshotFile: string;
  logFile: string;
  /** Entry script of the meshctl CLI (the agent's own). */
  cliEntry: string;
  /** How long the proxy lets in-flight requests finish when it stops. */
  drainSeconds: number;
  /** The agent's admin socket, where the proxy says it drains (`proxy run --agent-socket`). */
  agentSocket?: string;
  /** Called when the proxy starts draining, and when a proxy serves again after a drain. */
  onDraining?: (serviceId: string, draining: boolean) => void;
  log: Logger;
}

/** Past its drain, a sidecar gets this long to close and exit before it is killed. */
const EXIT_GRACE_MS = 5_000;

export type ProxyProcessState = 'starting' | 'running' | 'backoff' | 'stopped';

export interface ProxyProcessInfo {
  serviceId: string;
  state: ProxyProcessState;
  pid: number | undefined;
  adopted: boolean;
  restarts: number;
  snapshotVersion: number | null;
  lastError?: string;
  /** The proxy drains (told to stop): its instance is withdrawn from callers until a new proxy serves. */
  draining?: boolean;
  /**
   * Why the proxy does not serve the registration as it is now: its last snapshot push was
   * refused (a port it cannot bind, …). Cleared once a push succeeds.
   */
  problem?: string;
}

const HEALTH_EVERY_MS = 1_000;
const MISSES_BEFORE_RESTART = 3;

export class ProxyProcess {
  readonly #admin: HttpClient;
  readonly #backoff = new Backoff(250, 30_000);
  #timer: NodeJS.Timeout | undefined;
  #pid: number | undefined;
  #state: ProxyProcessState = 'starting';
  #adopted = false;
  #restarts = 0;
  #misses = 0;
  #runningVersion: number | null = null;
  #lastError: string | undefined;
  #pushError: string | undefined;
  #nextLaunchAt = 0;
  #closed = false;
  /** The pid of the proxy that drains; a proxy never serves again once it drains, so another pid ends it. */
  #drainingPid: number | undefined;

  /** The snapshot to serve; pushed whenever the proxy reports another version. */
  desired: { version: number; body: unknown } | undefined;

  readonly #o: ProxyProcessOptions;

  constructor(o: ProxyProcessOptions) {
    this.#o = o;
    this.#admin = new HttpClient({ baseUrl: 'http://proxy', socketPath: o.adminSocket, timeoutMs: 3_000 });
  }

  /** Adopts a proxy already serving this service, or launches one. */
  async start(): Promise<void> {
    const h = await this.#health();
    if (h && h.serviceId === this.#o.serviceId && h.status !== 'draining' && h.status !== 'stopped') {
      this.#pid = h.pid;
      this.#adopted = true;
      this.#state = 'running';
      this.#runningVersion = h.version;
      this.#o.log.info({ service: this.#o.serviceId, proxyPid: h.pid }, 'adopted running proxy');
    } else {
      await this.#launch();
    }
    await this.#tick();
  }

  info(): ProxyProcessInfo {
    return {
      serviceId: this.#o.serviceId,
      state: this.#state,
      pid: this.#pid,
      adopted: this.#adopted,
      restarts: this.#restarts,
      snapshotVersion: this.#runningVersion,
      ...(this.#drainingPid !== undefined ? { draining: true } : {}),
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      ...(this.#pushError ? { problem: this.#pushError } : {}),
    };
  }

  /** The proxy's figures in the shape agents report (see src/api/metrics.ts). */
  async metrics(): Promise<Omit<ProxyMetrics, 'node'>> {
    return (await this.#admin.get<Omit<ProxyMetrics, 'node'>>('/metrics')).body;
  }

  async stats(): Promise<unknown> {
    return (await this.#admin.get<unknown>('/stats')).body;
  }

  get draining(): boolean {
    return this.#drainingPid !== undefined;
  }

  /** The proxy (pid) said it drains, or its health says so. */
  markDraining(pid: number): void {
    if (this.#drainingPid === pid) return;
    this.#drainingPid = pid;
    this.#o.log.info({ service: this.#o.serviceId, proxyPid: pid }, 'proxy drains; withdrawing the instance');
    this.#o.onDraining?.(this.#o.serviceId, true);
  }

  /** Another proxy than the one that drained serves: the instance is back for callers. */
  #servingAgain(pid: number): void {
    if (this.#drainingPid === undefined || this.#drainingPid === pid) return;
    this.#drainingPid = undefined;
    this.#o.log.info({ service: this.#o.serviceId, proxyPid: pid }, 'a new proxy serves; the instance is back');
    this.#o.onDraining?.(this.#o.serviceId, false);
  }

  /** Pushes the desired snapshot now (also done on every health tick until it sticks). */
  async push(): Promise<void> {
    if (!this.desired || this.#runningVersion === this.desired.version) return;
    try {
      const res = await this.#admin.put<{ version: number }>('/snapshot', this.desired.body);
      this.#runningVersion = res.body.version;
      this.#pushError = undefined;
    } catch (e) {
      this.#lastError = (e as Error).message;
      // The proxy answered and refused the snapshot: it cannot serve this registration.
      const code = (e as { code?: unknown }).code;
      if ((code !== 'MESH_ERR_UNAVAILABLE' && code !== 'MESH_ERR_TIMEOUT') || /cannot listen/.test(this.#lastError))
        this.#pushError = this.#lastError;
    }
  }

  /** Stops watching; the process keeps running (agent restart) unless `shutdown` is set. */
  async close(opts: { shutdown?: boolean } = {}): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (opts.shutdown) {
      // The agent deregistered the service (or the host left) before: no need to tell it back.
      await this.#admin
        .post('/shutdown', { drainSeconds: this.#o.drainSeconds, withdrawn: true })
        .catch(() => undefined);
      if (this.#pid !== undefined) await waitForExit(this.#pid, this.#o.drainSeconds * 1000 + EXIT_GRACE_MS);
      await rm(this.#o.adminSocket, { force: true });
    }
    this.#admin.close();
    this.#state = 'stopped';
  }

  async #health(): Promise<ProxyHealth | undefined> {
    try {
      return (await this.#admin.get<ProxyHealth>('/health')).body;
    } catch {
      return undefined;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#tick(), HEALTH_EVERY_MS);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    try {
      const h = await this.#health();
      if (h && h.status !== 'stopped') {
        this.#misses = 0;
        this.#state = 'running';
        this.#pid = h.pid;
        this.#runningVersion = h.version;
        this.#backoff.reset();
        // Also for a proxy that could not reach the agent when it was told to stop.
        if (h.status === 'draining') this.markDraining(h.pid);
        else if (h.status === 'serving') this.#servingAgain(h.pid);
        await this.push();
      } else if (this.#pid !== undefined && alive(this.#pid) && ++this.#misses < MISSES_BEFORE_RESTART) {
        // Still starting up, or briefly busy: give it a moment.
      } else if (Date.now() >= this.#nextLaunchAt) {
        if (this.#pid !== undefined && alive(this.#pid)) process.kill(this.#pid, 'SIGKILL');
        this.#restarts += 1;
        this.#o.log.warn(
          { service: this.#o.serviceId, proxyPid: this.#pid, restarts: this.#restarts },
          'proxy is not answering; relaunching',
        );
        await this.#launch();
      }
    } catch (e) {
      this.#lastError = (e as Error).message;
    } finally {
      this.#schedule();
    }
  }

  async #launch(): Promise<void> {
    this.#state = 'starting';
    this.#misses = 0;
    this.#runningVersion = null;
    this.#nextLaunchAt = Date.now() + this.#backoff.next();
    // The proxy writes straight to its own log file (an inherited fd, not a pipe through the
    // agent), so it keeps logging after the agent exits. execa accepts any fd at run time;
    // its types only list small literals, hence the cast.
    const fd = openSync(this.#o.logFile, 'a', 0o600) as 3;
    try {
      const child = execa(
        process.execPath,
        [
          ...PROXY_NODE_FLAGS,
          this.#o.cliEntry,
          'proxy',
          'run',
          '--admin-socket',
          this.#o.adminSocket,
          '--snapshot',
          this.#o.snapshotFile,
          // SIGTERM (systemctl kill, a reboot) drains as long as a shutdown the agent asks for.
          '--drain',
          `${this.#o.drainSeconds}s`,
          // Told to stop, the proxy tells the agent first, so callers drop the instance before it drains.
          ...(this.#o.agentSocket ? ['--agent-socket', this.#o.agentSocket] : []),
        ],
        {
          detached: true,
          reject: false,
          stdin: 'ignore',
          stdout: fd,
          stderr: fd,
        },
      );
      this.#pid = child.pid;
      child.unref();
      // Only to notice a quick death sooner than the next health tick.
      void child.then((r) => {
        if (!this.#closed && r.exitCode !== 0 && this.#pid === child.pid)
          this.#lastError = `proxy exited with ${String(r.exitCode ?? r.signal)}`;
      });
      this.#o.log.info({ service: this.#o.serviceId, proxyPid: child.pid }, 'launched proxy');
    } finally {
      closeSync(fd);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (alive(pid) && Date.now() < end) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}
