/**
 * Plain counters. Cheap on the data path: a counter is a number field, a connection is
 * added to a set once and removed on close, and bytes are read from the sockets only when
 * stats are asked for (so nothing runs per chunk). Per-scope request figures and latency
 * histograms are built from these in traffic.ts.
 */
import type { Socket } from 'node:net';
import { OTHER_REASON } from '../errors/reasons.js';

/** Where reasons beyond a counter's limit are counted (also unknown reasons from a peer). */
export { OTHER_REASON };

/**
 * Counts by free-form reason (refusals, errors). Reasons are bounded: a few kinds × services;
 * `maxReasons` makes sure of it where the figures leave the process (the registry takes at
 * most 64 per map): past it, new reasons count as `other`.
 */
export class ReasonCounter {
  readonly #counts = new Map<string, number>();
  readonly #max: number;

  constructor(maxReasons = Infinity) {
    this.#max = maxReasons;
  }

  add(reason: string): void {
    const n = this.#counts.get(reason);
    if (n !== undefined) this.#counts.set(reason, n + 1);
    else if (this.#counts.size < this.#max - 1) this.#counts.set(reason, 1);
    else this.#counts.set(OTHER_REASON, (this.#counts.get(OTHER_REASON) ?? 0) + 1);
  }

  get(reason: string): number {
    return this.#counts.get(reason) ?? 0;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}

export interface ConnectionsJson {
  active: number;
  total: number;
}

export interface BytesJson {
  /** Received by the proxy on these connections. */
  in: number;
  /** Sent by the proxy on these connections. */
  out: number;
}

/**
 * Connections on one side of a listener or towards one endpoint. Bytes are the sockets' own
 * counters: for TLS sockets Node counts the TLS records, for plain ones the payload.
 */
export class ConnectionCounter {
  total = 0;
  readonly open = new Set<Socket>();
  #closedIn = 0;
  #closedOut = 0;

  get active(): number {
    return this.open.size;
  }

  track(socket: Socket): void {
    // A shared pool's holder may be handed a socket it already counts (./outbound/http/shared-pools.ts).
    if (this.open.has(socket)) return;
    this.total += 1;
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.#closedIn += socket.bytesRead;
      this.#closedOut += socket.bytesWritten;
    });
  }

  connections(): ConnectionsJson {
    return { active: this.open.size, total: this.total };
  }

  bytes(): BytesJson {
    let inb = this.#closedIn;
    let outb = this.#closedOut;
    for (const s of this.open) {
      inb += s.bytesRead;
      outb += s.bytesWritten;
    }
    return { in: inb, out: outb };
  }
}

export type ResponseClassJson = Partial<Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>>;

/** Requests and responses by status class (1xx..5xx). */
export class HttpCounter {
  requests = 0;
  /** Index = status / 100; 0 unused. */
  readonly #classes = [0, 0, 0, 0, 0, 0];

  response(status: number): void {
    const c = (status / 100) | 0;
    if (c >= 1 && c <= 5) this.#classes[c]! += 1;
  }

  responses(): ResponseClassJson {
    const out: ResponseClassJson = {};
    for (let c = 1; c <= 5; c++) {
      const n = this.#classes[c]!;
      if (n > 0) out[`${c}xx` as keyof ResponseClassJson] = n;
    }
    return out;
  }
}
