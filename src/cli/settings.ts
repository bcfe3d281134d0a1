/**
 * The CLI's own settings (conf): which registry it talks to, the CA file that pins it, and the
 * default token. Flags beat environment variables, which beat the saved settings.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Conf from 'conf';
import { MeshError } from '../errors/index.js';
import { FAILOVER_CODES, RegistryClient } from '../api/registry-client.js';

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

export interface RegistryFlags {
  registry?: string;
  token?: string;
  caFile?: string;
}

export interface RegistryTarget {
  url: string;
  token: string | undefined;
  caFile: string | undefined;
}

export async function resolveRegistryTarget(flags: RegistryFlags): Promise<RegistryTarget> {
  const saved = (await openSettings()).store;
  const url = flags.registry ?? process.env.MESHCTL_REGISTRY ?? saved.registry;
  if (!url) {
    throw new MeshError('MESH_ERR_CONFIG', 'no registry configured for this CLI', {
      hint: 'Pass --registry https://HOST:7443 (and --ca-file), set MESHCTL_REGISTRY, or run `meshctl init` on this host.',
    });
  }
  return {
    url,
    token: flags.token ?? process.env.MESHCTL_TOKEN ?? saved.token,
    caFile: flags.caFile ?? process.env.MESHCTL_CA_FILE ?? saved.caFile,
  };
}

/** A registry client for a CLI command, authenticated with the admin token. */
export async function registryClientFor(flags: RegistryFlags): Promise<RegistryClient> {
  const t = await resolveRegistryTarget(flags);
  let ca: string | undefined;
  if (t.caFile) {
    try {
      ca = await readFile(t.caFile, 'utf8');
    } catch (e) {
      throw new MeshError(
        'MESH_ERR_CONFIG',
        `cannot read the mesh CA file ${t.caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        {
          hint: 'Point --ca-file (or MESHCTL_CA_FILE) at the root.pem that `meshctl init --server` made.',
        },
      );
    }
  }
  const make = (baseUrl: string, timeoutMs?: number) =>
    new RegistryClient({
      baseUrl,
      ...(ca ? { ca } : {}),
      ...(t.token ? { token: t.token } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
    });
  const urls = t.url
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  if (urls.length <= 1) return make(urls[0] ?? t.url);
  // Several registries of one mesh: use the first that answers, in the order given.
  let last: unknown;
  for (const url of urls) {
    const probe = make(url, PROBE_TIMEOUT_MS);
    try {
      await probe.health();
      return make(url);
    } catch (e) {
      if (!(e instanceof MeshError && FAILOVER_CODES.has(e.code))) throw e;
      last = e;
    } finally {
      probe.close();
    }
  }
  throw new MeshError('MESH_ERR_UNAVAILABLE', `none of the registries answers: ${urls.join(', ')}`, {
    cause: last,
  });
}

const PROBE_TIMEOUT_MS = 3_000;

/** Default data directories: system-wide as root, per-user otherwise. */
export function defaultDataDir(part: 'registry' | 'agent'): string {
  if (process.env.MESHCTL_DATA_DIR) return join(process.env.MESHCTL_DATA_DIR, part);
  if (process.getuid?.() === 0) return join('/var/lib/meshctl', part);
  const base = process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share');
  return join(base, 'meshctl', part);
}
