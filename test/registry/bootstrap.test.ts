import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initServer } from '../../src/registry/bootstrap.js';
import { loadRegistryConfig } from '../../src/registry/config.js';

describe('initServer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-bootstrap-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses lifetimes the registry could not start with, writing nothing', async () => {
    for (const [i, opts] of [{ leafTtlSeconds: 60 }, { leaseTtlSeconds: 1 }, { leaseTtlSeconds: 7200 }].entries()) {
      const dataDir = join(dir, `bad-${i}`);
      await expect(initServer({ dataDir, bind: '127.0.0.1:0', advertise: '127.0.0.1', ...opts })).rejects.toMatchObject(
        { code: 'MESH_ERR_INVALID_ARGUMENT' },
      );
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it('writes the lifetimes it was given, and the registry reads them back', async () => {
    const dataDir = join(dir, 'good');
    const res = await initServer({
      dataDir,
      bind: '127.0.0.1:0',
      advertise: '127.0.0.1',
      leaseTtlSeconds: 7,
      leafTtlSeconds: 600,
    });
    expect(res).toMatchObject({ leaseTtlSeconds: 7, leafTtlSeconds: 600 });
    expect((await loadRegistryConfig(dataDir)).config).toMatchObject({ leaseTtlSeconds: 7, leafTtlSeconds: 600 });
  });
});
