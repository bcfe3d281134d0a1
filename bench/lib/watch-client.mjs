/**
 * The HTTP/1.1 client of the control-plane bench's simulated agents: one keep-alive TLS
 * connection per watcher, one GET at a time, answers read by content-length.
 *
 * Why not the agent's own client (src/api/http-client.ts, Node's https agent): in a real mesh
 * each agent runs on its own host, while here 5,000 of them share the registries' two cores.
 * With Node's client the watcher processes spent 2–3× the registries' CPU on one change (the
 * https agent's socket pool bookkeeping, stream events, per-request timers), so the bench timed
 * its own clients as much as the registries; this one takes about half of that. This client does only what an agent's watch must:
 * a TLS 1.3 connection with its node certificate that verifies the registry's certificate
 * against the mesh CA (and resumes its identity's TLS session, as src/api/resuming-agent.ts
 * does), the request with `index`, the whole answer read, its status checked and its JSON body
 * parsed. What it leaves out is only what a blocking query does not need: chunked bodies,
 * pipelining, redirects, request bodies. An answer it cannot read that way is an error, not a
 * guess.
 */
import tls from 'node:tls';

const CRLF2 = Buffer.from('\r\n\r\n');
/** An answer's head larger than this is not a registry's: cut, not buffered without end. */
const MAX_HEAD = 16 * 1024;
/** The largest body read (the registry's answers to a watch are a few kB). */
const MAX_BODY = 8 * 1024 * 1024;

/** The TLS session of one identity, shared by its connections (as SharedTlsSession). */
export class SessionBox {
  /** @type {Buffer | undefined} */
  session = undefined;
}

/**
 * @typedef {{ status: number, index: number | undefined, body: any }} WatchAnswer
 */

export class WatchConnection {
  /** @type {tls.TLSSocket | undefined} */
  #socket = undefined;
  /** @type {{ resolve: (a: WatchAnswer) => void, reject: (e: Error) => void } | undefined} */
  #pending = undefined;
  /** @type {Buffer | undefined} bytes of the answer so far, until its head is complete */
  #head = undefined;
  /** @type {{ status: number, index: number | undefined, length: number, close: boolean } | undefined} */
  #meta = undefined;
  /** @type {Buffer[]} */
  #body = [];
  #bodyBytes = 0;

  /**
   * @param {{ host: string, port: number, secureContext: tls.SecureContext, session?: SessionBox, idleTimeoutMs?: number }} o
   * secureContext: the mesh CA to verify the registry with and the node certificate and key
   * (tls.createSecureContext once per identity, not per connection: PEM parsing is not a watch's work);
   * idleTimeoutMs: a connection silent this long is cut (a held query included: give it `wait` plus a margin).
   */
  constructor(o) {
    this.o = o;
    this.hostHeader = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
    this.session = o.session ?? new SessionBox();
    /** New connections made (a reused one counts once), and how many resumed a TLS session: for tests. */
    this.connects = 0;
    this.resumed = 0;
  }

  /**
   * GET `path` (with its query) and resolve with the status, the `x-mesh-index` header and the
   * parsed JSON body once the whole answer is read; reject on a status >= 400 (with the
   * registry's message), a broken connection, or an answer this client cannot read.
   * @param {string} path
   * @returns {Promise<WatchAnswer>}
   */
  get(path) {
    if (this.#pending) return Promise.reject(new Error('watch client: one request at a time per connection'));
    const socket = this.#socket ?? this.#connect();
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#head = undefined;
      this.#meta = undefined;
      this.#body = [];
      this.#bodyBytes = 0;
      socket.write(`GET ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\naccept: application/json\r\n\r\n`);
    });
  }

  close() {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #connect() {
    this.connects += 1;
    const o = this.o;
    const session = this.session.session;
    const socket = tls.connect({
      host: o.host,
      port: o.port,
      secureContext: o.secureContext,
      minVersion: 'TLSv1.3',
      ...(session ? { session } : {}),
    });
    socket.once('secureConnect', () => {
      if (socket.isSessionReused()) this.resumed += 1;
    });
    socket.on('session', (s) => {
      this.session.session = s;
    });
    socket.setTimeout(o.idleTimeoutMs ?? 75_000);
    socket.on('timeout', () => this.#fail(socket, new Error(`no answer from ${this.hostHeader} in time (timeout)`)));
    socket.on('data', (chunk) => this.#onData(socket, chunk));
    socket.on('error', (e) => this.#fail(socket, e));
    socket.on('close', () => this.#fail(socket, new Error(`connection to ${this.hostHeader} closed mid-answer`)));
    this.#socket = socket;
    return socket;
  }

  /** The connection is done for: the request in flight (if any) fails, the next one reconnects. */
  #fail(socket, err) {
    socket.destroy();
    // A request in flight is always on the current connection; an old one's late 'close' is no news.
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(err);
  }

  #onData(socket, chunk) {
    if (!this.#pending) {
      this.#fail(socket, new Error(`${this.hostHeader} sent bytes with no request in flight`));
      return;
    }
    if (!this.#meta) {
      const buf = this.#head ? Buffer.concat([this.#head, chunk]) : chunk;
      const end = buf.indexOf(CRLF2);
      if (end < 0) {
        if (buf.length > MAX_HEAD)
          this.#fail(socket, new Error(`${this.hostHeader}: answer head over ${MAX_HEAD} bytes`));
        else this.#head = buf;
        return;
      }
      this.#head = undefined;
      const meta = parseHead(buf.toString('latin1', 0, end));
      if (meta instanceof Error) {
        this.#fail(socket, meta);
        return;
      }
      this.#meta = meta;
      chunk = buf.subarray(end + 4);
    }
    const meta = this.#meta;
    if (chunk.length > 0) {
      this.#body.push(chunk);
      this.#bodyBytes += chunk.length;
    }
    if (this.#bodyBytes < meta.length) return;
    if (this.#bodyBytes > meta.length) {
      this.#fail(socket, new Error(`${this.hostHeader} sent more than content-length (${meta.length}) bytes`));
      return;
    }
    const bytes = this.#body.length === 1 ? this.#body[0] : Buffer.concat(this.#body, this.#bodyBytes);
    this.#body = [];
    const p = this.#pending;
    this.#pending = undefined;
    this.#meta = undefined;
    if (meta.close) {
      this.#socket = undefined;
      socket.destroy();
    }
    let body;
    try {
      body = bytes.length > 0 ? JSON.parse(bytes.toString('utf8')) : undefined;
    } catch {
      p.reject(new Error(`${this.hostHeader} answered ${meta.status} with a body that is not JSON`));
      return;
    }
    if (meta.status >= 400) {
      p.reject(new Error(`${this.hostHeader} answered ${meta.status}: ${body?.message ?? 'no message'}`));
      return;
    }
    p.resolve({ status: meta.status, index: meta.index, body });
  }
}

/**
 * The status line and the headers a watch needs from an answer's head (latin1, without the
 * blank line), or an Error saying why it cannot be read by content-length.
 * @param {string} head
 */
export function parseHead(head) {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!m) return new Error(`not an HTTP/1.x answer: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  let length;
  let index;
  let close = lines[0].startsWith('HTTP/1.0');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) return new Error(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value) || length !== undefined) return new Error(`bad content-length ${JSON.stringify(value)}`);
      length = Number(value);
    } else if (name === 'x-mesh-index') {
      index = /^\d+$/.test(value) ? Number(value) : undefined;
    } else if (name === 'transfer-encoding') {
      return new Error(`the watch client reads answers by content-length only (got transfer-encoding: ${value})`);
    } else if (name === 'connection') {
      close = value
        .toLowerCase()
        .split(',')
        .some((t) => t.trim() === 'close');
    }
  }
  if (length === undefined) return new Error('the answer has no content-length');
  if (length > MAX_BODY) return new Error(`content-length ${length} over the ${MAX_BODY}-byte bound`);
  return { status: Number(m[1]), index, length, close };
}
