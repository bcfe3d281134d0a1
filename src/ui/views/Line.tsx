/** One terminal line made of fixed-width cells, so columns line up without a layout pass per cell. */
import { Text } from 'ink';
import { cell } from '../format.js';

export interface Cell {
  text: string;
  width: number;
  align?: 'left' | 'right';
  color?: string;
  bold?: boolean;
  dim?: boolean;
}

export function Line({ cells, gap = 2, inverse = false }: { cells: Cell[]; gap?: number; inverse?: boolean }) {
  const sep = ' '.repeat(gap);
  return (
    <Text wrap="truncate-end" inverse={inverse}>
      {cells.map((c, i) => (
        <Text key={i} {...(c.color ? { color: c.color } : {})} bold={c.bold ?? false} dimColor={c.dim ?? false}>
          {cell(c.text, c.width, c.align ?? 'left') + (i === cells.length - 1 ? '' : sep)}
        </Text>
      ))}
    </Text>
  );
}

/** The "…N more" marker under a trimmed list. */
export function More({ count, what = 'more' }: { count: number; what?: string }) {
  return <Text dimColor>{`  …${count} ${what}`}</Text>;
}

/** A section title such as "SERVICES (12)". */
export function Title({ children }: { children: string }) {
  return (
    <Text bold wrap="truncate-end">
      {children}
    </Text>
  );
}
