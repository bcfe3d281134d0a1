/** Preparing the app's request for the mesh hop: headers the forwarder and the upgrade tunnel both set. */
import type { IncomingMessage } from 'node:http';
import { ensureTraceparent } from '../../trace.js';

/** x-forwarded-for/-proto/-host, set once per request (not once per attempt). */
export function setForwarded(req: IncomingMessage, proto: string): void {
  const h = req.headers;
  const remote = req.socket.remoteAddress ?? '';
  const prior = h['x-forwarded-for'];
  h['x-forwarded-for'] = prior ? `${prior}, ${remote}` : remote;
  if (h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = proto;
  if (h['x-forwarded-host'] === undefined && h.host !== undefined) h['x-forwarded-host'] = h.host;
}

/**
 * With access logs on: the caller's valid traceparent goes on unchanged, otherwise a new one
 * replaces it. Returns the traceparent the request carries on.
 */
export function trace(req: IncomingMessage): string {
  const given = req.headers.traceparent;
  const tp = ensureTraceparent(given);
  if (tp !== given) {
    req.headers.traceparent = tp;
    // tracestate belongs to the trace it came with (W3C §3.3).
    if (req.headers.tracestate !== undefined) delete req.headers.tracestate;
  }
  return tp;
}
