/**
 * One agent per data directory, and a live agent socket is never taken over.
 *
 * The data directory holds the node's key and `state.json`: two agents on one directory each
 * rewrite the state from their own memory and registrations vanish. `agent.lock` in it names
 * the holder (pid and the process's start time, so a pid reused by an unrelated process after a
 * crash does not keep the lock). A lock whose holder is gone is stale and taken over.
 *
 * The socket is checked by connecting to it: an agent that answers keeps it (whichever data dir
 * it uses), a socket file nobody listens on is left by a crash and replaced.
 */
import { open, readFile, rm, lstat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { MeshError } from '../errors/index.js';

interface Holder {
  pid: number;
  /** Clock ticks since boot when the process started (Linux /proc), when known. */
  start?: number;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat); undefined off Linux. */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const n = Number(fields[19]);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(h: Holder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (h.start === undefined) return true;
  const now = processStart(h.pid);
  return now === undefined || now === h.start;
}

/** Directories this process holds (a second Agent in one process is refused too). */
const held = new Set<string>();

export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, 'agent.lock');
  const busy = (pid: number) =>
    new MeshError('MESH_ERR_ALREADY_RUNNING', `another agent (pid ${pid}) uses the data directory ${dataDir}`, {
      hint: 'One agent per data directory: stop that agent first (`systemctl stop meshctl-agent`, or kill it), or give this one its own --data-dir.',
    });
  if (held.has(path)) throw busy(process.pid);
  const me: Holder = { pid: process.pid };
  const start = processStart(process.pid);
  if (start !== undefined) me.start = start;
  const body = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(body);
      } finally {
        await fh.close();
      }
      held.add(path);
      return {
        path,
        async release() {
          held.delete(path);
          // Only our own lock: never one a later agent took over.
          if ((await readFile(path, 'utf8').catch(() => '')) === body) await rm(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new MeshError('MESH_ERR_CONFIG', `cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`, {
          cause: e,
        });
      }
    }
    const holder = parseHolder(await readFile(path, 'utf8').catch(() => ''));
    if (holder && alive(holder)) throw busy(holder.pid);
    // Left by an agent that is gone (kill -9, power loss): take it over.
    await rm(path, { force: true });
  }
  throw new MeshError('MESH_ERR_ALREADY_RUNNING', `could not take ${path}: another agent keeps taking it`);
}

function parseHolder(s: string): Holder | undefined {
  try {
    const v = JSON.parse(s) as Partial<Holder>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined;
    return typeof v.start === 'number' ? { pid: v.pid, start: v.start } : { pid: v.pid };
  } catch {
    return undefined;
  }
}

/** Whether something accepts connections on the unix socket at `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(2000, () => done(true));
  });
}

/** The pid of the agent answering on `path`, from its `GET /v1/agent/self`; undefined when it does not say. */
async function pidOf(path: string): Promise<number | undefined> {
  const { AgentClient } = await import('./client.js');
  const c = new AgentClient(path);
  try {
    const self = await c.self();
    return typeof self.pid === 'number' ? self.pid : undefined;
  } catch {
    return undefined;
  } finally {
    c.close();
  }
}

/**
 * Makes `path` free for this agent's socket: nothing there, or a socket file nobody listens on
 * (removed). A live socket is refused, and so is anything at `path` that is not a socket.
 */
export async function claimSocketPath(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new MeshError('MESH_ERR_CONFIG', `cannot use ${path} for the agent socket: ${(e as Error).message}`);
  }
  if (!st.isSocket())
    throw new MeshError('MESH_ERR_CONFIG', `${path} exists and is not a socket; not replacing it`, {
      hint: 'Pick another socket path (--socket at `meshctl init --join`, socketPath in agent.json) or remove that file.',
    });
  if (await listening(path)) {
    const pid = await pidOf(path);
    throw new MeshError(
      'MESH_ERR_ALREADY_RUNNING',
      `another agent ${pid === undefined ? '' : `(pid ${pid}) `}serves ${path}`,
      {
        hint: 'One agent per socket: stop that agent first, or give this one its own socket (`meshctl init --join … --data-dir DIR` puts it in DIR).',
      },
    );
  }
  // A crashed agent's socket file: listen would fail on it with EADDRINUSE.
  await rm(path, { force: true });
}
