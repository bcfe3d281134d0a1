/**
 * Renders the systemd units in templates/systemd/ for this host. A template names its
 * values as {{PLACEHOLDER}}; every value is checked before it goes into the unit, because
 * systemd gives meaning to characters a shell user would not expect ("%" starts a
 * specifier, "$" a variable, whitespace splits ExecStart= and ReadWritePaths=).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { posix } from 'node:path';
import { MeshError } from '../errors/index.js';
import { REGISTRY_NODE_FLAGS } from './process-flags.js';

export type UnitKind = 'agent' | 'registry';

export const UNIT_KINDS: readonly UnitKind[] = ['agent', 'registry'];

export interface UnitVars {
  /** Absolute path of the node binary that runs meshctl. */
  readonly node: string;
  /**
   * node's own flags before the launcher, space-separated (the registry's REGISTRY_NODE_FLAGS:
   * V8's heap is sized as the process starts, so they cannot be set from inside); may be empty.
   */
  readonly nodeFlags: string;
  /** Absolute path of the meshctl launcher (`bin/meshctl` in the install directory). */
  readonly meshctlBin: string;
  readonly dataDir: string;
  /** meshctl's configuration directory ({{CONFIG_DIR}}); the env file defaults to a file in it. */
  readonly configDir: string;
  readonly user: string;
  readonly group: string;
  /** Optional environment file; the unit starts without it. */
  readonly envFile: string;
  /** Units to start after (After=), space-separated: the network, and etcd for a registry on it. */
  readonly after: string;
}

/** Which template placeholder each value fills. */
const PLACEHOLDERS = {
  NODE: 'node',
  NODE_FLAGS: 'nodeFlags',
  MESHCTL_BIN: 'meshctlBin',
  DATA_DIR: 'dataDir',
  CONFIG_DIR: 'configDir',
  USER: 'user',
  GROUP: 'group',
  ENV_FILE: 'envFile',
  AFTER: 'after',
} as const satisfies Record<string, keyof UnitVars>;

const PATH_VARS = ['node', 'meshctlBin', 'dataDir', 'configDir', 'envFile'] as const;
const ACCOUNT_VARS = ['user', 'group'] as const;

// Characters systemd takes literally in ExecStart= and path lists. Anything else would
// need systemd quoting and escaping, and no sane install path needs it.
const UNSAFE_PATH_CHAR = /[^A-Za-z0-9._@+,:~/-]/;
// Unit names (systemd.unit(5)) joined by single spaces.
const UNIT_LIST =
  /^[A-Za-z0-9:_.@-]+\.(?:service|target|socket|mount)(?: [A-Za-z0-9:_.@-]+\.(?:service|target|socket|mount))*$/;
// node flags as this code sets them: --name or --name=value of letters, digits and - . _, space-separated.
const NODE_FLAGS = /^(?:--[a-z0-9-]+(?:=[A-Za-z0-9._-]+)?(?: --[a-z0-9-]+(?:=[A-Za-z0-9._-]+)?)*)?$/;
// Names useradd/groupadd accept (and numeric ids, which systemd also takes).
const SAFE_ACCOUNT = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]{1,10})$/;

export const DEFAULT_DATA_DIR = '/var/lib/meshctl';
export const DEFAULT_CONFIG_DIR = '/etc/meshctl';
export const DEFAULT_USER = 'meshctl';

/** The repository (or install) root: this file is src/systemd/render.ts or dist/systemd/render.js. */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
}

export function templatePath(kind: UnitKind): string {
  return posix.join(packageRoot(), 'templates', 'systemd', unitFileName(kind));
}

export function unitFileName(kind: UnitKind): string {
  return `meshctl-${kind}.service`;
}

/**
 * Values for a standard install: the running node, this package's launcher, the
 * directories install.sh creates, and the `meshctl` system user.
 */
export function defaultUnitVars(
  kind: UnitKind,
  opts: {
    dataDir?: string;
    configDir?: string;
    user?: string;
    group?: string;
    envFile?: string;
    /** A registry on etcd: also start after a local etcd.service (ordering only: etcd may be elsewhere). */
    etcd?: boolean;
  } = {},
): UnitVars {
  assertKind(kind);
  const configDir = opts.configDir ?? DEFAULT_CONFIG_DIR;
  const user = opts.user ?? DEFAULT_USER;
  return {
    node: process.execPath,
    nodeFlags: kind === 'registry' ? REGISTRY_NODE_FLAGS.join(' ') : '',
    meshctlBin: posix.join(packageRoot(), 'bin', 'meshctl'),
    dataDir: opts.dataDir ?? DEFAULT_DATA_DIR,
    configDir,
    user,
    // A user given without a group runs in its own primary group (root → root).
    group: opts.group ?? user,
    envFile: opts.envFile ?? posix.join(configDir, `${kind}.env`),
    after: opts.etcd === true && kind === 'registry' ? 'network-online.target etcd.service' : 'network-online.target',
  };
}

/** Throws MESH_ERR_INVALID_ARGUMENT naming the first value systemd would misread. */
export function validateUnitVars(vars: UnitVars): void {
  for (const key of PATH_VARS) checkPath(key, vars[key]);
  for (const key of ACCOUNT_VARS) checkAccount(key, vars[key]);
  if (typeof vars.nodeFlags !== 'string' || !NODE_FLAGS.test(vars.nodeFlags)) {
    invalid('nodeFlags', vars.nodeFlags, 'is not a space-separated list of --flag or --flag=value');
  }
  if (typeof vars.after !== 'string' || !UNIT_LIST.test(vars.after)) {
    invalid('after', vars.after, 'is not a space-separated list of unit names');
  }
}

/** Reads the template for `kind` and fills it in. */
export function renderUnit(kind: UnitKind, vars: UnitVars): string {
  assertKind(kind);
  const path = templatePath(kind);
  let template: string;
  try {
    template = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MeshError('MESH_ERR_INTERNAL', `cannot read the systemd template ${path}: ${(e as Error).message}`, {
      cause: e,
      hint: 'The install is incomplete: re-run install.sh (it copies templates/ next to bin/).',
    });
  }
  return renderTemplate(template, vars, path);
}

/**
 * Fills in a template text. One pass over the text, so a value can never introduce a
 * placeholder of its own; anything still shaped like {{…}} afterwards is a template bug.
 */
export function renderTemplate(template: string, vars: UnitVars, source = 'template'): string {
  validateUnitVars(vars);
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => {
    const key = Object.hasOwn(PLACEHOLDERS, name) ? PLACEHOLDERS[name as keyof typeof PLACEHOLDERS] : undefined;
    return key === undefined ? whole : vars[key];
  });
  const left = [...new Set(out.match(/\{\{[^}\n]*\}\}/g) ?? [])];
  if (left.length > 0) {
    throw new MeshError('MESH_ERR_INTERNAL', `${source} has placeholders without a value: ${left.join(', ')}`, {
      details: { placeholders: left },
    });
  }
  return out;
}

function checkPath(key: string, value: string): void {
  if (typeof value !== 'string' || value === '') invalid(key, value, 'is empty');
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  const bad = /[\u0000-\u001f\u007f]/.exec(value);
  if (bad) invalid(key, value, `contains a control character (code ${bad[0].charCodeAt(0)})`);
  if (!value.startsWith('/')) invalid(key, value, 'must be an absolute path');
  if (/\s/.test(value)) invalid(key, value, 'contains whitespace, which systemd would split into two arguments');
  const odd = UNSAFE_PATH_CHAR.exec(value);
  if (odd) {
    invalid(
      key,
      value,
      `contains ${JSON.stringify(odd[0])}, which systemd would interpret; use letters, digits and . _ - @ + , : ~ /`,
    );
  }
  // Units are read by people too: /a/../b or /a//b/ hide what is really used.
  const normal = posix.normalize(value).replace(/(.)\/$/, '$1');
  if (normal !== value) invalid(key, value, `is not in normal form; use ${normal}`);
}

function checkAccount(key: string, value: string): void {
  if (typeof value !== 'string' || !SAFE_ACCOUNT.test(value)) {
    invalid(key, value, 'is not a valid user or group name (letters, digits, _ . -; at most 32 characters)');
  }
}

function invalid(key: string, value: unknown, why: string): never {
  throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `systemd unit value ${key} ${JSON.stringify(value)} ${why}`, {
    details: { field: key },
  });
}

function assertKind(kind: string): asserts kind is UnitKind {
  if (!(UNIT_KINDS as readonly string[]).includes(kind)) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `unknown unit kind ${JSON.stringify(kind)}; expected agent or registry`,
    );
  }
}
