/**
 * The client loads undici's Pool module by its path inside the package (client.ts says why: the
 * index costs ≈ 9.5 MB of RSS per proxy). That path is undici's layout, not its API: this pins
 * that it still holds the very class the package exports, so an upgrade that moves it fails here.
 */
import { createRequire } from 'node:module';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';

describe("undici's Pool module", () => {
  it('is the Pool the package exports', () => {
    const deep: unknown = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js');
    expect(deep).toBe(Pool);
  });
});
