import { networkInterfaces } from 'node:os';

/** This host's first non-loopback IPv4 address, the usual address to advertise; loopback if none. */
export function primaryAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}
