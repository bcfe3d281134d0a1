/**
 * Reads V8 heap snapshots (`node bench/control-plane.mjs --heap-snapshots DIR` writes them)
 * and prints the objects by constructor: count and self size. Given two, the difference
 * (second minus first), to see what holding N queries, or N connections, costs per object.
 *
 *   node bench/heap-summary.mjs A.heapsnapshot [B.heapsnapshot] [--top 30] [--per N]
 *
 * --per N divides the differences by N (e.g. the watchers held) to read bytes per watcher.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Objects of one snapshot by "type name" (e.g. "object TLSSocket", "closure onClose"). */
export function byConstructor(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const nodes = snap.nodes;
  const strings = snap.strings;
  /** @type {Map<string, { count: number, bytes: number }>} */
  const out = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    // Strings and code are grouped by their type, the rest by constructor or function name.
    const named = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden';
    const key = named ? `${type} ${strings[nodes[i + iName]]}` : type;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count += 1;
    e.bytes += nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' }, per: { type: 'string' } },
  });
  const top = Number(values.top);
  const [a, b] = positionals.map(byConstructor);
  if (!a) {
    console.error('usage: node bench/heap-summary.mjs A.heapsnapshot [B.heapsnapshot] [--top 30] [--per N]');
    process.exit(2);
  }
  const total = (m) => [...m.values()].reduce((s, e) => s + e.bytes, 0);
  if (!b) {
    console.log(`${positionals[0]}: ${(total(a) / 1048576).toFixed(1)} MB`);
    for (const [k, e] of [...a].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, top)) {
      console.log(`${(e.bytes / 1048576).toFixed(2).padStart(8)} MB ${String(e.count).padStart(8)}  ${k}`);
    }
  } else {
    const per = values.per === undefined ? 1 : Number(values.per);
    const unit = per === 1 ? 'bytes' : `bytes per ${per}`;
    console.log(
      `${positionals[1]} − ${positionals[0]}: ${((total(b) - total(a)) / 1048576).toFixed(1)} MB (${(total(a) / 1048576).toFixed(1)} → ${(total(b) / 1048576).toFixed(1)})`,
    );
    const keys = new Set([...a.keys(), ...b.keys()]);
    const diff = [...keys].map((k) => {
      const x = a.get(k) ?? { count: 0, bytes: 0 };
      const y = b.get(k) ?? { count: 0, bytes: 0 };
      return { k, bytes: y.bytes - x.bytes, count: y.count - x.count };
    });
    console.log(`${unit.padStart(14)} ${'count'.padStart(9)}`);
    for (const d of diff.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes)).slice(0, top)) {
      console.log(`${(d.bytes / per).toFixed(1).padStart(14)} ${(d.count / per).toFixed(2).padStart(9)}  ${d.k}`);
    }
  }
}
