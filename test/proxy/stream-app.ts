/**
 * An app for the large-body cases: PUT /sink counts the body and answers the count; GET
 * /source?mb=N streams N MiB in 64 KiB chunks with backpressure; any other request goes to
 * `other`. Listens on 127.0.0.1 and is closed after the test (harness defer).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defer } from './harness.js';

const MB = 1024 * 1024;

export async function startStreamApp(
  other: (req: IncomingMessage, res: ServerResponse, url: URL) => void,
): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/sink') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    if (url.pathname === '/source') {
      const total = Number(url.searchParams.get('mb')) * MB;
      res.writeHead(200, { 'content-length': total });
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    other(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}
