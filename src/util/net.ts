import net, { type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';

/** This host's first non-loopback IPv4 address, the usual address to advertise; loopback if none. */
export function primaryAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

/** Whether a TCP listener could bind `address:port` right now. */
export function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** `preferred` when it is free on `address`, otherwise a port the kernel picks. */
export async function freePort(address: string, preferred: number): Promise<number> {
  if (await canBind(address, preferred)) return preferred;
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: address, port: 0, exclusive: true }, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
