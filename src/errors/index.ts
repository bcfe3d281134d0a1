/**
 * The one error module. Every error a user can meet carries a stable code (`MESH_ERR_*`),
 * a message that says what happened, and a hint that says what to do. The CLI's single
 * top-level catch maps codes to exit codes; the registry API maps them to HTTP statuses.
 * docs/ERRORS.md lists every code (a test keeps the two in step).
 */

export interface ErrorSpec {
  /** HTTP status when the error crosses the registry or agent API. */
  readonly http: number;
  /** Process exit code when the CLI ends on this error. */
  readonly exit: number;
  /** Default hint, shown under the message. */
  readonly hint: string;
}

// Exit codes follow sysexits(3) where one fits, so scripts can tell classes apart.
const USAGE = 64;
const DATAERR = 65;
const NOINPUT = 66;
const UNAVAILABLE = 69;
const SOFTWARE = 70;
const CANTCREAT = 73;
const NOPERM = 77;
const CONFIG = 78;

export const ERRORS = {
  MESH_ERR_USAGE: { http: 400, exit: USAGE, hint: 'Run the command with --help to see its flags.' },
  MESH_ERR_INVALID_ARGUMENT: { http: 400, exit: USAGE, hint: "Check the value against the command's --help." },
  MESH_ERR_BAD_REQUEST: { http: 400, exit: DATAERR, hint: 'Fix the request body; the message names the field.' },
  MESH_ERR_BODY_TOO_LARGE: { http: 413, exit: DATAERR, hint: 'Send a smaller request body.' },
  MESH_ERR_INVALID_FILE: { http: 400, exit: DATAERR, hint: 'Fix the file; the message names the line and field.' },
  MESH_ERR_UNAUTHENTICATED: {
    http: 401,
    exit: NOPERM,
    hint: 'Pass the admin token with --token or MESHCTL_TOKEN (`meshctl init --server` printed it). Lost every admin token? On the registry host: `meshctl registry admin-token` (docs/SECURITY.md).',
  },
  MESH_ERR_FORBIDDEN: {
    http: 403,
    exit: NOPERM,
    hint: 'This identity may not do that; use the admin token or the owning node.',
  },
  MESH_ERR_NOT_FOUND: {
    http: 404,
    exit: NOINPUT,
    hint: 'Check the name; list what exists with the matching list command.',
  },
  MESH_ERR_CONFLICT: {
    http: 409,
    exit: DATAERR,
    hint: 'The state changed or already exists; read it again and retry.',
  },
  MESH_ERR_ALREADY_INITIALIZED: {
    http: 409,
    exit: CANTCREAT,
    hint: 'Use another --data-dir, or --force to replace the existing mesh (this invalidates every certificate and token).',
  },
  MESH_ERR_NOT_INITIALIZED: {
    http: 500,
    exit: CONFIG,
    hint: 'Run `meshctl init --server --data-dir DIR` first, or point --data-dir at an initialised directory.',
  },
  MESH_ERR_CONFIG: { http: 500, exit: CONFIG, hint: 'Fix the configuration file named in the message.' },
  MESH_ERR_CSR_INVALID: {
    http: 400,
    exit: DATAERR,
    hint: 'The CSR must be PEM, EC P-256, signed by its key, with exactly one URI SAN equal to the requested SPIFFE ID.',
  },
  MESH_ERR_CERT_INVALID: {
    http: 400,
    exit: DATAERR,
    hint: 'The certificate was refused; the message gives the reason.',
  },
  MESH_ERR_CA_MISMATCH: {
    http: 400,
    exit: NOPERM,
    hint: 'The registry presented a CA other than the pinned one: check --ca-fingerprint against `meshctl ca show` on the control plane.',
  },
  MESH_ERR_UNAVAILABLE: {
    http: 503,
    exit: UNAVAILABLE,
    hint: 'Check that the registry/agent is running and reachable (`meshctl registry start`, `systemctl status meshctl-agent`).',
  },
  MESH_ERR_TIMEOUT: {
    http: 504,
    exit: UNAVAILABLE,
    hint: 'The peer did not answer in time; check that it is running and not overloaded.',
  },
  MESH_ERR_STORE: {
    http: 500,
    exit: SOFTWARE,
    hint: "The store failed; check the registry log and the data directory's disk.",
  },
  MESH_ERR_STORE_COMPACTED: {
    http: 410,
    exit: SOFTWARE,
    hint: 'The requested revision is older than the store keeps; re-list and watch from the current revision.',
  },
  MESH_ERR_LEASE_NOT_FOUND: { http: 404, exit: SOFTWARE, hint: 'The lease expired or was revoked; grant a new one.' },
  MESH_ERR_INTERNAL: { http: 500, exit: SOFTWARE, hint: 'This is a bug in meshctl; please report it with the log.' },
  MESH_ERR_SERVICE_NOT_AUTHORIZED: {
    http: 403,
    exit: NOPERM,
    hint: 'An admin can allow it with `meshctl node allow NODE SERVICE`, or join the host with a token made by `meshctl token create --service SERVICE`.',
  },
  MESH_ERR_NODE_NAME_TAKEN: {
    http: 409,
    exit: DATAERR,
    hint: 'Pick another --node-name, or free the name first with `meshctl node remove NODE` on the control plane.',
  },
  MESH_ERR_TOKEN_EXPIRED: {
    http: 401,
    exit: NOPERM,
    hint: 'Make a new join token on the control plane: `meshctl token create --service NAME`.',
  },
  MESH_ERR_TOKEN_USED_UP: {
    http: 401,
    exit: NOPERM,
    hint: 'Make a new join token on the control plane: `meshctl token create --service NAME` (--uses N for more hosts).',
  },
  MESH_ERR_LAST_ADMIN_TOKEN: {
    http: 409,
    exit: DATAERR,
    hint: 'Make another admin token first (`meshctl token create --admin`), then revoke this one.',
  },
  MESH_ERR_RATE_LIMITED: {
    http: 429,
    exit: UNAVAILABLE,
    hint: 'Too many wrong tokens from this address; wait for the time in Retry-After, then use a valid token.',
  },
  MESH_ERR_EXEC_CHECKS_DISABLED: {
    http: 403,
    exit: NOPERM,
    hint: 'Use an http, tcp or ttl check; exec checks run only from definition files in the root-owned services directory of an agent started with --enable-exec-checks.',
  },
  MESH_ERR_STORE_UNAVAILABLE: {
    http: 503,
    exit: UNAVAILABLE,
    hint: 'The registry cannot reach a quorum of its etcd cluster; check the etcd members (`etcdctl endpoint health`). A write that failed this way may or may not have been applied: read before retrying.',
  },
  MESH_ERR_INVALID_CONFIG: {
    http: 400,
    exit: DATAERR,
    hint: 'Fix the config entry; the message names the document, the field and the reason. Nothing was changed.',
  },
  MESH_ERR_CONFIG_IN_USE: {
    http: 409,
    exit: DATAERR,
    hint: 'Remove or change the config entries that reference it first (`meshctl get config`), then delete it.',
  },
  MESH_ERR_ALREADY_RUNNING: {
    http: 409,
    exit: CANTCREAT,
    hint: 'Another agent already uses this data directory or socket: stop it first, or give this one its own --data-dir.',
  },
  MESH_ERR_UNSUPPORTED_MEDIA_TYPE: {
    http: 415,
    exit: DATAERR,
    hint: 'Send the body as JSON with `content-type: application/json`.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; details?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MeshError';
    this.code = code;
    this.hint = opts.hint ?? ERRORS[code].hint;
    this.details = opts.details;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }

  toJSON(): { code: ErrorCode; message: string; hint: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message, hint: this.hint }
      : { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

export function isMeshError(e: unknown): e is MeshError {
  return e instanceof MeshError;
}

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERRORS, s);
}

/** Wraps anything thrown into a MeshError, keeping MeshErrors as they are. */
export function toMeshError(e: unknown, fallback: ErrorCode = 'MESH_ERR_INTERNAL'): MeshError {
  if (e instanceof MeshError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new MeshError(fallback, message, { cause: e });
}

/** Exit code for anything thrown at the CLI's top level. */
export function exitCodeFor(e: unknown): number {
  return e instanceof MeshError ? e.exitCode : SOFTWARE;
}
