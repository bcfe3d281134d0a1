/**
 * Installs a rendered meshctl unit and, where systemd runs, enables it. Where systemd does
 * not run (containers, chroots, build hosts) or the caller asks not to touch it, the unit
 * is still written and the result lists the commands still to run.
 */
import { existsSync, realpathSync } from 'node:fs';
import { lchown, lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { MeshError } from '../errors/index.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { lookupAccount, type Account } from './accounts.js';
import { defaultUnitVars, renderUnit, unitFileName, type UnitKind, type UnitVars } from './render.js';

export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

/** Directories systemd's system manager loads units from (systemd.unit(5)). */
const SYSTEM_UNIT_DIRS = new Set([
  '/etc/systemd/system',
  '/run/systemd/system',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
]);

const HIDDEN_BY_PROTECT_HOME = ['/home', '/root', '/run/user'];
const HIDDEN_BY_PRIVATE_TMP = ['/tmp', '/var/tmp'];

// `enable --now` waits for the start job; bound it so a wedged systemd cannot hang the CLI.
const SYSTEMCTL_TIMEOUT_MS = 90_000;
const VERIFY_TIMEOUT_MS = 60_000;

export interface InstallUnitOptions {
  readonly kind: UnitKind;
  /** Where to write the unit; default /etc/systemd/system. */
  readonly unitDir?: string;
  /** Also start the service (`systemctl enable --now`). */
  readonly now?: boolean;
  /** Values for the template; default defaultUnitVars(kind). */
  readonly vars?: UnitVars;
  /** Run systemctl when systemd is running; false only writes the file. */
  readonly runSystemctl?: boolean;
  /** systemctl binary to run; default `systemctl` from PATH. */
  readonly systemctl?: string;
  /** Overrides the detection of a running systemd (see isSystemdRunning). */
  readonly systemdRunning?: boolean;
  /**
   * Give the data directory (recursively) to the unit's user and group, as root must: files
   * `meshctl init` wrote as root are 0600 and the service, which runs as its own user, could
   * not read them.
   */
  readonly ownDataDir?: boolean;
}

export interface InstallUnitResult {
  readonly unitPath: string;
  /** False when the file on disk already had exactly this content and mode. */
  readonly changed: boolean;
  /** What was done, in order, for the user to read. */
  readonly actions: string[];
  readonly systemdRunning: boolean;
  /** Shell commands the user still has to run. */
  readonly nextSteps: string[];
  /** Things that will stop the service from starting, found while installing. */
  readonly warnings: string[];
}

/** The same test as sd_booted(3): systemd is PID 1 when /run/systemd/system exists. */
export function isSystemdRunning(probe = '/run/systemd/system'): boolean {
  return existsSync(probe);
}

/**
 * Refuses paths the hardened unit would hide from the service: ProtectHome=yes makes home
 * directories inaccessible and PrivateTmp=yes gives the service an empty /tmp of its own,
 * so a unit using them fails at start (or loses its data) with a confusing error.
 */
export function checkUnitPathsVisible(vars: UnitVars): void {
  // The env file is not here: systemd itself reads it, before the sandbox exists.
  const used = { node: vars.node, meshctlBin: vars.meshctlBin, dataDir: vars.dataDir };
  for (const [key, value] of Object.entries(used)) {
    for (const path of new Set([value, realpathOrSelf(value)])) {
      if (under(path, HIDDEN_BY_PROTECT_HOME)) {
        throw new MeshError(
          'MESH_ERR_INVALID_ARGUMENT',
          `${key} ${path} is in a home directory, which the service cannot see (ProtectHome=yes)`,
          {
            hint: 'Install meshctl system-wide (sudo ./install.sh puts it in /opt/meshctl), use a node installed outside home directories (your distribution or nodesource), and keep data and config under /var/lib and /etc.',
            details: { field: key },
          },
        );
      }
      if (under(path, HIDDEN_BY_PRIVATE_TMP)) {
        throw new MeshError(
          'MESH_ERR_INVALID_ARGUMENT',
          `${key} ${path} is under a temporary directory, which the service does not share (PrivateTmp=yes)`,
          {
            hint: 'Use a persistent data directory such as /var/lib/meshctl, and a meshctl installed with install.sh.',
            details: { field: key },
          },
        );
      }
    }
  }
}

export async function installUnit(opts: InstallUnitOptions): Promise<InstallUnitResult> {
  const { kind, now = false, runSystemctl = true } = opts;
  const vars = opts.vars ?? defaultUnitVars(kind);
  checkUnitPathsVisible(vars);
  const content = renderUnit(kind, vars);
  // A unit for an account this host lacks fails at start with 217/USER: refuse it now.
  const account = await lookupAccount(vars.user, vars.group);

  const unitDir = resolve(opts.unitDir ?? DEFAULT_UNIT_DIR);
  await assertDirectory(unitDir);
  const name = unitFileName(kind);
  const unitPath = join(unitDir, name);
  const actions: string[] = [];
  const warnings: string[] = [];

  const changed = !(await sameFile(unitPath, content, 0o644));
  if (changed) {
    try {
      await writeFileAtomic(unitPath, content, 0o644);
    } catch (e) {
      throw fsError(e, `cannot write ${unitPath}`);
    }
    actions.push(`wrote ${unitPath}`);
  } else {
    actions.push(`${unitPath} is already up to date`);
  }

  if (!(await exists(vars.dataDir))) {
    warnings.push(
      `data directory ${vars.dataDir} does not exist; the service cannot start without it (install.sh creates /var/lib/meshctl): install -d -m 0700 -o ${vars.user} -g ${vars.group} ${vars.dataDir}`,
    );
  } else if (opts.ownDataDir) {
    const changedFiles = await giveTree(vars.dataDir, account);
    if (changedFiles > 0)
      actions.push(
        `gave ${vars.dataDir} to ${account.user}:${account.group} (${changedFiles} files; the service runs as ${account.user})`,
      );
  } else if (!(await ownedBy(vars.dataDir, account))) {
    warnings.push(
      `data directory ${vars.dataDir} is not owned by ${account.user}, whom the service runs as; as root: chown -R ${account.user}:${account.group} ${vars.dataDir}`,
    );
  }

  const loaded = SYSTEM_UNIT_DIRS.has(unitDir);
  if (!loaded)
    warnings.push(`systemd does not load units from ${unitDir}; link the file in with \`systemctl link ${unitPath}\``);

  const enableArgs = ['enable', ...(now ? ['--now'] : []), name];
  const commands: string[][] = [...(loaded ? [] : [['link', unitPath]]), ['daemon-reload'], enableArgs];
  const afterwards = now ? [`systemctl status ${name}`] : [`systemctl start ${name}`];

  const systemdRunning = opts.systemdRunning ?? isSystemdRunning();
  if (!systemdRunning || !runSystemctl || !loaded) {
    return {
      unitPath,
      changed,
      actions,
      systemdRunning,
      nextSteps: [...commands.map(shellLine), ...afterwards],
      warnings,
    };
  }

  try {
    actions.push(...(await runSystemctlCommands(commands, { systemctl: opts.systemctl, unitName: name, unitPath })));
  } catch (e) {
    // A failed start is usually explained by what the checks above found.
    if (e instanceof MeshError && warnings.length > 0) {
      throw new MeshError(e.code, `${e.message}\n${warnings.join('\n')}`, {
        cause: e,
        hint: e.hint,
        details: e.details,
      });
    }
    throw e;
  }
  return { unitPath, changed, actions, systemdRunning, nextSteps: afterwards, warnings };
}

/**
 * Runs systemctl commands in order, stopping at the first failure with its stderr.
 * Returns what ran, as shell lines.
 */
export async function runSystemctlCommands(
  commands: readonly (readonly string[])[],
  opts: { systemctl?: string | undefined; unitName: string; unitPath: string },
): Promise<string[]> {
  const systemctl = opts.systemctl ?? 'systemctl';
  const done: string[] = [];
  for (const args of commands) {
    const r = await execa(systemctl, args, { reject: false, timeout: SYSTEMCTL_TIMEOUT_MS, stdin: 'ignore' });
    if (r.failed) {
      const why =
        r.exitCode === undefined ? (r.shortMessage ?? 'could not run') : r.stderr.trim() || `exit code ${r.exitCode}`;
      throw new MeshError('MESH_ERR_UNAVAILABLE', `${shellLine(args)} failed: ${why}`, {
        hint: `Check \`systemctl status ${opts.unitName}\` and \`journalctl -u ${opts.unitName}\`; the unit file is at ${opts.unitPath}.`,
        details: { command: [systemctl, ...args], exitCode: r.exitCode, stderr: r.stderr, done },
      });
    }
    done.push(shellLine(args));
  }
  return done;
}

/**
 * Runs `systemd-analyze verify` on a unit file. ok means it exited 0 and printed nothing
 * about this unit (it reports unknown keys as warnings and still exits 0).
 */
export async function verifyUnit(path: string): Promise<{ ok: boolean; output: string }> {
  const r = await execa('systemd-analyze', ['verify', path], {
    reject: false,
    all: true,
    timeout: VERIFY_TIMEOUT_MS,
    stdin: 'ignore',
    env: { SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' },
  });
  if (r.exitCode === undefined) {
    throw new MeshError('MESH_ERR_UNAVAILABLE', `cannot run systemd-analyze: ${r.shortMessage ?? 'unknown error'}`, {
      hint: 'Install systemd (it provides systemd-analyze), e.g. `apt-get install systemd`.',
    });
  }
  const output = r.all.trim();
  const name = basename(path);
  const aboutUnit = output.split('\n').some((line) => line.includes(name));
  return { ok: r.exitCode === 0 && !aboutUnit, output };
}

async function sameFile(path: string, content: string, mode: number): Promise<boolean> {
  try {
    const [st, text] = await Promise.all([stat(path), readFile(path, 'utf8')]);
    return (st.mode & 0o777) === mode && text === content;
  } catch {
    return false;
  }
}

async function assertDirectory(dir: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `unit directory ${dir} does not exist or is not a directory`, {
      hint: 'Pass an existing directory with --unit-dir, or leave it out to use /etc/systemd/system.',
    });
  }
}

/** Gives every entry under `dir` (itself included, symlinks not followed) to `account`; returns how many changed. */
async function giveTree(dir: string, account: Account): Promise<number> {
  let changed = 0;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.uid !== account.uid || st.gid !== account.gid) {
      await lchown(path, account.uid, account.gid).catch((e: unknown) => {
        throw fsError(e, `cannot give ${path} to ${account.user}`);
      });
      changed += 1;
    }
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(dir);
  return changed;
}

async function ownedBy(path: string, account: Account): Promise<boolean> {
  const st = await stat(path);
  return st.uid === account.uid;
}

function fsError(e: unknown, what: string): MeshError {
  const code = (e as NodeJS.ErrnoException).code;
  const message = `${what}: ${(e as Error).message}`;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new MeshError('MESH_ERR_FORBIDDEN', message, {
      cause: e,
      hint: 'Installing a system unit needs root: run it with sudo, or pass --unit-dir DIR you can write.',
    });
  }
  return new MeshError('MESH_ERR_INTERNAL', message, {
    cause: e,
    hint: 'Check the unit directory and the free space on its disk.',
  });
}

function under(path: string, roots: readonly string[]): boolean {
  return roots.some((root) => path === root || path.startsWith(`${root}/`));
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function shellLine(args: readonly string[]): string {
  return ['systemctl', ...args].join(' ');
}
