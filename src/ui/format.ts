/** Short, fixed-width renderings of figures for an 80-column screen. Pure functions, no I/O. */

export const DASH = '—';
export const ELLIPSIS = '…';

/** Cuts `s` to at most `width` characters, marking the cut with an ellipsis. */
export function truncate(s: string, width: number): string {
  if (width <= 0) return '';
  if (s.length <= width) return s;
  if (width === 1) return ELLIPSIS;
  return s.slice(0, width - 1) + ELLIPSIS;
}

/** Truncates, then pads to exactly `width` (right-aligned for numbers). */
export function cell(s: string, width: number, align: 'left' | 'right' = 'left'): string {
  const t = truncate(s, width);
  return align === 'right' ? t.padStart(width) : t.padEnd(width);
}

/** The first line of a check's output, with control characters removed so it cannot move the cursor. */
export function firstLine(s: string): string {
  const line = s.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}

export function formatRps(rps: number | null | undefined): string {
  if (rps === null || rps === undefined || !Number.isFinite(rps)) return DASH;
  if (rps === 0) return '0';
  if (rps < 10) return rps.toFixed(1);
  if (rps < 1000) return Math.round(rps).toString();
  if (rps < 10_000) return `${(rps / 1000).toFixed(1)}k`;
  return `${Math.round(rps / 1000)}k`;
}

/** A whole count in at most 6 characters: 880, 12,345 as 12.3k, 4,500,000 as 4.5M. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  if (n < 10_000) return String(Math.round(n));
  if (n < 1_000_000) return `${(Math.floor(n / 100) / 10).toFixed(1)}k`;
  return `${(Math.floor(n / 100_000) / 10).toFixed(1)}M`;
}

/** Success rate 0..1 as a percentage; 100% only when nothing failed. */
export function formatRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return DASH;
  if (rate >= 1) return '100%';
  // Floor so that 99.96% never shows as a perfect 100.0%.
  return `${(Math.floor(rate * 1000) / 10).toFixed(1)}%`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)}s`;
  return `${(ms / 1000).toFixed(1)}s`;
}

/** A span of time in its largest one or two units: 45s, 3m 20s, 5h 2m, 364d. */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return d < 10 && h % 24 !== 0 ? `${d}d ${h % 24}h` : `${d}d`;
}

/** "3s ago" for a past ISO time measured against `now`. */
export function formatAgo(iso: string | undefined, now: Date): string {
  if (!iso) return DASH;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return DASH;
  return `${formatSpan(now.getTime() - t)} ago`;
}

export type Urgency = 'ok' | 'soon' | 'expired';

/** "in 23h 59m" or "expired 2h ago", with how urgent it is given a warning threshold. */
export function formatExpiry(
  iso: string | undefined,
  now: Date,
  warnWithinMs: number,
): { text: string; urgency: Urgency } {
  if (!iso) return { text: DASH, urgency: 'ok' };
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return { text: DASH, urgency: 'ok' };
  const left = t - now.getTime();
  if (left <= 0) return { text: `expired ${formatSpan(-left)} ago`, urgency: 'expired' };
  return { text: `in ${formatSpan(left)}`, urgency: left < warnWithinMs ? 'soon' : 'ok' };
}

/** Mesh-generated errors by reason, most frequent first: "no-healthy-endpoints 3, connect-failure 1". */
export function formatReasons(reasons: Record<string, number>): string {
  return Object.entries(reasons)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
}
