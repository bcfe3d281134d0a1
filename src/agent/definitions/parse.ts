/**
 * Reads one service-definition file (YAML or JSON) into wire registrations, or refuses it with
 * MESH_ERR_INVALID_FILE and a message of the form `<file>:<line>:<col>: <what is wrong>`, so an
 * editor or a terminal can jump to the spot. Used by the directory watcher and `register -f`.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type Node,
} from 'yaml';
import { isMeshError, MeshError } from '../../errors/index.js';
import type { ServiceRegistration } from '../../api/schemas.js';
import { definitionsFromValue } from './conversion.js';
import { formatPath, type FormatIssue, type PathSegment } from './messages.js';

export const DEFINITION_EXTENSIONS: readonly string[] = ['.yaml', '.yml', '.json'];

/** Definition files are small; the cap keeps a stray log file or an alias bomb from costing much. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

/** YAML aliases are allowed (shared check lists) but bounded, against "billion laughs". */
const MAX_ALIAS_COUNT = 100;

export interface DefinitionFile {
  services: ServiceRegistration[];
}

/** A problem with a file, as the watcher reports it. Line and column are 1-based; absent for whole-file problems. */
export interface DefinitionError {
  message: string;
  line?: number;
  column?: number;
}

/** What `MeshError.details` holds for MESH_ERR_INVALID_FILE raised here. */
export interface DefinitionErrorDetails extends DefinitionError {
  file: string;
  /** Every problem found, in file order (the message names the first). */
  issues?: { path: string; message: string; line?: number; column?: number }[];
}

export function hasDefinitionExtension(path: string): boolean {
  return DEFINITION_EXTENSIONS.includes(extname(path).toLowerCase());
}

interface Pos {
  line: number;
  col: number;
}

function fileError(
  file: string,
  pos: Pos | undefined,
  message: string,
  issues?: DefinitionErrorDetails['issues'],
): MeshError {
  const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
  const details: DefinitionErrorDetails = { file, message: `${where}: ${message}` };
  if (pos) {
    details.line = pos.line;
    details.column = pos.col;
  }
  if (issues) details.issues = issues;
  return new MeshError('MESH_ERR_INVALID_FILE', details.message, { details });
}

/** The {message, line, column} of an error raised by this module, for reporting without a stack. */
export function definitionErrorOf(e: unknown): DefinitionError | undefined {
  if (!isMeshError(e) || e.code !== 'MESH_ERR_INVALID_FILE') return undefined;
  const d = e.details as Partial<DefinitionErrorDetails> | undefined;
  const out: DefinitionError = { message: e.message };
  if (typeof d?.line === 'number') out.line = d.line;
  if (typeof d?.column === 'number') out.column = d.column;
  return out;
}

function sizeText(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 1) return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`;
  return `${Math.ceil(bytes / 1024)} KiB`;
}

function tooBig(path: string, max: number): MeshError {
  return fileError(path, undefined, `file is larger than the ${sizeText(max)} limit for definition files`);
}

// ---------------------------------------------------------------------------------------------
// Offsets → line:col, and file paths → offsets in the YAML document.

function posAt(text: string, offset: number): Pos {
  const o = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < o; i = text.indexOf('\n', i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { line, col: o - lineStart + 1 };
}

function start(node: unknown): number | undefined {
  return (node as Node | null | undefined)?.range?.[0];
}

function keyMatches(key: unknown, seg: PathSegment): boolean {
  return isScalar(key) && String(key.value) === String(seg);
}

/**
 * Where a file issue points: the node at `path` (its key for an unknown key). When the path runs
 * past what exists (a missing required key), the key or list item that holds it; such an issue
 * sorts after everything inside that holder, so a misspelt key is reported before the "missing"
 * it causes.
 */
function locate(
  doc: Document,
  path: readonly PathSegment[],
  at: FormatIssue['at'],
): { offset?: number; order: number } {
  let node: unknown = doc.contents;
  let holder = start(node);
  const missing = (inside: unknown) => ({
    offset: holder,
    order: (inside as Node).range?.[1] ?? holder ?? Number.MAX_SAFE_INTEGER,
  });
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyMatches(p.key, seg));
      if (!pair) return missing(node);
      if (i === path.length - 1 && at === 'key') {
        const k = start(pair.key) ?? holder;
        return { offset: k, order: k ?? Number.MAX_SAFE_INTEGER };
      }
      holder = start(pair.key) ?? holder;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) return missing(node);
      node = item;
      holder = start(node) ?? holder;
    } else {
      return missing(node);
    }
  }
  const offset = start(node) ?? holder;
  return { offset, order: offset ?? Number.MAX_SAFE_INTEGER };
}

// ---------------------------------------------------------------------------------------------
// JSON: JSON.parse for exact JSON errors; older V8s omit the position for some of them.

function jsonErrorOffset(text: string, message: string): number {
  const m = /at position (\d+)/.exec(message);
  if (m) return Number(m[1]);
  if (/Unexpected end of JSON input/.test(message)) return text.trimEnd().length;
  // No position given: the shortest prefix that fails before its own end ends at the bad character.
  const failsInside = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (e) {
      const msg = e instanceof Error ? e.message : '';
      if (/Unexpected end of JSON input/.test(msg)) return false;
      const p = /at position (\d+)/.exec(msg);
      return p ? Number(p[1]) < n : true;
    }
  };
  let lo = 1;
  let hi = text.length;
  if (!failsInside(hi)) return text.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (failsInside(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}

function jsonMessage(message: string): string {
  return message
    .replace(/, .*is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'unexpected end of input');
}

// ---------------------------------------------------------------------------------------------

/**
 * Parses the text of a definition file. `path` picks the syntax (.json → JSON, else YAML) and
 * names the file in messages. Throws MESH_ERR_INVALID_FILE.
 */
export function parseDefinitionFile(path: string, text: string, opts: { maxBytes?: number } = {}): DefinitionFile {
  const ext = extname(path).toLowerCase();
  if (!DEFINITION_EXTENSIONS.includes(ext)) {
    throw fileError(
      path,
      undefined,
      `unsupported file type '${ext || '(none)'}': definition files end in .yaml, .yml or .json`,
    );
  }
  const max = opts.maxBytes ?? MAX_DEFINITION_BYTES;
  if (text.length > max || Buffer.byteLength(text, 'utf8') > max) throw tooBig(path, max);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  const lineCounter = new LineCounter();
  // For JSON the document is parsed too, only to find lines of nodes and duplicate keys.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number | undefined): Pos | undefined => (offset === undefined ? undefined : posAt(text, offset));

  let value: unknown;
  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw fileError(path, pos(jsonErrorOffset(text, message)), `invalid JSON: ${jsonMessage(message)}`);
    }
    // JSON.parse keeps the last of two equal keys; refuse, as for YAML, rather than guess.
    const dup = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
    if (dup) throw fileError(path, pos(dup.pos[0]), 'invalid JSON: duplicate key (keys in an object must be unique)');
  } else {
    const err = doc.errors[0];
    if (err) throw fileError(path, pos(err.pos[0]), `invalid YAML: ${err.message}`);
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      // Unresolvable or excessive aliases: point at the first alias.
      let alias: number | undefined;
      visit(doc, {
        Alias(_, node) {
          alias = start(node);
          return visit.BREAK;
        },
      });
      throw fileError(path, pos(alias), `invalid YAML: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (value === null || value === undefined) {
    throw fileError(
      path,
      undefined,
      "the file is empty: it must hold 'service:' (one service) or 'services:' (a list)",
    );
  }

  const r = definitionsFromValue(value);
  if (r.ok) return { services: r.services };

  const located = r.issues
    .map((issue) => ({ issue, ...locate(doc, issue.path, issue.at) }))
    .sort((a, b) => a.order - b.order);
  const issues = located.slice(0, 20).map(({ issue, offset }) => {
    const p = pos(offset);
    return { path: formatPath(issue.path), message: issue.message, ...(p && { line: p.line, column: p.col }) };
  });
  const first = located[0]!;
  const what =
    first.issue.path.length > 0 ? `${formatPath(first.issue.path)}: ${first.issue.message}` : first.issue.message;
  const more = located.length > 1 ? ` (and ${located.length - 1} more problem${located.length > 2 ? 's' : ''})` : '';
  throw fileError(path, pos(first.offset), `${what}${more}`, issues);
}

/**
 * Reads and parses a definition file from disk: only .yaml/.yml/.json regular files, at most
 * `maxBytes`, UTF-8. A missing file is MESH_ERR_NOT_FOUND (the watcher treats it as removed);
 * everything else wrong is MESH_ERR_INVALID_FILE.
 */
export async function readDefinitionFile(path: string, opts: { maxBytes?: number } = {}): Promise<DefinitionFile> {
  if (!hasDefinitionExtension(path)) {
    throw fileError(
      path,
      undefined,
      `unsupported file type '${extname(path) || '(none)'}': definition files end in .yaml, .yml or .json`,
    );
  }
  const max = opts.maxBytes ?? MAX_DEFINITION_BYTES;
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new MeshError('MESH_ERR_NOT_FOUND', `${path}: no such file`, {
        hint: 'Check the path of the definition file.',
      });
    throw fileError(path, undefined, `cannot read the file (${code ?? String(e)})`);
  }
  let bytes: Buffer;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fileError(path, undefined, 'not a regular file');
    if (st.size > max) throw tooBig(path, max);
    // Read up to max+1 bytes whatever stat said: the file may grow between stat and read.
    const buf = Buffer.allocUnsafe(max + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    if (n > max) throw tooBig(path, max);
    bytes = buf.subarray(0, n);
  } catch (e) {
    if (isMeshError(e)) throw e;
    throw fileError(path, undefined, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  } finally {
    await fh.close().catch(() => undefined);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fileError(path, undefined, 'the file is not UTF-8 text');
  }
  return parseDefinitionFile(path, text, { maxBytes: max });
}
