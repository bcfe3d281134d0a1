/**
 * Abusive clients for a listener: a head far over any limit in one go, and a head dripped one
 * byte a second. Each resolves to how the listener answered (status line or close) and when.
 */
import net from 'node:net';
import tls from 'node:tls';

export type Dial = () => net.Socket;

export interface Outcome {
  /** First line the server sent, '' when it closed without a word. */
  answer: string;
  /** ms from the first byte sent to the answer or close. */
  afterMs: number;
  /** The server had not answered or closed by the end (the client gave up). */
  held: boolean;
}

function watch(s: net.Socket, giveUpMs: number, start: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let t0 = Date.now();
    let buf = '';
    let done = false;
    const finish = (held: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ answer: buf.split('\r\n')[0] ?? '', afterMs: Date.now() - t0, held });
    };
    const timer = setTimeout(() => finish(true), giveUpMs);
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) finish(false);
    });
    s.on('close', () => finish(false));
    s.on('error', () => finish(false));
    const go = () => {
      t0 = Date.now();
      start();
    };
    if (s instanceof tls.TLSSocket) s.once('secureConnect', go);
    else if (s.connecting) s.once('connect', go);
    else go();
  });
}

/** A 100 KB header block at once. */
export function oversizedHead(dial: Dial, giveUpMs = 15_000): Promise<Outcome> {
  const s = dial();
  return watch(s, giveUpMs, () => {
    s.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
  });
}

/** One header byte a second, never finishing, for up to `giveUpMs`. */
export function slowHead(dial: Dial, giveUpMs = 40_000): Promise<Outcome> {
  const s = dial();
  let timer: NodeJS.Timeout | undefined;
  const p = watch(s, giveUpMs, () => {
    s.write('GET / HTTP/1.1\r\nHost: x\r\n');
    timer = setInterval(() => {
      if (!s.destroyed) s.write('X');
    }, 1000);
  });
  return p.finally(() => clearInterval(timer));
}

/** A TCP connection that never starts its TLS handshake (for TLS listeners). */
export function silentConnection(connect: () => net.Socket, giveUpMs = 40_000): Promise<Outcome> {
  const s = connect();
  return watch(s, giveUpMs, () => undefined);
}
