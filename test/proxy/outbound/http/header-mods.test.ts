import { describe, expect, it } from 'vitest';
import { compileHeaderMods } from '../../../../src/proxy/outbound/http/header-mods.js';

describe('header changes (request_headers / response_headers)', () => {
  it('removes, then sets, then adds', () => {
    const edit = compileHeaderMods({
      remove: ['x-secret', 'x-set'],
      set: { 'x-set': 'new', 'x-version': 'v2' },
      add: { 'x-trace': 'mesh', 'x-new': '1' },
    })!;
    const h: Record<string, string | string[]> = { 'x-secret': 's', 'x-set': 'old', 'x-trace': 'app', keep: 'k' };
    edit(h);
    expect(h).toEqual({ keep: 'k', 'x-set': 'new', 'x-version': 'v2', 'x-trace': ['app', 'mesh'], 'x-new': '1' });
  });

  it('nothing to change is no function at all', () => {
    expect(compileHeaderMods(undefined)).toBeUndefined();
    expect(compileHeaderMods({})).toBeUndefined();
    expect(compileHeaderMods({ remove: [] })).toBeUndefined();
  });
});
