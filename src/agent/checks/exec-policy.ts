/**
 * Who may make the agent run a command. An exec check runs as the agent's user, so whoever
 * can register one runs code as that user: through the admin socket that would be every
 * member of group meshctl. So exec checks are off unless the agent is started with
 * --enable-exec-checks (Consul's enable_local_script_checks), and even then they come only
 * from definition files that root owns and only root can change, in a services directory
 * of the same kind — never through the socket.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { MeshError } from '../../errors/index.js';
import type { CheckDefinition } from '../../api/schemas.js';

export interface ExecCheckPolicy {
  /** The agent was started with --enable-exec-checks. */
  readonly enabled: boolean;
  /** The watched services directory. */
  readonly servicesDir: string;
}

export function hasExecCheck(checks: readonly CheckDefinition[]): boolean {
  return checks.some((c) => c.kind === 'exec');
}

/** Registration through the socket (the CLI): an exec check is always refused. */
export function refuseExecThroughSocket(service: string, policy: ExecCheckPolicy): MeshError {
  return new MeshError(
    'MESH_ERR_EXEC_CHECKS_DISABLED',
    `service '${service}': exec checks cannot be registered through the agent socket${policy.enabled ? '' : ', and they are off on this agent'}`,
  );
}

/** Why a path may not define exec checks (owner or mode), or undefined when root alone can change it. */
async function notRootOnly(path: string, what: string): Promise<string | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    return `${what} ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (st.uid !== 0) return `${what} ${path} is owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0)
    return `${what} ${path} is writable by its group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/**
 * Whether the definition file `file` may carry exec checks: undefined when it may, else the
 * reason, fit for `meshctl services` problems.
 */
export async function execCheckRefusal(file: string, policy: ExecCheckPolicy): Promise<string | undefined> {
  if (!policy.enabled) return 'exec checks are off on this agent (start it with --enable-exec-checks)';
  const dir = resolve(policy.servicesDir);
  const abs = resolve(dir, file);
  if (dirname(abs) !== dir) return `exec checks are accepted only from files directly in ${dir}`;
  return (
    (await notRootOnly(dir, 'the services directory')) ?? (await notRootOnly(abs, 'the definition file')) ?? undefined
  );
}
