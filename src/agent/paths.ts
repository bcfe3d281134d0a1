/**
 * The layout of an agent's data directory and where its socket lives. Kept apart from the
 * config schema so the CLI finds the agent without loading zod.
 */
import { isAbsolute, join } from 'node:path';

export interface AgentPaths {
  dataDir: string;
  config: string;
  nodeKey: string;
  nodeCert: string;
  roots: string;
  state: string;
  snapshots: string;
  proxies: string;
  services: string;
}

export function agentPaths(dataDir: string): AgentPaths {
  const abs = isAbsolute(dataDir) ? dataDir : join(process.cwd(), dataDir);
  return {
    dataDir: abs,
    config: join(abs, 'agent.json'),
    nodeKey: join(abs, 'tls', 'node.key'),
    nodeCert: join(abs, 'tls', 'node.pem'),
    roots: join(abs, 'tls', 'roots.pem'),
    state: join(abs, 'state.json'),
    snapshots: join(abs, 'snapshots'),
    proxies: join(abs, 'proxies'),
    services: join(abs, 'services'),
  };
}

/** Where the agent's admin socket lives unless told otherwise. */
export function defaultSocketPath(dataDir: string): string {
  return process.getuid?.() === 0 ? '/run/meshctl/agent.sock' : join(dataDir, 'agent.sock');
}
