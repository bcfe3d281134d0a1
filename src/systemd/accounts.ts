/**
 * The accounts a unit runs as, looked up the way systemd will (NSS, through getent): a unit
 * whose User= or Group= does not exist fails at start with 217/USER, so `install` refuses
 * it before writing anything.
 */
import { execa } from 'execa';
import { MeshError } from '../errors/index.js';

export interface Account {
  readonly user: string;
  readonly uid: number;
  /** The user's primary group (name and id): the unit's group unless one is given. */
  readonly group: string;
  readonly gid: number;
}

/** One getent entry split at ':', undefined when there is none; throws when getent cannot run. */
async function getent(db: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  const r = await execa('getent', [db, key], { reject: false, timeout: 10_000, stdin: 'ignore' });
  if (r.exitCode === undefined) {
    throw new MeshError('MESH_ERR_UNAVAILABLE', `cannot look up ${db} entries: ${r.shortMessage ?? 'getent failed'}`, {
      hint: 'getent (libc-bin) must be installed to check the service account.',
    });
  }
  if (r.exitCode !== 0) return undefined;
  return r.stdout.split('\n')[0]!.split(':');
}

/**
 * The user `name` (a name or a numeric id) and its group: `group` when given, else the
 * user's primary group. MESH_ERR_INVALID_ARGUMENT when either does not exist on this host.
 */
export async function lookupAccount(name: string, group?: string): Promise<Account> {
  const pw = await getent('passwd', name);
  if (!pw) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `user ${name} does not exist on this host`, {
      hint:
        name === 'meshctl'
          ? 'Run `sudo ./install.sh` (it creates the meshctl user), or pass --user with an existing user.'
          : `Create it first (useradd --system --no-create-home --shell /usr/sbin/nologin ${name}), or pass another --user.`,
      details: { field: 'user' },
    });
  }
  const uid = Number(pw[2]);
  const primary = Number(pw[3]);
  const gr = await getent('group', group ?? String(primary));
  if (!gr) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `group ${group ?? primary} does not exist on this host`, {
      ...(group ? { hint: `Create it first (groupadd --system ${group}), or leave the group out.` } : {}),
      details: { field: 'group' },
    });
  }
  return { user: pw[0]!, uid, group: gr[0]!, gid: Number(gr[2]) };
}
