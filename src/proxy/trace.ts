/**
 * W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header):
 * `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lower-case, neither id all zeros.
 * A proxy with access logs on passes a valid header on unchanged and starts one (sampled)
 * when there is none or it is malformed, so every hop of one request logs the same trace id.
 */
import { randomFillSync } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export function isValidTraceparent(v: unknown): v is string {
  if (typeof v !== 'string' || v.length !== 55) return false;
  const m = TRACEPARENT.exec(v);
  return m !== null && m[1] !== ZERO_TRACE && m[2] !== ZERO_SPAN;
}

/** Random ids come from one buffer refilled in bulk: one crypto call per 170 new traces. */
const POOL = Buffer.alloc(24 * 170);
let poolAt = POOL.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const hex = POOL.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}

/** A new sampled traceparent with random ids (never all zeros). */
export function newTraceparent(): string {
  let trace = randomHex(16);
  while (trace === ZERO_TRACE) trace = randomHex(16);
  let span = randomHex(8);
  while (span === ZERO_SPAN) span = randomHex(8);
  return `00-${trace}-${span}-01`;
}

/** The header to forward: the caller's when valid, otherwise a new one. */
export function ensureTraceparent(v: string | string[] | undefined): string {
  return isValidTraceparent(v) ? v : newTraceparent();
}
