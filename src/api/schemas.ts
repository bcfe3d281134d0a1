/**
 * The registry API's wire contract: one zod schema per body and record, shared by the
 * registry (which validates every request with them), the agent and the CLI. Objects are
 * strict, so an unknown field is an error rather than silently dropped.
 */
import { z } from 'zod';
import { ADDRESS_RE, NAME_RE, SERVICE_PATTERN_RE, SERVICE_PATTERN_RULE, TRUST_DOMAIN_RE } from './names.js';

export { NAME_RE, SERVICE_PATTERN_RE, TRUST_DOMAIN_RE };

export const nameSchema = z
  .string()
  .regex(
    NAME_RE,
    'must be 1-63 lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit',
  );

/** A service name or pattern a node may serve (see SERVICE_PATTERN_RE). */
export const servicePatternSchema = z.string().regex(SERVICE_PATTERN_RE, `must be ${SERVICE_PATTERN_RULE}`);
const servicePatternsSchema = z.array(servicePatternSchema).max(64);

const metaKey = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'meta keys are 1-64 letters, digits, "_", "." or "-"');
const metaSchema = z
  .record(metaKey, z.string().max(512))
  .refine((m) => Object.keys(m).length <= 64, 'at most 64 meta entries');
const tagSchema = z.string().regex(/^[A-Za-z0-9_.=:-]{1,64}$/, 'tags are 1-64 letters, digits or "_.=:-"');

/** An address a mesh part can dial: IPv4, IPv6 or a hostname. */
export const addressSchema = z.string().min(1).max(253).regex(ADDRESS_RE, 'must be an IP address or hostname');

export const portSchema = z.number().int().min(1).max(65535);

export const checkStatusSchema = z.enum(['passing', 'warning', 'critical']);
export type CheckStatus = z.infer<typeof checkStatusSchema>;

export const checkDefinitionSchema = z
  .object({
    id: nameSchema,
    kind: z.enum(['http', 'tcp', 'exec', 'ttl']),
    /** http: URL; tcp: host:port; exec: command line; ttl: unused. */
    target: z.string().max(2048).default(''),
    intervalMs: z.number().int().min(100).max(86_400_000).default(10_000),
    timeoutMs: z.number().int().min(10).max(600_000).default(2_000),
    ttlMs: z.number().int().min(100).max(86_400_000).optional(),
    successBeforePassing: z.number().int().min(1).max(100).default(1),
    failuresBeforeCritical: z.number().int().min(1).max(100).default(1),
  })
  .strict();
export type CheckDefinition = z.infer<typeof checkDefinitionSchema>;

export const checkStateSchema = z
  .object({
    status: checkStatusSchema,
    output: z.string().max(4096).default(''),
    updatedAt: z.string(),
  })
  .strict();
export type CheckState = z.infer<typeof checkStateSchema>;

export const upstreamSchema = z
  .object({
    service: nameSchema,
    localPort: portSchema,
    localAddress: z.string().default('127.0.0.1'),
    loadBalancer: z.enum(['round_robin', 'weighted', 'least_request', 'random']).default('round_robin'),
  })
  .strict();
export type Upstream = z.infer<typeof upstreamSchema>;

/** What a registration says about one service instance (the writable part). */
export const serviceRegistrationSchema = z
  .object({
    id: nameSchema.optional(),
    name: nameSchema,
    address: addressSchema.optional(),
    port: portSchema,
    meshPort: portSchema.optional(),
    tags: z.array(tagSchema).max(32).default([]),
    meta: metaSchema.default({}),
    weight: z.number().int().min(1).max(1000).default(1),
    protocol: z.enum(['http', 'tcp']).default('tcp'),
    upstreams: z.array(upstreamSchema).max(64).default([]),
    checks: z.array(checkDefinitionSchema).max(16).default([]),
    /** Opt out of the sidecar proxy for this service. */
    proxy: z.boolean().default(true),
  })
  .strict();
export type ServiceRegistration = z.infer<typeof serviceRegistrationSchema>;

export const registerRequestSchema = z
  .object({
    node: nameSchema.optional(),
    service: serviceRegistrationSchema,
  })
  .strict();

/** A stored instance: the registration made complete by the registry. */
export interface ServiceInstance extends Omit<ServiceRegistration, 'id' | 'address'> {
  id: string;
  node: string;
  address: string;
  /** Check id → last reported state. A check not reported yet is critical. */
  checkStates: Record<string, CheckState>;
  /**
   * Set while the instance's sidecar drains (its agent said so when the sidecar was told to
   * stop): the instance is critical meanwhile, so callers drop it before its listeners close.
   */
  drainingSince?: string;
  registeredAt: string;
  updatedAt: string;
}

export type HealthStatus = CheckStatus;

/** An instance as queries return it: with the health the registry computed. */
export interface InstanceView extends ServiceInstance {
  nodeAlive: boolean;
  status: HealthStatus;
}

export interface ServiceSummary {
  name: string;
  instances: number;
  healthy: number;
  tags: string[];
  protocols: string[];
}

export const healthUpdateSchema = z
  .object({
    status: checkStatusSchema,
    output: z.string().max(65536).default(''),
  })
  .strict();

/** `PUT /v1/health/node/:node/service/:id/draining`: the instance's sidecar drains (true) or serves again (false). */
export const drainingUpdateSchema = z.object({ draining: z.boolean() }).strict();

export const nodeRecordSchema = z
  .object({
    name: nameSchema,
    address: addressSchema,
    meta: metaSchema.default({}),
    joinedAt: z.string(),
    certSerial: z.string().optional(),
    /** What this node may register and get leaves for: names or patterns, or any service (asked for by name). */
    authorization: z.object({ services: servicePatternsSchema, anyService: z.boolean() }).strict().optional(),
    /** The join token the node joined with. */
    joinedWith: z.string().optional(),
  })
  .strict();
export type NodeRecord = z.infer<typeof nodeRecordSchema>;

export interface NodeView extends NodeRecord {
  alive: boolean;
  lastSeen?: string;
  /** The registry this node's agent is on (its last heartbeat's). */
  registry?: string;
  services: number;
}

export const joinRequestSchema = z
  .object({
    nodeName: nameSchema,
    address: addressSchema,
    csr: z.string().min(1).max(16384),
    meta: metaSchema.default({}),
  })
  .strict();

export interface JoinResponse {
  nodeName: string;
  trustDomain: string;
  certificate: string;
  roots: string[];
  leaseTtlSeconds: number;
}

export const aliveRequestSchema = z
  .object({
    ttlSeconds: z.number().int().min(2).max(3600).default(15),
  })
  .strict();

export const intentionNameSchema = z.union([nameSchema, z.literal('*')]);
export const intentionActionSchema = z.enum(['allow', 'deny']);
export type IntentionAction = z.infer<typeof intentionActionSchema>;

export const intentionRequestSchema = z
  .object({
    source: intentionNameSchema,
    destination: intentionNameSchema,
    action: intentionActionSchema,
    description: z.string().max(512).default(''),
  })
  .strict();

export interface Intention {
  source: string;
  destination: string;
  action: IntentionAction;
  description: string;
  createdAt: string;
  updatedAt: string;
  /**
   * L7 permissions (service-intentions, src/api/config-entries.ts): when present, `action` lets
   * the connection in and these decide each request. Typed loosely here to keep schemas.ts free
   * of the config-entry schemas; the registry validated them when written.
   */
  permissions?: readonly unknown[];
}

export const signRequestSchema = z
  .object({
    service: nameSchema,
    csr: z.string().min(1).max(16384),
    ttlSeconds: z.number().int().min(60).max(31_536_000).optional(),
  })
  .strict();

export interface SignResponse {
  certificate: string;
  roots: string[];
  serial: string;
  notBefore: string;
  notAfter: string;
}

/** Join tokens live a day unless told otherwise. */
export const DEFAULT_JOIN_TOKEN_TTL_SECONDS = 86_400;

export const tokenCreateSchema = z
  .object({
    kind: z.enum(['join', 'admin']).default('join'),
    description: z.string().max(256).default(''),
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(31_536_000 * 10)
      .optional(),
    /** Join tokens: what a node joining with it may serve. */
    services: servicePatternsSchema.default([]),
    anyService: z.boolean().default(false),
    /** Join tokens: how many nodes may join with it. */
    uses: z.number().int().min(1).max(100_000).optional(),
    /** Join tokens: the admin approves taking over this node's name, if that node is dead. */
    replaceNode: nameSchema.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.kind === 'admin' && (t.services.length > 0 || t.anyService || t.uses !== undefined || t.replaceNode))
      ctx.addIssue({ code: 'custom', message: 'services, anyService, uses and replaceNode are for join tokens only' });
    if (t.anyService && t.services.length > 0)
      ctx.addIssue({ code: 'custom', message: 'give either services or anyService, not both' });
  });

/** A token as the API shows it (never its secret or hash); the registry stores this plus the hash. */
export interface TokenInfo {
  id: string;
  kind: 'admin' | 'join';
  description: string;
  createdAt: string;
  expiresAt?: string;
  revoked: boolean;
  /** Join tokens: service names or patterns a node joining with it may serve. */
  services?: string[];
  /** Join tokens: the node may serve any service name (asked for with --any-service). */
  anyService?: boolean;
  /** Join tokens: how many nodes may join with it; unlimited when absent. */
  maxUses?: number;
  /** Join tokens: how many nodes have joined with it. */
  uses?: number;
  /** Join tokens: the admin approved taking over this dead node's name. */
  replaceNode?: string;
}

/** What an admin changes about a node's authorization (`meshctl node allow|deny`). */
export const nodeAuthorizationSchema = z
  .object({
    action: z.enum(['allow', 'deny']),
    services: servicePatternsSchema.default([]),
    anyService: z.boolean().default(false),
  })
  .strict()
  .refine((b) => b.services.length > 0 || b.anyService, 'name at least one service, or anyService');

export interface ErrorBody {
  code: string;
  message: string;
  hint?: string;
}

/** Every read answers with the store revision it was made at (also in the X-Mesh-Index header). */
export interface Revisioned<T> {
  revision: number;
  data: T;
}
