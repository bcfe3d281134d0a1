/**
 * Reads config entry documents for `meshctl apply -f`: a file, every *.yaml / *.yml / *.json
 * file of a directory (in name order, not recursive), or standard input. YAML files may hold
 * several documents (`---`); a JSON file holds one entry, an array of entries, or the
 * `{ revision, entries }` that `get config -o json` prints. Each document gets a label
 * (`api.yaml document 2`) that the registry says in every error about it.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MeshError } from '../errors/index.js';

export interface ConfigDocument {
  raw: unknown;
  label: string;
}

const EXTENSIONS = /\.(ya?ml|json)$/;

export async function readConfigDocuments(source: string, stdin: () => Promise<string>): Promise<ConfigDocument[]> {
  if (source === '-') {
    const docs = parseText(await stdin(), 'stdin', 'yaml');
    if (docs.length === 0) throw new MeshError('MESH_ERR_INVALID_FILE', 'standard input holds no config entry');
    return docs;
  }
  let info;
  try {
    info = await stat(source);
  } catch {
    throw new MeshError('MESH_ERR_NOT_FOUND', `no such file or directory: ${source}`, {
      hint: 'Give a file, a directory of *.yaml/*.json files, or - for standard input.',
    });
  }
  const files = info.isDirectory()
    ? (await readdir(source))
        .filter((f) => EXTENSIONS.test(f))
        .sort()
        .map((f) => join(source, f))
    : [source];
  if (info.isDirectory() && files.length === 0)
    throw new MeshError('MESH_ERR_INVALID_FILE', `${source} holds no *.yaml, *.yml or *.json file`);
  const out: ConfigDocument[] = [];
  for (const f of files) {
    const text = await readFile(f, 'utf8');
    out.push(...parseText(text, info.isDirectory() ? basename(f) : f, f.endsWith('.json') ? 'json' : 'yaml'));
  }
  if (out.length === 0) throw new MeshError('MESH_ERR_INVALID_FILE', `${source} holds no config entry`);
  return out;
}

export function parseText(text: string, name: string, format: 'yaml' | 'json'): ConfigDocument[] {
  if (format === 'json') {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new MeshError('MESH_ERR_INVALID_FILE', `${name} is not valid JSON: ${(e as Error).message}`);
    }
    return fromValue(v, name);
  }
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  // A stream that is one JSON value (stdin from `get config -o json`) reads as one YAML document.
  if (!Array.isArray(docs)) return [];
  const out: ConfigDocument[] = [];
  docs.forEach((d, i) => {
    const label = docs.length === 1 ? name : `${name} document ${i + 1}`;
    const err = d.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      throw new MeshError(
        'MESH_ERR_INVALID_FILE',
        `${name}${pos ? `:${pos.line}:${pos.col}` : ''}: ${err.message.split('\n')[0]}`,
      );
    }
    const v: unknown = d.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) return; // an empty document (a trailing ---)
    out.push(...fromValue(v, label));
  });
  return out;
}

function fromValue(v: unknown, label: string): ConfigDocument[] {
  if (Array.isArray(v)) return v.map((raw, i) => ({ raw, label: `${label} entry ${i + 1}` }));
  if (v && typeof v === 'object' && !('kind' in v) && Array.isArray((v as { entries?: unknown }).entries)) {
    return (v as { entries: unknown[] }).entries.map((raw, i) => ({
      raw: unwrap(raw),
      label: `${label} entry ${i + 1}`,
    }));
  }
  return [{ raw: v, label }];
}

/** `get config --json` wraps each entry with its revisions: `{ entry, createRevision, modRevision }`. */
function unwrap(raw: unknown): unknown {
  if (raw && typeof raw === 'object' && !('kind' in raw) && 'entry' in raw) return (raw as { entry: unknown }).entry;
  return raw;
}
