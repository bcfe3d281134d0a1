/** Mesh (inbound) ports for local services: taken from a fixed range, like Consul's sidecar ports. */
import { canBind } from '../../util/net.js';

export const MESH_PORT_RANGE = { from: 21000, to: 21999 } as const;

/** The lowest port in the range that no local service claims and that can be bound on `address`. */
export async function allocateMeshPort(address: string, taken: ReadonlySet<number>): Promise<number | undefined> {
  for (let port = MESH_PORT_RANGE.from; port <= MESH_PORT_RANGE.to; port++) {
    if (taken.has(port)) continue;
    if (await canBind(address, port)) return port;
  }
  return undefined;
}
