/**
 * Translation between the store's string keys and etcd's bytes. Every key lives under one
 * namespace prefix (default `/meshctl/`), so a mesh can share an etcd cluster with other users
 * and `range('')` means "all of this mesh", never all of etcd.
 */
import type { IKeyValue } from 'etcd3';
import type { KeyValue } from './types.js';

export const DEFAULT_ETCD_PREFIX = '/meshctl/';

export class EtcdCodec {
  readonly #ns: Buffer;
  readonly #nsEnd: Buffer;

  constructor(prefix: string) {
    this.#ns = Buffer.from(prefix, 'utf8');
    this.#nsEnd = bytePrefixEnd(this.#ns);
  }

  key(key: string): Buffer {
    return Buffer.concat([this.#ns, Buffer.from(key, 'utf8')]);
  }

  /** [start, end) of every key that starts with `prefix` inside the namespace. */
  range(prefix: string): { key: Buffer; range_end: Buffer } {
    if (prefix === '') return { key: this.#ns, range_end: this.#nsEnd };
    const start = this.key(prefix);
    return { key: start, range_end: bytePrefixEnd(start) };
  }

  /** A key under the namespace that the store itself never hands out (its first byte is NUL). */
  probeKey(): Buffer {
    return this.key('\u0000meshctl-probe');
  }

  strip(raw: Buffer): string {
    return raw.subarray(this.#ns.length).toString('utf8');
  }

  kv(raw: IKeyValue): KeyValue {
    return {
      key: this.strip(raw.key),
      value: raw.value ? raw.value.toString('utf8') : '',
      createRevision: Number(raw.create_revision),
      modRevision: Number(raw.mod_revision),
      version: Number(raw.version),
      lease: Number(raw.lease),
    };
  }
}

/**
 * The smallest byte string greater than every string starting with `prefix`: the last byte
 * below 0xff is bumped and what follows dropped. An all-0xff prefix has no end; etcd spells
 * "no upper bound" as a single NUL byte.
 */
export function bytePrefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const b = end[i] ?? 0xff;
    if (b < 0xff) {
      end[i] = b + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
