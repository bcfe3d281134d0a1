import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/util/table.js';

describe('formatTable', () => {
  it('pads every column but the last to its widest cell, two spaces apart', () => {
    expect(
      formatTable(
        ['NAME', 'PORT', 'TAGS'],
        [
          ['api', '9000', 'v1,canary'],
          ['web-frontend', '80', ''],
        ],
      ),
    ).toEqual(['NAME          PORT  TAGS', 'api           9000  v1,canary', 'web-frontend  80']);
  });

  it('prints the headers alone when there are no rows', () => {
    expect(formatTable(['A', 'B'], [])).toEqual(['A  B']);
  });
});
