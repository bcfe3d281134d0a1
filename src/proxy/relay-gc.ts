/**
 * Bounds the memory a proxy holds in read buffers it is done with (issue 13 §1: a 50 MB body
 * through the pair with each sidecar growing < 20 MB). Every chunk a proxy relays was read
 * into a buffer of its own (a socket read, a TLS record, the HTTP parser's copy of a body
 * chunk), dead a moment later, but freed only when V8 next collects the young generation. A
 * relay allocates almost no JavaScript objects per byte, so that collection comes late: V8
 * forces one only once the young generation's dead buffers reach 32 MB (2 × its default
 * semi-space), and each sidecar's RSS grew by 27–36 MB over a 50 MB upload and download
 * (docs/BENCHMARKS.md "Large bodies"). So the relay counts the bytes it passes on, and after
 * every RELAY_GC_BYTES asks V8 for a young-generation collection (a scavenge: its cost is the
 * live young objects, a fraction of a millisecond here, and the dead buffers cost nothing).
 * Requests with small bodies pass far fewer bytes than they allocate objects, so V8's own
 * collections come long before the count, and this adds at most one collection per
 * RELAY_GC_BYTES relayed.
 *
 * A scavenge frees only the buffers that died young. One still queued when two scavenges come
 * (a slow peer, a starved process draining big batches) is promoted to old space, and its
 * backing store then waits for a full collection, which a relay's few objects may not bring for
 * a long time: one clean-clone run saw the web sidecar grow 42.8 MB over the same bodies that
 * usually grow it 3-6 MB. So after each scavenge the relay reads what array buffers still hold;
 * once that is RELAY_MAJOR_GC_BYTES above the level of the last check point (the lowest seen
 * since the last full collection), it asks for a full collection too, at most once per
 * RELAY_MAJOR_GC_EVERY scavenges (a full collection of a sidecar's ~15 MB heap costs a few ms).
 *
 * Only `meshctl proxy run` turns it on (enableRelayGc, from process-flags.ts); in a process
 * that did not, counting is all it does.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Relayed bytes between two collections the proxy asks for. */
export const RELAY_GC_BYTES = 8 * 1024 * 1024;

/** Array-buffer bytes above the floor, left after a scavenge, that make the relay ask for a full collection. */
export const RELAY_MAJOR_GC_BYTES = 16 * 1024 * 1024;

/** Scavenges asked for between two full collections asked for, at least (relayed bytes: × RELAY_GC_BYTES). */
export const RELAY_MAJOR_GC_EVERY = 4;

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let gc: GcFunction | undefined;
let pending = 0;
/** Array buffers held after the lowest scavenge since the last full collection asked for (the live level). */
let floor = Infinity;
let scavengesSinceMajor = RELAY_MAJOR_GC_EVERY;

/** `n` bytes were read and passed on (a body chunk, a piped chunk). */
export function relayed(n: number): void {
  pending += n;
  if (pending < RELAY_GC_BYTES || gc === undefined) return;
  pending = 0;
  gc({ type: 'minor' });
  scavengesSinceMajor++;
  // What the scavenge could not free is live or in old space; ~9 µs a read, once per 8 MB.
  const held = process.memoryUsage().arrayBuffers;
  if (held - floor > RELAY_MAJOR_GC_BYTES && scavengesSinceMajor >= RELAY_MAJOR_GC_EVERY) {
    // No options: a full collection on every Node (Node 20's gc runs a scavenge for `type: 'major'`). Its
    // backing stores are freed by a background thread, so the floor is read from the next scavenge.
    gc();
    scavengesSinceMajor = 0;
    floor = Infinity;
  } else floor = Math.min(floor, held);
}

/**
 * A full collection now, when enableRelayGc has made V8's gc available (false, and nothing done,
 * otherwise): for ./idle-gc.ts.
 */
export function fullCollection(): boolean {
  if (gc === undefined) return false;
  gc();
  return true;
}

/** A 'data' listener that counts the chunk: for sockets and messages whose flow is piped. */
export function countChunk(chunk: Buffer): void {
  relayed(chunk.length);
}

/**
 * Turns the collections on for this process. V8 exposes its `gc` function only to contexts
 * made while `--expose-gc` is set: one is made for it (as jest's leak detection does), and the
 * flag is cleared again so no other context gets it. False, and the proxy serves as before
 * (only with the larger growth), if a Node ever refuses: memory is no reason not to start.
 */
export function enableRelayGc(): boolean {
  const own = (globalThis as { gc?: GcFunction }).gc;
  if (own !== undefined) {
    gc = own;
    return true;
  }
  try {
    setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    if (typeof f === 'function') gc = f as GcFunction;
  } catch {
    // Left off: relayed() only counts.
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return gc !== undefined;
}
