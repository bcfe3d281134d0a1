import { describe, expect, it } from 'vitest';
import {
  cell,
  firstLine,
  formatAgo,
  formatCount,
  formatExpiry,
  formatMs,
  formatRate,
  formatReasons,
  formatRps,
  formatSpan,
  truncate,
} from '../../src/ui/format.js';
import { columnWidths, fitBlocks, listWindow, shareRows } from '../../src/ui/layout.js';

describe('format', () => {
  it('truncates with an ellipsis and pads cells', () => {
    expect(truncate('checkout-service', 8)).toBe('checkou…');
    expect(truncate('api', 8)).toBe('api');
    expect(truncate('api', 0)).toBe('');
    expect(cell('12', 5, 'right')).toBe('   12');
    expect(cell('web', 5)).toBe('web  ');
  });

  it('keeps one line of check output without control characters', () => {
    expect(firstLine('\n  HTTP 503\u001B[2J bad\nmore')).toBe('HTTP 503 [2J bad');
    expect(firstLine('')).toBe('');
  });

  it('formats figures compactly, with a dash for none', () => {
    expect([
      formatRps(0),
      formatRps(0.25),
      formatRps(12.4),
      formatRps(999.6),
      formatRps(1234),
      formatRps(null),
    ]).toEqual(['0', '0.3', '12', '1000', '1.2k', '—']);
    // Floored, as the success rate: 9,999 is never shown as 10.0k nor 12,399 as 12.4k.
    expect([0, 880, 9999, 12_399, 999_999, 4_560_000, null].map(formatCount)).toEqual([
      '0',
      '880',
      '9999',
      '12.3k',
      '999.9k',
      '4.5M',
      '—',
    ]);
    expect([formatRate(1), formatRate(0.99999), formatRate(0.9), formatRate(0), formatRate(null)]).toEqual([
      '100%',
      '99.9%',
      '90.0%',
      '0.0%',
      '—',
    ]);
    expect([formatMs(0.42), formatMs(1.25), formatMs(45.2), formatMs(1500), formatMs(null)]).toEqual([
      '0.42ms',
      '1.3ms',
      '45ms',
      '1.50s',
      '—',
    ]);
    expect([
      formatSpan(4_000),
      formatSpan(200_000),
      formatSpan(5 * 3600_000 + 120_000),
      formatSpan(400 * 86_400_000),
    ]).toEqual(['4s', '3m 20s', '5h 2m', '400d']);
    expect(formatReasons({ 'connect-failure': 1, 'no-healthy-endpoints': 3, zero: 0 })).toBe(
      'no-healthy-endpoints 3, connect-failure 1',
    );
  });

  it('measures ages and expiries against the given time', () => {
    const now = new Date('2025-01-01T00:00:00Z');
    expect(formatAgo('2024-12-31T23:59:57Z', now)).toBe('3s ago');
    expect(formatAgo(undefined, now)).toBe('—');
    expect(formatExpiry('2025-01-01T00:30:00Z', now, 3_600_000)).toEqual({ text: 'in 30m', urgency: 'soon' });
    expect(formatExpiry('2025-01-02T00:00:00Z', now, 3_600_000)).toEqual({ text: 'in 1d', urgency: 'ok' });
    expect(formatExpiry('2024-12-31T22:00:00Z', now, 3_600_000)).toEqual({
      text: 'expired 2h ago',
      urgency: 'expired',
    });
  });
});

describe('layout', () => {
  it('windows a list, keeping the selection in view and a line for "…N more"', () => {
    expect(listWindow(3, 5)).toEqual({ start: 0, end: 3, more: 0 });
    expect(listWindow(10, 5, 0)).toEqual({ start: 0, end: 4, more: 6 });
    expect(listWindow(10, 5, 7)).toEqual({ start: 4, end: 8, more: 6 });
    expect(listWindow(10, 5, 9)).toEqual({ start: 6, end: 10, more: 6 });
    expect(listWindow(10, 1, 5)).toEqual({ start: 0, end: 0, more: 10 });
  });

  it('fits blocks of several lines', () => {
    expect(fitBlocks([2, 2, 1], 5)).toEqual({ count: 3, more: 0 });
    expect(fitBlocks([2, 2, 2], 5)).toEqual({ count: 2, more: 1 });
    expect(fitBlocks([2, 2, 2], 2)).toEqual({ count: 0, more: 3 });
  });

  it('shares rows between two lists, the second keeping about a third', () => {
    expect(shareRows(14, 3, 2)).toEqual([3, 2]);
    expect(shareRows(14, 40, 12)).toEqual([10, 4]);
    expect(shareRows(14, 3, 30)).toEqual([3, 11]);
    expect(shareRows(-2, 3, 3)).toEqual([0, 0]);
  });

  it('gives flexible columns what fixed ones leave', () => {
    expect(columnWidths([{ width: 2 }, { width: 'flex' }, { width: 6 }], 80, 1)).toEqual([2, 70, 6]);
    expect(columnWidths([{ width: 'flex', min: 6 }, { width: 70 }], 40, 1)).toEqual([6, 70]);
  });
});
