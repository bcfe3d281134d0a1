/**
 * The subset filter language: the part of Consul's filter expressions that fits a service
 * instance. `Service.Meta.KEY == VALUE`, `Service.Meta.KEY != VALUE`, `Service.Tags contains
 * TAG`, `Service.Tags not contains TAG`, joined with `and`, `or`, `not` and parentheses (`not`
 * binds tightest, then `and`, then `or`). Values are bare words or quoted ("..." or '...').
 *
 * No zod here: the agent evaluates filters for every instance change, and the registry parses
 * them on every write; a syntax error names the 1-based column where the filter stops parsing.
 */

export type FilterExpr =
  | { readonly type: 'or' | 'and'; readonly left: FilterExpr; readonly right: FilterExpr }
  | { readonly type: 'not'; readonly expr: FilterExpr }
  | { readonly type: 'meta'; readonly key: string; readonly op: '==' | '!='; readonly value: string }
  | { readonly type: 'tag'; readonly op: 'contains' | 'not contains'; readonly value: string };

/** What a filter looks at on an instance. */
export interface FilterSubject {
  readonly meta: Readonly<Record<string, string>>;
  readonly tags: readonly string[];
}

export class FilterSyntaxError extends Error {
  constructor(
    readonly column: number,
    readonly reason: string,
  ) {
    super(`column ${column}: ${reason}`);
    this.name = 'FilterSyntaxError';
  }
}

type Token =
  | { kind: 'word'; text: string; col: number }
  | { kind: 'string'; text: string; col: number }
  | { kind: 'op'; text: '==' | '!=' | '(' | ')'; col: number }
  | { kind: 'end'; col: number };

const WORD = /[A-Za-z0-9_.:=/*-]/;
export const MAX_FILTER_LENGTH = 1024;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const col = i + 1;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')') {
      out.push({ kind: 'op', text: c, col });
      i++;
    } else if ((c === '=' || c === '!') && src[i + 1] === '=') {
      out.push({ kind: 'op', text: c === '=' ? '==' : '!=', col });
      i += 2;
    } else if (c === '"' || c === "'") {
      const close = src.indexOf(c, i + 1);
      if (close < 0) throw new FilterSyntaxError(col, `unterminated string (no closing ${c})`);
      out.push({ kind: 'string', text: src.slice(i + 1, close), col });
      i = close + 1;
    } else if (WORD.test(c)) {
      let j = i;
      // A word ends before "==" or "!=" so `a==b` reads as three tokens.
      while (j < src.length && WORD.test(src[j]!) && !(src[j] === '=' && src[j + 1] === '=')) j++;
      out.push({ kind: 'word', text: src.slice(i, j), col });
      i = j;
    } else {
      throw new FilterSyntaxError(col, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  out.push({ kind: 'end', col: src.length + 1 });
  return out;
}

const META_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

class Parser {
  #pos = 0;
  readonly #toks: Token[];

  constructor(toks: Token[]) {
    this.#toks = toks;
  }

  parse(): FilterExpr {
    const e = this.#or();
    const t = this.#peek();
    if (t.kind !== 'end') throw new FilterSyntaxError(t.col, `expected "and", "or" or the end, found ${show(t)}`);
    return e;
  }

  #peek(): Token {
    return this.#toks[this.#pos]!;
  }
  #next(): Token {
    return this.#toks[this.#pos++]!;
  }
  #isWord(text: string): boolean {
    const t = this.#peek();
    return t.kind === 'word' && t.text === text;
  }

  #or(): FilterExpr {
    let left = this.#and();
    while (this.#isWord('or')) {
      this.#next();
      left = { type: 'or', left, right: this.#and() };
    }
    return left;
  }

  #and(): FilterExpr {
    let left = this.#unary();
    while (this.#isWord('and')) {
      this.#next();
      left = { type: 'and', left, right: this.#unary() };
    }
    return left;
  }

  #unary(): FilterExpr {
    if (this.#isWord('not')) {
      this.#next();
      return { type: 'not', expr: this.#unary() };
    }
    const t = this.#peek();
    if (t.kind === 'op' && t.text === '(') {
      this.#next();
      const e = this.#or();
      const close = this.#next();
      if (!(close.kind === 'op' && close.text === ')'))
        throw new FilterSyntaxError(close.col, `expected ")", found ${show(close)}`);
      return e;
    }
    return this.#comparison();
  }

  #comparison(): FilterExpr {
    const sel = this.#next();
    if (sel.kind !== 'word')
      throw new FilterSyntaxError(sel.col, `expected Service.Meta.KEY or Service.Tags, found ${show(sel)}`);
    if (sel.text === 'Service.Tags') {
      let op: 'contains' | 'not contains' = 'contains';
      if (this.#isWord('not')) {
        this.#next();
        op = 'not contains';
      }
      const kw = this.#next();
      if (!(kw.kind === 'word' && kw.text === 'contains'))
        throw new FilterSyntaxError(kw.col, `expected "contains" after Service.Tags, found ${show(kw)}`);
      return { type: 'tag', op, value: this.#value(op) };
    }
    if (sel.text.startsWith('Service.Meta.')) {
      const key = sel.text.slice('Service.Meta.'.length);
      if (!META_KEY.test(key))
        throw new FilterSyntaxError(
          sel.col + 'Service.Meta.'.length,
          `"${key}" is not a meta key (1-64 letters, digits, "_", "." or "-")`,
        );
      const op = this.#next();
      if (!(op.kind === 'op' && (op.text === '==' || op.text === '!=')))
        throw new FilterSyntaxError(op.col, `expected "==" or "!=" after ${sel.text}, found ${show(op)}`);
      return { type: 'meta', key, op: op.text, value: this.#value(op.text) };
    }
    throw new FilterSyntaxError(
      sel.col,
      `unknown selector ${JSON.stringify(sel.text)}: use Service.Meta.KEY or Service.Tags`,
    );
  }

  #value(after: string): string {
    const v = this.#next();
    if (v.kind === 'string') return v.text;
    if (v.kind === 'word' && !['and', 'or', 'not'].includes(v.text)) return v.text;
    throw new FilterSyntaxError(v.col, `expected a value after "${after}", found ${show(v)}`);
  }
}

function show(t: Token): string {
  return t.kind === 'end' ? 'the end' : JSON.stringify(t.text);
}

/** Parses a filter; throws FilterSyntaxError with the column where it stops parsing. */
export function parseFilter(src: string): FilterExpr {
  if (src.length > MAX_FILTER_LENGTH)
    throw new FilterSyntaxError(MAX_FILTER_LENGTH + 1, `a filter is at most ${MAX_FILTER_LENGTH} characters`);
  if (src.trim() === '') throw new FilterSyntaxError(1, 'the filter is empty');
  return new Parser(tokenize(src)).parse();
}

export function matchesFilter(e: FilterExpr, s: FilterSubject): boolean {
  switch (e.type) {
    case 'or':
      return matchesFilter(e.left, s) || matchesFilter(e.right, s);
    case 'and':
      return matchesFilter(e.left, s) && matchesFilter(e.right, s);
    case 'not':
      return !matchesFilter(e.expr, s);
    case 'meta': {
      const has = Object.hasOwn(s.meta, e.key) ? s.meta[e.key] : undefined;
      return e.op === '==' ? has === e.value : has !== e.value;
    }
    case 'tag':
      return s.tags.includes(e.value) === (e.op === 'contains');
  }
}
