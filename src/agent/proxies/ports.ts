/** Mesh (inbound) ports for local services: taken from a fixed range, like Consul's sidecar ports. */
import net from 'node:net';

export const MESH_PORT_RANGE = { from: 21000, to: 21999 } as const;

/** The lowest port in the range that no local service claims and that can be bound on `address`. */
export async function allocateMeshPort(address: string, taken: ReadonlySet<number>): Promise<number | undefined> {
  for (let port = MESH_PORT_RANGE.from; port <= MESH_PORT_RANGE.to; port++) {
    if (taken.has(port)) continue;
    if (await canBind(address, port)) return port;
  }
  return undefined;
}

function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}
