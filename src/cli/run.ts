/**
 * What every data command does around its one call: open a client to the registry or this host's
 * agent from the flags, run, close it whatever happens; then print the answer as JSON (--json) or
 * as text made from the same data. Commands hold only the call and the text.
 */
import type { AgentClient } from '../agent/client.js';
import type { RegistryClient } from '../api/registry-client.js';
import { agentClientFor, type AgentFlags } from '../targets/agent.js';
import { registryClientFor, type RegistryFlags } from '../targets/registry.js';
import { agentFlags, registryFlags } from './flags.js';
import { printJson, printLines } from './output.js';

/** Runs `call` with a registry client made from --registry/--token/--ca-file (or the saved settings), then closes it. */
export async function withRegistry<T>(flags: RegistryFlags, call: (client: RegistryClient) => Promise<T>): Promise<T> {
  const client = await registryClientFor(registryFlags(flags));
  try {
    return await call(client);
  } finally {
    client.close();
  }
}

/** Runs `call` with a client of this host's agent (--socket, --data-dir), then closes it. */
export async function withAgent<T>(flags: AgentFlags, call: (client: AgentClient) => Promise<T>): Promise<T> {
  const client = await agentClientFor(agentFlags(flags));
  try {
    return await call(client);
  } finally {
    client.close();
  }
}

/**
 * --json prints `data` itself: always an object at the top level (so a field can be added later
 * without breaking a script), with the API's field names. Otherwise the lines `text` makes of it.
 */
export function emit<T extends object>(
  opts: { json?: boolean | undefined },
  data: T extends readonly unknown[] ? never : T,
  text: (data: T) => string[],
): void {
  if (opts.json) printJson(data);
  else printLines(text(data));
}
