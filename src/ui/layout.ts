/** Fitting lists and columns into a fixed number of terminal lines and columns. Pure. */

export interface ListWindow {
  /** Items [start, end) are shown. */
  start: number;
  end: number;
  /** How many items are not shown (the "…N more" line), 0 when all fit. */
  more: number;
}

/**
 * Which items of a list fit in `maxRows` lines, keeping `selected` in view. When not all fit,
 * one of the lines goes to a "…N more" marker.
 */
export function listWindow(total: number, maxRows: number, selected = 0): ListWindow {
  if (total <= maxRows) return { start: 0, end: total, more: 0 };
  const rows = Math.max(0, maxRows - 1);
  const sel = Math.min(Math.max(0, selected), total - 1);
  const start = rows === 0 ? 0 : Math.min(Math.max(0, sel - rows + 1), total - rows);
  return { start, end: start + rows, more: total - rows };
}

/** How many leading blocks of the given line heights fit in `maxLines`, with a line kept for "…N more". */
export function fitBlocks(heights: number[], maxLines: number): { count: number; more: number } {
  const total = heights.reduce((a, b) => a + b, 0);
  if (total <= maxLines) return { count: heights.length, more: 0 };
  let used = 0;
  let count = 0;
  for (const h of heights) {
    if (used + h > maxLines - 1) break;
    used += h;
    count += 1;
  }
  return { count, more: heights.length - count };
}

/**
 * Shares `budget` list lines between a primary list (needing `a` lines) and a secondary one
 * (`b`): the secondary keeps at least a third of the room (or what it needs, if less), the
 * primary gets the rest.
 */
export function shareRows(budget: number, a: number, b: number): [number, number] {
  const room = Math.max(0, budget);
  if (a + b <= room) return [a, b];
  const bMin = Math.min(b, Math.max(2, Math.floor(room / 3)));
  const bRows = Math.min(b, room, Math.max(bMin, room - a));
  return [Math.max(0, room - bRows), bRows];
}

export interface ColumnSpec {
  /** Fixed width, or 'flex' to take what the fixed columns leave (shared equally, at least `min`). */
  width: number | 'flex';
  min?: number;
}

/** Resolves column widths for a line of `total` characters with `gap` spaces between columns. */
export function columnWidths(specs: ColumnSpec[], total: number, gap = 2): number[] {
  const fixed = specs.reduce((n, s) => n + (s.width === 'flex' ? 0 : s.width), 0);
  const flexCount = specs.filter((s) => s.width === 'flex').length;
  const free = Math.max(0, total - fixed - gap * (specs.length - 1));
  const each = flexCount === 0 ? 0 : Math.floor(free / flexCount);
  return specs.map((s) => (s.width === 'flex' ? Math.max(s.min ?? 4, each) : s.width));
}
