/**
 * The proxy process: `meshctl proxy run`. Starts from the agent's on-disk snapshot when one
 * is given — so a proxy restarted while the agent and the registry are down still serves
 * ("fail static") — opens the admin socket, and runs until SIGTERM/SIGINT or
 * POST /shutdown, then drains and exits. Without pushes it keeps its last good snapshot.
 * Told to stop, it first tells its agent (when it has one), which withdraws the instance from
 * callers; it serves as before until the agent answered (at most WITHDRAW_WAIT_MS), then drains.
 */
import { readFile } from 'node:fs/promises';
import { MeshError, toMeshError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { startAdmin, type AdminServer } from './admin.js';
import { DEFAULT_DRAIN_MS, MeshProxy, type ProxyOptions } from './proxy.js';

export interface RunProxyOptions {
  /** Unix socket path of the admin endpoint (made 0600). */
  readonly adminSocket: string;
  /** A snapshot JSON file to start from (the agent's cache). Missing or invalid: the proxy waits for a push. */
  readonly snapshotFile?: string;
  /** Drain time on SIGTERM / SIGINT / POST /shutdown without drainSeconds; default 30 s (DEFAULT_DRAIN_MS). */
  readonly drainMs?: number;
  /** The agent's admin socket: told to stop, the proxy tells the agent first (src/api/sidecar-draining.ts). */
  readonly agentSocket?: string;
  /** How long the proxy waits for the agent's answer before it drains anyway; default WITHDRAW_WAIT_MS. */
  readonly withdrawWaitMs?: number;
  /** Install SIGTERM/SIGINT handlers (the process entry does; in-process tests do not). Default true. */
  readonly handleSignals?: boolean;
  readonly log?: Logger;
  readonly proxy?: Omit<ProxyOptions, 'log'>;
}

export interface RunningProxy {
  readonly proxy: MeshProxy;
  readonly admin: AdminServer;
  /** Why the snapshot file was not used, when it was given but could not be served. */
  readonly startupProblem: MeshError | undefined;
  /**
   * Tells the agent (unless `withdrawn`: whoever asked knows already), drains and stops
   * (idempotent); resolves when everything is closed.
   */
  shutdown(drainMs?: number, opts?: { withdrawn?: boolean }): Promise<void>;
  /** Resolves once the proxy has stopped, however the stop was asked for. */
  readonly closed: Promise<void>;
}

/**
 * Long enough for the agent to reach the registry (one write), short enough that a stop is
 * not held up when the agent or registry is slow: past it the proxy drains anyway.
 */
export const WITHDRAW_WAIT_MS = 2_000;

async function loadSnapshotFile(proxy: MeshProxy, file: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MeshError('MESH_ERR_INVALID_FILE', `cannot read the snapshot file ${file}: ${code ?? String(e)}`, {
      hint: 'The proxy starts without a snapshot and waits for the agent to push one.',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MeshError(
      'MESH_ERR_INVALID_FILE',
      `the snapshot file ${file} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`,
      {
        hint: 'The proxy starts without a snapshot and waits for the agent to push one.',
      },
    );
  }
  try {
    await proxy.apply(json);
  } catch (e) {
    const err = toMeshError(e);
    throw new MeshError(
      err.code === 'MESH_ERR_BAD_REQUEST' ? 'MESH_ERR_INVALID_FILE' : err.code,
      `snapshot file ${file}: ${err.message}`,
      {
        hint: 'The proxy starts without a snapshot and waits for the agent to push one.',
        cause: e,
      },
    );
  }
}

export async function runProxy(opts: RunProxyOptions): Promise<RunningProxy> {
  const log = opts.log ?? createLogger('proxy');
  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  const proxy = new MeshProxy({ ...opts.proxy, log });

  let startupProblem: MeshError | undefined;
  if (opts.snapshotFile !== undefined) {
    try {
      await loadSnapshotFile(proxy, opts.snapshotFile);
      log.info({ file: opts.snapshotFile, version: proxy.version }, 'serving the snapshot from file');
    } catch (e) {
      startupProblem = toMeshError(e);
      log.error(
        { err: startupProblem.message, code: startupProblem.code },
        'the snapshot file cannot be served; waiting for a push',
      );
    }
  }

  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let stopping: Promise<void> | undefined;
  let admin: AdminServer;

  /** Asks the agent to withdraw this instance from callers, and waits (bounded) for its answer. */
  const withdraw = async (): Promise<void> => {
    const serviceId = proxy.health().serviceId;
    if (opts.agentSocket === undefined || serviceId === null) {
      log.info('no agent to tell (no --agent-socket or no snapshot); draining at once');
      return;
    }
    const started = Date.now();
    try {
      // Loaded on use: a serving proxy never needs the JSON client.
      const { tellAgentDraining } = await import('../api/sidecar-draining.js');
      await tellAgentDraining(opts.agentSocket, serviceId, process.pid, opts.withdrawWaitMs ?? WITHDRAW_WAIT_MS);
      log.info({ service: serviceId, tookMs: Date.now() - started }, 'the agent withdrew this instance; draining');
    } catch (e) {
      const err = toMeshError(e);
      log.warn(
        { service: serviceId, err: err.message, code: err.code, tookMs: Date.now() - started },
        'the agent did not withdraw this instance; draining at once',
      );
    }
  };

  const onSignal = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, 'signal received, shutting down');
    void shutdown(drainMs);
  };
  const shutdown = (ms: number = drainMs, o: { withdrawn?: boolean } = {}): Promise<void> => {
    stopping ??= (async () => {
      try {
        // From here health says draining; listeners keep serving until the agent answered.
        proxy.markDraining();
        if (o.withdrawn !== true) await withdraw();
        await proxy.shutdown(ms);
      } finally {
        await admin.close();
        if (opts.handleSignals !== false) {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
        resolveClosed();
      }
    })();
    return stopping;
  };

  try {
    admin = await startAdmin(proxy, opts.adminSocket, {
      log,
      defaultDrainMs: drainMs,
      onShutdown: (ms, withdrawn) => void shutdown(ms, { withdrawn }),
    });
  } catch (e) {
    await proxy.shutdown(0);
    throw e;
  }
  if (opts.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  log.info({ adminSocket: opts.adminSocket, pid: process.pid, version: proxy.version ?? null }, 'proxy running');
  return { proxy, admin, startupProblem, shutdown, closed };
}
