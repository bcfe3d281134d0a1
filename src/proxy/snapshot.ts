/**
 * The config snapshot the agent hands a proxy: everything the proxy needs to serve, in one
 * versioned document. The proxy never talks to the registry; it serves the last snapshot
 * it accepted until a newer one arrives ("fail static").
 *
 * Validation has two layers: the schema (shape, ranges, names), then checks across
 * fields that a schema cannot express (unique listeners, the certificate is this service's
 * and chains to the roots). A snapshot that fails either is refused whole.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as v from 'valibot';
import { ADDRESS_RE, NAME_RE } from '../api/names.js';
import { peerIdentity } from '../ca/peer.js';
import { SERIAL_RE } from '../ca/serial.js';
import { isValidTrustDomain, NAME_RULE, serviceId, TRUST_DOMAIN_RULE } from '../ca/spiffe.js';
import { verifyChain } from '../ca/verify.js';
import { MeshError } from '../errors/index.js';

const nameSchema = v.pipe(v.string(), v.regex(NAME_RE, `must be ${NAME_RULE}`));
const intentionNameSchema = v.union([nameSchema, v.literal('*')], `must be a service name or "*"`);
const intentionActionSchema = v.picklist(['allow', 'deny']);
/** An address a mesh part can dial: IPv4, IPv6 or a host name (the registry's rule). */
const addressSchema = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(253),
  v.regex(ADDRESS_RE, 'must be an IP address or hostname'),
);

/** Load balancer names, as the registry's upstream schema spells them. */
export const loadBalancerSchema = v.picklist(['round_robin', 'weighted', 'least_request', 'random']);
export type LoadBalancerName = v.InferOutput<typeof loadBalancerSchema>;

export const proxyProtocolSchema = v.picklist(['http', 'tcp']);
export type ProxyProtocol = v.InferOutput<typeof proxyProtocolSchema>;

const MAX_PEM = 16 * 1024;

function intRange(min: number, max: number) {
  return v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
}
/** A port the proxy listens on; 0 lets the OS pick one (tests), the agent always names one. */
const listenPortSchema = intRange(0, 65535);
const portSchema = intRange(1, 65535);
/** Where the inbound listener binds: an IP address or a host name (the node's advertised address). */
const bindAddressSchema = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(253),
  v.check(
    (a) => isIPv4(a) || isIPv6(a) || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(a),
    'must be an IP address (no brackets) or a host name',
  ),
);
const loopbackSchema = v.pipe(
  v.string(),
  v.check((a) => (isIPv4(a) && a.startsWith('127.')) || a === '::1', 'must be a loopback address (127.0.0.0/8 or ::1)'),
);

const certPemSchema = v.pipe(
  v.string(),
  v.maxLength(MAX_PEM),
  v.check((s) => s.includes('-----BEGIN CERTIFICATE-----'), 'must be a PEM certificate'),
);
const keyPemSchema = v.pipe(
  v.string(),
  v.maxLength(MAX_PEM),
  v.check((s) => /-----BEGIN (EC )?PRIVATE KEY-----/.test(s), 'must be a PEM private key (PKCS#8 or SEC1)'),
);

export const endpointSchema = v.strictObject({
  /** The instance id; stats and balancer state are keyed by it. */
  id: nameSchema,
  node: nameSchema,
  address: addressSchema,
  /** The instance's mesh (inbound) port. */
  port: portSchema,
  weight: v.optional(intRange(1, 1000), 1),
});
export type SnapshotEndpoint = v.InferOutput<typeof endpointSchema>;

/**
 * An upstream's traffic policy in the snapshot, compiled by the agent from config entries
 * (src/agent/proxies/policy.ts): routes in order (the last one matches everything), each
 * ending in weighted splits over named targets; a target is a service or one of its subsets,
 * with its balancer and its healthy instances. Absent: today's single route to `endpoints`.
 */
const headerNameSchema = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9!#$%&'*+.^_`|~-]{1,256}$/, 'must be a lower-case header name'),
);
const headerMapSchema = v.record(headerNameSchema, v.pipe(v.string(), v.maxLength(8192)));
const headerModsSchema = v.strictObject({
  add: v.optional(headerMapSchema),
  set: v.optional(headerMapSchema),
  remove: v.optional(v.pipe(v.array(headerNameSchema), v.maxLength(64))),
});
export type SnapshotHeaderMods = v.InferOutput<typeof headerModsSchema>;
const patternSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(1024));
const headerMatchSchema = v.strictObject({
  name: headerNameSchema,
  present: v.optional(v.literal(true)),
  exact: v.optional(v.pipe(v.string(), v.maxLength(8192))),
  prefix: v.optional(v.pipe(v.string(), v.maxLength(8192))),
  suffix: v.optional(v.pipe(v.string(), v.maxLength(8192))),
  regex: v.optional(patternSchema),
  invert: v.optional(v.boolean()),
});
export type SnapshotHeaderMatch = v.InferOutput<typeof headerMatchSchema>;
const routeMatchSchema = v.strictObject({
  pathExact: v.optional(patternSchema),
  pathPrefix: v.optional(patternSchema),
  pathRegex: v.optional(patternSchema),
  methods: v.optional(v.pipe(v.array(v.pipe(v.string(), v.regex(/^[A-Z]{1,20}$/))), v.maxLength(16))),
  headers: v.optional(v.pipe(v.array(headerMatchSchema), v.maxLength(32))),
  query: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          name: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
          present: v.optional(v.literal(true)),
          exact: v.optional(v.pipe(v.string(), v.maxLength(8192))),
          regex: v.optional(patternSchema),
        }),
      ),
      v.maxLength(32),
    ),
  ),
});
export type SnapshotRouteMatch = v.InferOutput<typeof routeMatchSchema>;
const hashPolicySchema = v.strictObject({
  field: v.optional(v.picklist(['header', 'cookie', 'query_parameter'])),
  fieldValue: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  sourceIp: v.optional(v.literal(true)),
  terminal: v.optional(v.literal(true)),
});
export type SnapshotHashPolicy = v.InferOutput<typeof hashPolicySchema>;
const policyLoadBalancerSchema = v.strictObject({
  policy: v.picklist(['round_robin', 'weighted', 'least_request', 'random', 'ring_hash', 'maglev']),
  choiceCount: v.optional(intRange(2, 10)),
  minRingSize: v.optional(intRange(1, 8_388_608)),
  maxRingSize: v.optional(intRange(1, 8_388_608)),
  hashPolicies: v.optional(v.pipe(v.array(hashPolicySchema), v.maxLength(16))),
});
export type SnapshotLoadBalancer = v.InferOutput<typeof policyLoadBalancerSchema>;
const targetNameSchema = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9][a-z0-9_.-]{0,62}(\/[a-z0-9][a-z0-9_-]{0,62})?$/, 'must be SERVICE or SERVICE/SUBSET'),
);
const splitSchema = v.strictObject({
  /** Relative weight (> 0). */
  weight: v.pipe(v.number(), v.minValue(0), v.maxValue(100)),
  target: targetNameSchema,
  requestHeaders: v.optional(headerModsSchema),
  responseHeaders: v.optional(headerModsSchema),
});
export type SnapshotSplit = v.InferOutput<typeof splitSchema>;
/**
 * Resilience settings (issue 15) as config entries set them, in milliseconds: only what an
 * entry names is here; the proxy fills the rest with its defaults
 * (src/proxy/outbound/http/resilience.ts), so an absent object means "all defaults".
 */
const timeoutMsSchema = intRange(0, 3_600_000);
export const RETRY_CONDITIONS = ['connect-failure', 'reset', '5xx', 'gateway-error'] as const;
const retrySchema = v.strictObject({
  numRetries: v.optional(intRange(0, 10)),
  retryOn: v.optional(v.pipe(v.array(v.picklist(RETRY_CONDITIONS)), v.maxLength(8))),
  retryOnStatusCodes: v.optional(v.pipe(v.array(intRange(100, 599)), v.maxLength(32))),
  retryNonIdempotent: v.optional(v.boolean()),
  baseIntervalMs: v.optional(intRange(1, 60_000)),
  maxIntervalMs: v.optional(intRange(1, 600_000)),
});
export type SnapshotRetry = v.InferOutput<typeof retrySchema>;
const routeResilienceSchema = v.strictObject({
  requestTimeoutMs: v.optional(timeoutMsSchema),
  perTryTimeoutMs: v.optional(timeoutMsSchema),
  retry: v.optional(retrySchema),
});
export type SnapshotRouteResilience = v.InferOutput<typeof routeResilienceSchema>;
const limitSchema = intRange(1, 1_000_000);
export const snapshotResilienceSchema = v.strictObject({
  connectTimeoutMs: v.optional(intRange(1, 600_000)),
  requestTimeoutMs: v.optional(timeoutMsSchema),
  perTryTimeoutMs: v.optional(timeoutMsSchema),
  idleTimeoutMs: v.optional(intRange(1, 3_600_000)),
  retry: v.optional(retrySchema),
  retryBudget: v.optional(
    v.strictObject({
      percent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100))),
      minRetriesPerSecond: v.optional(intRange(0, 100_000)),
      ttlMs: v.optional(intRange(1000, 600_000)),
    }),
  ),
  limits: v.optional(
    v.strictObject({
      maxConnections: v.optional(limitSchema),
      maxPendingRequests: v.optional(limitSchema),
      maxConcurrentRequests: v.optional(limitSchema),
      maxConcurrentRetries: v.optional(limitSchema),
    }),
  ),
  outlier: v.optional(
    v.strictObject({
      intervalMs: v.optional(intRange(100, 3_600_000)),
      consecutiveErrors: v.optional(intRange(0, 1000)),
      baseEjectionTimeMs: v.optional(intRange(100, 3_600_000)),
      maxEjectionPercent: v.optional(intRange(0, 100)),
    }),
  ),
});
export type SnapshotResilience = v.InferOutput<typeof snapshotResilienceSchema>;
const routeSchema = v.strictObject({
  /** Said in mesh answers: `route 2 of service-router api`. */
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  /** Absent: matches every request. */
  match: v.optional(routeMatchSchema),
  prefixRewrite: v.optional(patternSchema),
  requestHeaders: v.optional(headerModsSchema),
  responseHeaders: v.optional(headerModsSchema),
  /** Pick the split by this hash (sticky splitter), not at random. */
  stickyHash: v.optional(v.pipe(v.array(hashPolicySchema), v.maxLength(16))),
  splits: v.pipe(v.array(splitSchema), v.minLength(1), v.maxLength(4096)),
  /** The route's own timeouts and retries (service-router destination), over the upstream's. */
  resilience: v.optional(routeResilienceSchema),
});
export type SnapshotRoute = v.InferOutput<typeof routeSchema>;
const targetSchema = v.strictObject({
  name: targetNameSchema,
  service: nameSchema,
  subset: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/))),
  loadBalancer: policyLoadBalancerSchema,
  endpoints: v.pipe(v.array(endpointSchema), v.maxLength(1024)),
});
export type SnapshotTarget = v.InferOutput<typeof targetSchema>;
export const snapshotPolicySchema = v.strictObject({
  routes: v.pipe(v.array(routeSchema), v.minLength(1), v.maxLength(257)),
  targets: v.pipe(v.array(targetSchema), v.minLength(1), v.maxLength(1024)),
});
export type SnapshotPolicy = v.InferOutput<typeof snapshotPolicySchema>;

export const snapshotUpstreamSchema = v.strictObject({
  service: nameSchema,
  protocol: proxyProtocolSchema,
  localAddress: v.optional(loopbackSchema, '127.0.0.1'),
  localPort: listenPortSchema,
  loadBalancer: v.optional(loadBalancerSchema, 'round_robin'),
  /** Healthy instances only: the agent filters, the proxy trusts the list. */
  endpoints: v.pipe(v.array(endpointSchema), v.maxLength(1024)),
  /** Routes, splits and subsets from config entries (docs/POLICY.md); absent: all of it to `endpoints`. */
  policy: v.optional(snapshotPolicySchema),
  /** Timeouts, retries, limits, outlier ejection from service-defaults; absent: the defaults. */
  resilience: v.optional(snapshotResilienceSchema),
});
export type SnapshotUpstream = v.InferOutput<typeof snapshotUpstreamSchema>;

const permissionSchema = v.strictObject({
  action: intentionActionSchema,
  pathExact: v.optional(patternSchema),
  pathPrefix: v.optional(patternSchema),
  pathRegex: v.optional(patternSchema),
  methods: v.optional(v.pipe(v.array(v.pipe(v.string(), v.regex(/^[A-Z]{1,20}$/))), v.maxLength(16))),
  headers: v.optional(v.pipe(v.array(headerMatchSchema), v.maxLength(32))),
});
export type SnapshotPermission = v.InferOutput<typeof permissionSchema>;

export const snapshotIntentionSchema = v.strictObject({
  source: intentionNameSchema,
  destination: intentionNameSchema,
  action: intentionActionSchema,
  /** L7: ordered rules for each request of this source (service-intentions permissions). */
  permissions: v.optional(v.pipe(v.array(permissionSchema), v.minLength(1), v.maxLength(64))),
});

/**
 * The snapshot's schema. valibot rather than zod (which the registry and the CLI use): a
 * proxy loads only what it runs, and zod costs every proxy process about 12 MB of memory
 * against about 2 MB for valibot (docs/BENCHMARKS.md, "RSS").
 */
export const proxySnapshotSchema = v.strictObject({
  /** Monotonic; the proxy refuses a snapshot older than the one it serves. */
  version: intRange(0, Number.MAX_SAFE_INTEGER),
  trustDomain: v.pipe(
    v.string(),
    v.check((td: string) => isValidTrustDomain(td), `must be ${TRUST_DOMAIN_RULE}`),
  ),
  service: v.strictObject({
    name: nameSchema,
    id: nameSchema,
    protocol: proxyProtocolSchema,
    /** The mesh port on the host address, where peers' outbound proxies connect with mTLS. */
    inbound: v.strictObject({ address: bindAddressSchema, port: listenPortSchema }),
    /** The local service itself. */
    app: v.strictObject({ address: v.optional(loopbackSchema, '127.0.0.1'), port: portSchema }),
  }),
  tls: v.strictObject({
    certPem: certPemSchema,
    keyPem: keyPemSchema,
    rootsPem: v.pipe(v.array(certPemSchema), v.minLength(1), v.maxLength(16)),
  }),
  defaultIntention: intentionActionSchema,
  intentions: v.pipe(v.array(snapshotIntentionSchema), v.maxLength(100_000)),
  upstreams: v.pipe(v.array(snapshotUpstreamSchema), v.maxLength(64)),
  /**
   * Serials (uppercase hex) of revoked service leaves not yet expired: the inbound refuses a
   * client presenting one, the outbound a server presenting one, and both close the open
   * connections made with it (src/proxy/revoked.ts, outbound/revoked-servers.ts).
   */
  revokedSerials: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(SERIAL_RE, 'must be a certificate serial in uppercase hex'))),
      v.maxLength(100_000),
    ),
    [],
  ),
  /** Access logs of this proxy (access-log.ts): off when absent; a file, or stdout when enabled without a path. */
  accessLog: v.optional(
    v.strictObject({ enabled: v.boolean(), path: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(4096))) }),
  ),
});

export type ProxySnapshot = v.InferOutput<typeof proxySnapshotSchema>;
/** What a client writes (defaults may be left out). */
export type ProxySnapshotInput = v.InferInput<typeof proxySnapshotSchema>;

/** The snapshot without the private key: what `GET /snapshot` shows. */
export type RedactedSnapshot = Omit<ProxySnapshot, 'tls'> & {
  tls: { certPem: string; rootsPem: string[]; keyPem: '[redacted]' };
};

function invalid(message: string, details?: unknown): MeshError {
  return new MeshError('MESH_ERR_BAD_REQUEST', `invalid proxy snapshot: ${message}`, {
    hint: 'The proxy keeps serving its previous snapshot; fix the snapshot (the message names the field) and push it again.',
    details,
  });
}

/**
 * Parses and checks a snapshot. Throws MESH_ERR_BAD_REQUEST naming the field on any
 * problem; never returns a partly valid snapshot.
 */
export function parseSnapshot(input: unknown, now: Date = new Date()): ProxySnapshot {
  const r = v.safeParse(proxySnapshotSchema, input);
  if (!r.success) {
    const issues = r.issues.map((i) => ({ path: v.getDotPath(i) ?? '(root)', message: i.message }));
    throw invalid(
      issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; '),
      issues.slice(0, 20),
    );
  }
  checkConsistency(r.output, now);
  return r.output;
}

function checkConsistency(s: ProxySnapshot, now: Date): void {
  const listeners = new Map<string, string>();
  const claim = (address: string, port: number, what: string) => {
    if (port === 0) return;
    const key = `${address}:${port}`;
    const prev = listeners.get(key);
    if (prev) throw invalid(`${what} listens on ${key}, which ${prev} already uses`);
    listeners.set(key, what);
  };
  claim(s.service.inbound.address, s.service.inbound.port, 'the inbound listener');
  const services = new Set<string>();
  s.upstreams.forEach((u, i) => {
    if (services.has(u.service)) throw invalid(`upstreams.${i}: upstream "${u.service}" is listed twice`);
    services.add(u.service);
    claim(u.localAddress, u.localPort, `upstream "${u.service}"`);
    const ids = new Set<string>();
    for (const e of u.endpoints) {
      if (ids.has(e.id)) throw invalid(`upstreams.${i}.endpoints: endpoint id "${e.id}" is listed twice`);
      ids.add(e.id);
    }
    if (u.policy) checkPolicy(u.policy, `upstreams.${i}.policy`);
  });

  // The certificate must be this service's identity, or every peer would refuse it.
  const expected = serviceId(s.trustDomain, s.service.name);
  const id = peerIdentity(s.tls.certPem, { trustDomain: s.trustDomain, kind: 'svc', name: s.service.name });
  if (!id.ok) throw invalid(`tls.certPem is not a certificate for ${expected} (${id.reason})`);
  let chain;
  try {
    chain = verifyChain(s.tls.certPem, s.tls.rootsPem, now);
  } catch (e) {
    throw invalid(e instanceof Error ? e.message : String(e));
  }
  // An expired or not-yet-valid leaf is served anyway (fail static beats no proxy at all,
  // and the agent will push a fresh one); a leaf the roots do not sign is a wrong snapshot.
  if (!chain.ok && chain.reason !== 'expired' && chain.reason !== 'not-yet-valid') {
    throw invalid(`tls.certPem does not chain to tls.rootsPem (${chain.reason})`);
  }
}

function checkPolicy(p: SnapshotPolicy, at: string): void {
  const targets = new Set<string>();
  p.targets.forEach((t, j) => {
    if (targets.has(t.name)) throw invalid(`${at}.targets.${j}: target "${t.name}" is listed twice`);
    targets.add(t.name);
    const ids = new Set<string>();
    for (const e of t.endpoints) {
      if (ids.has(e.id)) throw invalid(`${at}.targets.${j}.endpoints: endpoint id "${e.id}" is listed twice`);
      ids.add(e.id);
    }
  });
  p.routes.forEach((r, j) =>
    r.splits.forEach((s, k) => {
      if (!targets.has(s.target))
        throw invalid(`${at}.routes.${j}.splits.${k}: target "${s.target}" is not in policy.targets`);
    }),
  );
  const last = p.routes[p.routes.length - 1]!;
  if (last.match) throw invalid(`${at}.routes: the last route must match every request (no match)`);
}

/** Whether the certificate in a parsed snapshot is outside its validity period at `now` (for a warning). */
export function certTimeProblem(s: ProxySnapshot, now: Date = new Date()): 'expired' | 'not-yet-valid' | undefined {
  const r = verifyChain(s.tls.certPem, s.tls.rootsPem, now);
  return !r.ok && (r.reason === 'expired' || r.reason === 'not-yet-valid') ? r.reason : undefined;
}

export function redactSnapshot(s: ProxySnapshot): RedactedSnapshot {
  return { ...s, tls: { certPem: s.tls.certPem, rootsPem: s.tls.rootsPem, keyPem: '[redacted]' } };
}
