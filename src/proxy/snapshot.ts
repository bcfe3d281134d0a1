/**
 * The config snapshot the agent hands a proxy: everything the proxy needs to serve, in one
 * versioned document. The proxy never talks to the registry; it serves the last snapshot
 * it accepted until a newer one arrives ("fail static").
 *
 * Validation has two layers: the zod schema (shape, ranges, names), then checks across
 * fields that a schema cannot express (unique listeners, the certificate is this service's
 * and chains to the roots). A snapshot that fails either is refused whole.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { addressSchema, intentionActionSchema, intentionNameSchema, nameSchema } from '../api/schemas.js';
import { isValidTrustDomain, peerIdentity, serviceId, TRUST_DOMAIN_RULE, verifyChain } from '../ca/index.js';
import { MeshError } from '../errors/index.js';

/** Load balancer names, as the registry's upstream schema spells them. */
export const loadBalancerSchema = z.enum(['round_robin', 'weighted', 'least_request', 'random']);
export type LoadBalancerName = z.infer<typeof loadBalancerSchema>;

export const proxyProtocolSchema = z.enum(['http', 'tcp']);
export type ProxyProtocol = z.infer<typeof proxyProtocolSchema>;

const MAX_PEM = 16 * 1024;

/** A port the proxy listens on; 0 lets the OS pick one (tests), the agent always names one. */
const listenPortSchema = z.number().int().min(0).max(65535);
const portSchema = z.number().int().min(1).max(65535);
/** Where the inbound listener binds: an IP address or a host name (the node's advertised address). */
const bindAddressSchema = z
  .string()
  .min(1)
  .max(253)
  .refine(
    (a) => isIPv4(a) || isIPv6(a) || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(a),
    'must be an IP address (no brackets) or a host name',
  );
const loopbackSchema = z
  .string()
  .refine((a) => (isIPv4(a) && a.startsWith('127.')) || a === '::1', 'must be a loopback address (127.0.0.0/8 or ::1)');

const certPemSchema = z
  .string()
  .max(MAX_PEM)
  .refine((s) => s.includes('-----BEGIN CERTIFICATE-----'), 'must be a PEM certificate');
const keyPemSchema = z
  .string()
  .max(MAX_PEM)
  .refine((s) => /-----BEGIN (EC )?PRIVATE KEY-----/.test(s), 'must be a PEM private key (PKCS#8 or SEC1)');

export const endpointSchema = z
  .object({
    /** The instance id; stats and balancer state are keyed by it. */
    id: nameSchema,
    node: nameSchema,
    address: addressSchema,
    /** The instance's mesh (inbound) port. */
    port: portSchema,
    weight: z.number().int().min(1).max(1000).default(1),
  })
  .strict();
export type SnapshotEndpoint = z.infer<typeof endpointSchema>;

export const snapshotUpstreamSchema = z
  .object({
    service: nameSchema,
    protocol: proxyProtocolSchema,
    localAddress: loopbackSchema.default('127.0.0.1'),
    localPort: listenPortSchema,
    loadBalancer: loadBalancerSchema.default('round_robin'),
    /** Healthy instances only: the agent filters, the proxy trusts the list. */
    endpoints: z.array(endpointSchema).max(1024),
  })
  .strict();
export type SnapshotUpstream = z.infer<typeof snapshotUpstreamSchema>;

export const snapshotIntentionSchema = z
  .object({ source: intentionNameSchema, destination: intentionNameSchema, action: intentionActionSchema })
  .strict();

export const proxySnapshotSchema = z
  .object({
    /** Monotonic; the proxy refuses a snapshot older than the one it serves. */
    version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    trustDomain: z.string().refine(isValidTrustDomain, `must be ${TRUST_DOMAIN_RULE}`),
    service: z
      .object({
        name: nameSchema,
        id: nameSchema,
        protocol: proxyProtocolSchema,
        /** The mesh port on the host address, where peers' outbound proxies connect with mTLS. */
        inbound: z.object({ address: bindAddressSchema, port: listenPortSchema }).strict(),
        /** The local service itself. */
        app: z.object({ address: loopbackSchema.default('127.0.0.1'), port: portSchema }).strict(),
      })
      .strict(),
    tls: z
      .object({
        certPem: certPemSchema,
        keyPem: keyPemSchema,
        rootsPem: z.array(certPemSchema).min(1).max(16),
      })
      .strict(),
    defaultIntention: intentionActionSchema,
    intentions: z.array(snapshotIntentionSchema).max(100_000),
    upstreams: z.array(snapshotUpstreamSchema).max(64),
    /** Access logs of this proxy (access-log.ts): off when absent; a file, or stdout when enabled without a path. */
    accessLog: z
      .object({ enabled: z.boolean(), path: z.string().min(1).max(4096).optional() })
      .strict()
      .optional(),
  })
  .strict();

export type ProxySnapshot = z.infer<typeof proxySnapshotSchema>;
/** What a client writes (defaults may be left out). */
export type ProxySnapshotInput = z.input<typeof proxySnapshotSchema>;

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
  const r = proxySnapshotSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw invalid(issues.join('; '), r.error.issues.slice(0, 20));
  }
  checkConsistency(r.data, now);
  return r.data;
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

/** Whether the certificate in a parsed snapshot is outside its validity period at `now` (for a warning). */
export function certTimeProblem(s: ProxySnapshot, now: Date = new Date()): 'expired' | 'not-yet-valid' | undefined {
  const r = verifyChain(s.tls.certPem, s.tls.rootsPem, now);
  return !r.ok && (r.reason === 'expired' || r.reason === 'not-yet-valid') ? r.reason : undefined;
}

export function redactSnapshot(s: ProxySnapshot): RedactedSnapshot {
  return { ...s, tls: { certPem: s.tls.certPem, rootsPem: s.tls.rootsPem, keyPem: '[redacted]' } };
}
