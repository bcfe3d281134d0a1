/** `meshctl agent install` / `meshctl registry install`: render the unit for this install and enable it. */
import { defaultUnitVars, type UnitKind } from './render.js';
import { installUnit, type InstallUnitResult } from './install.js';
import { lookupAccount } from './accounts.js';

export interface InstallServiceOptions {
  now?: boolean;
  unitDir: string;
  dataDir: string;
  user: string;
  /** A registry on etcd: its unit also starts after a local etcd.service. */
  etcd?: boolean;
}

export async function installService(
  kind: UnitKind,
  opts: InstallServiceOptions,
): Promise<InstallUnitResult & { lines: string[] }> {
  // The unit's group is the user's primary group (root → root, meshctl → meshctl).
  const account = await lookupAccount(opts.user);
  const vars = defaultUnitVars(kind, {
    dataDir: opts.dataDir,
    user: opts.user,
    group: account.group,
    etcd: opts.etcd === true,
  });
  const res = await installUnit({
    kind,
    unitDir: opts.unitDir,
    now: opts.now === true,
    vars,
    // Only root can give files away; anyone else is told what to run.
    ownDataDir: process.getuid?.() === 0,
  });
  const lines = [
    ...res.actions,
    ...res.warnings.map((w) => `warning: ${w}`),
    ...(res.nextSteps.length > 0
      ? [
          res.systemdRunning ? 'Next:' : 'systemd is not running here; to enable the service run:',
          ...res.nextSteps.map((s) => `  ${s}`),
        ]
      : []),
  ];
  return { ...res, lines };
}
