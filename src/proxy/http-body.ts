import type { IncomingMessage } from 'node:http';

/** Whether a request carries a body (decides replay on failover and body accounting). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
