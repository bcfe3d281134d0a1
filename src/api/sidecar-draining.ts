/**
 * The one call a sidecar makes to its agent: "I was told to stop". The agent then marks the
 * instance draining (critical) in the registry, so callers drop it before the sidecar's
 * listeners close, as Consul deregisters a service before stopping it. The agent answers once
 * the registry has it; the sidecar waits for that only briefly (docs/DATAPLANE.md "Drain").
 */
import { z } from 'zod';
import { HttpClient } from './http-client.js';

/** `POST` here on the agent's admin socket, body `{pid}`. */
export function sidecarDrainingPath(serviceId: string): string {
  return `/v1/agent/proxies/${encodeURIComponent(serviceId)}/draining`;
}

export const sidecarDrainingSchema = z.object({ pid: z.number().int().positive() }).strict();

/** Resolves once the agent says the registry has the instance draining; a MeshError otherwise (or after `timeoutMs`). */
export async function tellAgentDraining(
  agentSocket: string,
  serviceId: string,
  pid: number,
  timeoutMs: number,
): Promise<void> {
  const http = new HttpClient({ baseUrl: 'http://agent', socketPath: agentSocket, timeoutMs });
  try {
    await http.post(sidecarDrainingPath(serviceId), { pid });
  } finally {
    http.close();
  }
}
