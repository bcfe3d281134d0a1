/** Which agent socket a host-local client (CLI command, dashboard) talks to: --socket, MESHCTL_AGENT_SOCKET, or the agent config of --data-dir. */
import { readFile } from 'node:fs/promises';
import { AgentClient } from '../agent/client.js';
import { MeshError } from '../errors/index.js';
import { agentPaths, defaultSocketPath } from '../agent/paths.js';
import { defaultDataDir } from './settings.js';

export interface AgentFlags {
  socket?: string;
  dataDir?: string;
}

export async function resolveAgentSocket(flags: AgentFlags): Promise<string> {
  if (flags.socket) return flags.socket;
  if (process.env.MESHCTL_AGENT_SOCKET) return process.env.MESHCTL_AGENT_SOCKET;
  const dataDir = flags.dataDir ?? defaultDataDir('agent');
  const config = agentPaths(dataDir).config;
  let text: string | undefined;
  try {
    text = await readFile(config, 'utf8');
  } catch {
    // A named data dir must be an agent's: falling back to the default socket would reach
    // whichever agent serves it, not the one asked for.
    if (flags.dataDir !== undefined)
      throw new MeshError('MESH_ERR_NOT_INITIALIZED', `no agent in ${agentPaths(dataDir).dataDir} (no ${config})`, {
        hint: 'Pass the --data-dir that `meshctl init --join` used, or --socket PATH of a running agent.',
      });
  }
  if (text !== undefined) {
    let socketPath: unknown;
    try {
      socketPath = (JSON.parse(text) as { socketPath?: unknown }).socketPath;
    } catch {
      socketPath = undefined;
    }
    if (typeof socketPath === 'string') return socketPath;
    throw new MeshError('MESH_ERR_CONFIG', `${config} has no valid socketPath`, {
      hint: 'Fix agent.json (socketPath is the agent socket), or pass --socket PATH.',
    });
  }
  // No config in the default data dir: where an agent puts its socket by default.
  return defaultSocketPath(dataDir);
}

export async function agentClientFor(flags: AgentFlags): Promise<AgentClient> {
  return new AgentClient(await resolveAgentSocket(flags));
}
