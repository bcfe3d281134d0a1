import { describe, expect, it } from 'vitest';
import { MemoryStore, openStore } from '../../src/store/index.js';
import { describeStoreConformance } from './conformance.js';

describeStoreConformance('memory', async (opts) => new MemoryStore(opts));

describe('memory store', () => {
  it('is what openStore gives for kind memory', async () => {
    const s = await openStore({ kind: 'memory' });
    expect(s.kind).toBe('memory');
    expect(s).toBeInstanceOf(MemoryStore);
    await s.close();
  });

  it('refuses a history limit below 1', () => {
    expect(() => new MemoryStore({ historyLimit: 0 })).toThrow(
      expect.objectContaining({ code: 'MESH_ERR_INVALID_ARGUMENT' }),
    );
  });
});
