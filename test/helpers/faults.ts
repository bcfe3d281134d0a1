/**
 * A small fault-injecting TCP proxy for tests (our kernels have no `netem`): it forwards
 * loopback connections to a target, delaying every chunk in both directions and refusing a
 * share of new connections. Bounded: it only ever dials the one target it was given.
 */
import net from 'node:net';

export interface FaultProxy {
  port: number;
  setDelay(ms: number): void;
  setRefuseRate(rate: number): void;
  /** Resets every connection open now (new ones still follow the refuse rate). */
  cut(): void;
  /** Connections accepted / refused so far. */
  counts(): { accepted: number; refused: number };
  close(): Promise<void>;
}

export async function startFaultProxy(
  target: { host: string; port: number },
  opts: { delayMs?: number; refuseRate?: number; random?: () => number } = {},
): Promise<FaultProxy> {
  let delayMs = opts.delayMs ?? 0;
  let refuseRate = opts.refuseRate ?? 0;
  const random = opts.random ?? Math.random;
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let refused = 0;

  const delayed = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (delayMs <= 0) to.write(chunk);
      else setTimeout(() => to.destroyed || to.write(chunk), delayMs);
    });
    from.on('end', () => setTimeout(() => to.end(), delayMs));
  };

  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (random() < refuseRate) {
      refused += 1;
      client.resetAndDestroy();
      return;
    }
    accepted += 1;
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    delayed(client, upstream);
    delayed(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    setDelay: (ms) => (delayMs = ms),
    setRefuseRate: (r) => (refuseRate = r),
    counts: () => ({ accepted, refused }),
    cut: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
