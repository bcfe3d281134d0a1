/**
 * Request and response header changes of traffic policy (a route's or a split target's
 * `request_headers` / `response_headers`: add, set, remove), compiled once per snapshot into one
 * function that edits a header object in place. Order: remove, then set, then add, so a file
 * that removes and sets one header ends with the set value (Envoy's order for the same fields).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { SnapshotHeaderMods } from '../../snapshot.js';

type Headers = IncomingHttpHeaders | OutgoingHttpHeaders;
export type HeaderEdit = (h: Headers) => void;

/** undefined when there is nothing to change (the common case costs no call). */
export function compileHeaderMods(m: SnapshotHeaderMods | undefined): HeaderEdit | undefined {
  if (m === undefined) return undefined;
  const remove = m.remove ?? [];
  const set = Object.entries(m.set ?? {});
  const add = Object.entries(m.add ?? {});
  if (remove.length === 0 && set.length === 0 && add.length === 0) return undefined;
  return (h) => {
    for (const name of remove) delete h[name];
    for (const [name, value] of set) h[name] = value;
    for (const [name, value] of add) {
      const prev = h[name];
      // `add` appends a value: a second header line for the names that may repeat, a list otherwise.
      if (prev === undefined) h[name] = value;
      else if (Array.isArray(prev)) h[name] = [...prev, value];
      else h[name] = [String(prev), value];
    }
  };
}
