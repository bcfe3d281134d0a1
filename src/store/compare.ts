/** Evaluates a txn's compares the way etcd does, so code above the store sees one behaviour. */
import { MeshError } from '../errors/index.js';
import { checkKey } from './keys.js';
import type { Compare, KeyValue } from './types.js';

/**
 * One compare against the key's current state (undefined = missing). A missing key counts
 * as version/createRevision/modRevision 0; a value compare on a missing key is false
 * whatever the operator, as in etcd (use `exists` to test for absence).
 */
export function evaluateCompare(cmp: Compare, kv: KeyValue | undefined): boolean {
  switch (cmp.target) {
    case 'exists':
      return (kv !== undefined) === cmp.value;
    case 'value':
      if (kv === undefined) return false;
      return cmp.op === '=' ? kv.value === cmp.value : kv.value !== cmp.value;
    case 'version':
    case 'createRevision':
    case 'modRevision': {
      const actual = kv === undefined ? 0 : kv[cmp.target];
      switch (cmp.op) {
        case '=':
          return actual === cmp.value;
        case '!=':
          return actual !== cmp.value;
        case '<':
          return actual < cmp.value;
        case '>':
          return actual > cmp.value;
      }
    }
  }
  // Only reachable with input that bypassed the types (e.g. an unchecked API body).
  throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid store compare: ${JSON.stringify(cmp)}`);
}

/** Checks a compare's shape before anything is evaluated, so a bad one fails the whole txn. */
export function checkCompare(cmp: Compare): void {
  checkKey(cmp?.key, 'compare key');
  const bad = (): never => {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid store compare on ${JSON.stringify(cmp.key)}`);
  };
  switch (cmp.target) {
    case 'exists':
      if (typeof cmp.value !== 'boolean') bad();
      return;
    case 'value':
      if (typeof cmp.value !== 'string' || (cmp.op !== '=' && cmp.op !== '!=')) bad();
      return;
    case 'version':
    case 'createRevision':
    case 'modRevision':
      if (!Number.isSafeInteger(cmp.value) || !['=', '!=', '<', '>'].includes(cmp.op)) bad();
      return;
    default:
      bad();
  }
}
