/**
 * The CLI's own settings (conf): which registry it talks to, the CA file that pins it, and the
 * default token; and where the registry and agent keep their state by default.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Conf from 'conf';

export interface CliSettings {
  registry?: string;
  token?: string;
  caFile?: string;
}

/** conf (and the JSON-schema validator it brings) loads only for the commands that read settings: not for the agent or its proxies. */
export async function openSettings(): Promise<Conf<CliSettings>> {
  const { default: ConfClass } = await import('conf');
  return new ConfClass<CliSettings>({
    projectName: 'meshctl',
    projectSuffix: '',
    configName: 'cli',
    configFileMode: 0o600,
    ...(process.env.MESHCTL_CONFIG_DIR ? { cwd: process.env.MESHCTL_CONFIG_DIR } : {}),
  });
}

/** Default data directories: system-wide as root, per-user otherwise. */
export function defaultDataDir(part: 'registry' | 'agent'): string {
  if (process.env.MESHCTL_DATA_DIR) return join(process.env.MESHCTL_DATA_DIR, part);
  if (process.getuid?.() === 0) return join('/var/lib/meshctl', part);
  const base = process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share');
  return join(base, 'meshctl', part);
}
