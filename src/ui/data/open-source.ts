/**
 * Picks where `meshctl status` reads from. A configured registry (flag, env or `meshctl init`
 * settings) wins, with this host's agent adding its node's certificate expiry when it runs;
 * with no registry configured, or when --socket/--data-dir name an agent explicitly, the
 * agent's read-only pass-through is used, so any mesh host can show the dashboard without the
 * admin token.
 */
import { stat } from 'node:fs/promises';
import { MeshError } from '../../errors/index.js';
import { registryClientFor, resolveRegistryTarget, type RegistryFlags } from '../../targets/registry.js';
import { resolveAgentSocket, type AgentFlags } from '../../targets/agent.js';
import { AgentSource, RegistrySource } from './http-sources.js';
import type { MeshDataSource } from './source.js';

export type SourceFlags = RegistryFlags & AgentFlags;

export async function openMeshSource(flags: SourceFlags, opts: { timeoutMs?: number } = {}): Promise<MeshDataSource> {
  const agentNamed = flags.socket !== undefined || flags.dataDir !== undefined;
  const socket = await resolveAgentSocket(flags);
  const agentThere = await isSocket(socket);
  const registryUrl = flags.registry !== undefined || !agentNamed ? await configuredRegistry(flags) : undefined;

  if (registryUrl !== undefined) {
    const client = await registryClientFor(flags);
    return new RegistrySource(client, {
      baseUrl: registryUrl,
      ...(agentThere ? { agentSocket: socket } : {}),
      ...opts,
    });
  }
  if (agentThere || agentNamed) return new AgentSource(socket, opts);
  throw new MeshError('MESH_ERR_CONFIG', `no registry configured for this CLI and no agent socket at ${socket}`, {
    hint: 'Pass --registry https://HOST:7443 --token T --ca-file root.pem (or run `meshctl init`), or --socket PATH for a running agent.',
  });
}

async function configuredRegistry(flags: RegistryFlags): Promise<string | undefined> {
  try {
    return (await resolveRegistryTarget(flags)).url;
  } catch (e) {
    if (e instanceof MeshError && e.code === 'MESH_ERR_CONFIG') return undefined;
    throw e;
  }
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}
