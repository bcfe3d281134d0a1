/**
 * Which registry a client (the CLI, the dashboard) talks to, and with which token and CA:
 * flags beat environment variables, which beat the settings saved by `meshctl init`.
 */
import { readFile } from 'node:fs/promises';
import { MeshError } from '../errors/index.js';
import { FAILOVER_CODES, RegistryClient } from '../api/registry-client.js';
import { SharedTlsSession } from '../api/resuming-agent.js';
import { openSettings } from './settings.js';

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
  // The probe's TLS session serves the client that follows (and any registry of the mesh).
  const tlsSession = new SharedTlsSession();
  const make = (baseUrl: string, timeoutMs?: number) =>
    new RegistryClient({
      baseUrl,
      tlsSession,
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
