/** Which agent socket a host-local client (CLI command, dashboard) talks to: --socket, MESHCTL_AGENT_SOCKET, or the agent config of --data-dir. */
import { readFile } from 'node:fs/promises';
import { AgentClient } from '../agent/client.js';
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
  try {
    const cfg = JSON.parse(await readFile(agentPaths(dataDir).config, 'utf8')) as { socketPath?: unknown };
    if (typeof cfg.socketPath === 'string') return cfg.socketPath;
  } catch {
    // No readable config: fall back to where the agent puts its socket by default.
  }
  return defaultSocketPath(dataDir);
}

export async function agentClientFor(flags: AgentFlags): Promise<AgentClient> {
  return new AgentClient(await resolveAgentSocket(flags));
}
