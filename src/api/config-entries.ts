/**
 * Config entries: the traffic-policy objects of the registry, after Consul's kinds and field
 * names (snake_case). One zod schema per kind checks the shape of one document; what needs
 * several documents or a compiled regex (weights summing to 100, subsets that exist, cycles,
 * regexes, filters) is checked in src/registry/config-validate.ts over the whole set.
 *
 * Objects are strict (a misspelt field is an error, not silently ignored), and the parsed
 * form is the stored form, in the schema's field order, so `get config` output re-applies
 * to exactly what is stored.
 */
import { z } from 'zod';
import { routeDestinationResilience, serviceDefaultsResilience } from './config-resilience.js';
import { nameSchema } from './schemas.js';

import type { ConfigKind } from './config-kinds.js';
export { CONFIG_KINDS, isConfigKind, type ConfigKind } from './config-kinds.js';

/** Subset names end up in reasons and metric labels (`api/v2`): DNS-label-like, no dots. */
export const SUBSET_NAME_RE = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;
const subsetName = z
  .string()
  .regex(
    SUBSET_NAME_RE,
    'must be 1-63 lowercase letters, digits, "-" or "_", starting and ending with a letter or digit',
  );

const pathSchema = z.string().min(1).max(1024).startsWith('/', 'must start with "/"');
/** A regex's syntax is checked by re2js in config-validate; here only its size. */
const regexSchema = z.string().min(1).max(1024);
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$/, 'must be an HTTP header name (token characters)')
  .transform((s) => s.toLowerCase());
const headerValue = z.string().max(8192);
const methodSchema = z.string().regex(/^[A-Z]{1,20}$/, 'must be an HTTP method in capitals (GET, POST, ...)');

/** Consul's HTTPHeaderModifiers. */
const headerModifiers = z
  .object({
    add: z.record(headerName, headerValue).optional(),
    set: z.record(headerName, headerValue).optional(),
    remove: z.array(headerName).max(64).optional(),
  })
  .strict();
export type HeaderModifiers = z.infer<typeof headerModifiers>;

export const LB_POLICIES = ['round_robin', 'least_request', 'random', 'weighted', 'ring_hash', 'maglev'] as const;
export type LbPolicy = (typeof LB_POLICIES)[number];

const hashPolicy = z
  .object({
    /** What to hash: a header or cookie (named by field_value), or (with source_ip) the caller's address. */
    field: z.enum(['header', 'cookie', 'query_parameter']).optional(),
    field_value: z.string().min(1).max(256).optional(),
    source_ip: z.boolean().optional(),
    /** Stop at this policy when it produced a hash (later ones are fallbacks). */
    terminal: z.boolean().optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.source_ip && h.field !== undefined)
      ctx.addIssue({ code: 'custom', message: 'give either field (with field_value) or source_ip, not both' });
    else if (!h.source_ip && (h.field === undefined || h.field_value === undefined))
      ctx.addIssue({ code: 'custom', message: 'needs field and field_value, or source_ip: true' });
  });
export type HashPolicy = z.infer<typeof hashPolicy>;

export const loadBalancerSchema = z
  .object({
    policy: z.enum(LB_POLICIES),
    least_request_config: z
      .object({ choice_count: z.number().int().min(2).max(10) })
      .strict()
      .optional(),
    ring_hash_config: z
      .object({
        minimum_ring_size: z.number().int().min(1).max(8_388_608).optional(),
        maximum_ring_size: z.number().int().min(1).max(8_388_608).optional(),
      })
      .strict()
      .optional(),
    hash_policies: z.array(hashPolicy).min(1).max(16).optional(),
  })
  .strict()
  .superRefine((lb, ctx) => {
    const hashing = lb.policy === 'ring_hash' || lb.policy === 'maglev';
    if (hashing && !lb.hash_policies)
      ctx.addIssue({ code: 'custom', path: ['hash_policies'], message: `${lb.policy} needs at least one hash policy` });
    if (!hashing && lb.hash_policies)
      ctx.addIssue({ code: 'custom', path: ['hash_policies'], message: 'only ring_hash and maglev use hash policies' });
    if (lb.least_request_config && lb.policy !== 'least_request')
      ctx.addIssue({ code: 'custom', path: ['least_request_config'], message: 'only for policy least_request' });
    if (lb.ring_hash_config && lb.policy !== 'ring_hash')
      ctx.addIssue({ code: 'custom', path: ['ring_hash_config'], message: 'only for policy ring_hash' });
  });
export type LoadBalancer = z.infer<typeof loadBalancerSchema>;

export const serviceDefaultsSchema = z
  .object({
    kind: z.literal('service-defaults'),
    name: nameSchema,
    protocol: z.enum(['http', 'tcp']).optional(),
    /** How callers balance over this service's instances when no resolver says otherwise. */
    load_balancer: loadBalancerSchema.optional(),
    /** Timeouts, retries, retry budget, limits, passive health check of callers (./config-resilience.ts). */
    ...serviceDefaultsResilience,
  })
  .strict();
export type ServiceDefaults = z.infer<typeof serviceDefaultsSchema>;

export const serviceResolverSchema = z
  .object({
    kind: z.literal('service-resolver'),
    name: nameSchema,
    default_subset: subsetName.optional(),
    subsets: z
      .record(
        subsetName,
        z
          .object({
            /** The filter language of src/api/filter.ts over the instance's meta and tags. */
            filter: z.string().min(1).max(1024),
            /** Like Consul: only passing instances (warning ones left out too). */
            only_passing: z.boolean().optional(),
            /** meshctl: a subset may balance its own way (Consul has one balancer per resolver). */
            load_balancer: loadBalancerSchema.optional(),
          })
          .strict(),
      )
      .refine((s) => Object.keys(s).length <= 64, 'at most 64 subsets')
      .optional(),
    load_balancer: loadBalancerSchema.optional(),
  })
  .strict();
export type ServiceResolver = z.infer<typeof serviceResolverSchema>;

/** Weights: at most two decimals (checked in hundredths by config-validate), 0-100. */
const weightSchema = z.number().min(0).max(100);

export const serviceSplitterSchema = z
  .object({
    kind: z.literal('service-splitter'),
    name: nameSchema,
    splits: z
      .array(
        z
          .object({
            weight: weightSchema,
            /** Defaults to the splitter's own service. */
            service: nameSchema.optional(),
            service_subset: subsetName.optional(),
            request_headers: headerModifiers.optional(),
            response_headers: headerModifiers.optional(),
          })
          .strict(),
      )
      .min(1)
      .max(64),
    /** meshctl: pick the split by the resolver's hash policy, so one user stays on one version. */
    sticky: z.boolean().optional(),
  })
  .strict();
export type ServiceSplitter = z.infer<typeof serviceSplitterSchema>;

const headerMatch = z
  .object({
    name: headerName,
    /** Only true: write `present: true` with `invert: true` for "absent". */
    present: z.literal(true).optional(),
    exact: headerValue.optional(),
    prefix: headerValue.optional(),
    suffix: headerValue.optional(),
    regex: regexSchema.optional(),
    invert: z.boolean().optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    const n = ['present', 'exact', 'prefix', 'suffix', 'regex'].filter((k) => h[k as keyof typeof h] !== undefined);
    if (n.length !== 1)
      ctx.addIssue({ code: 'custom', message: 'give exactly one of present, exact, prefix, suffix, regex' });
  });
export type HeaderMatch = z.infer<typeof headerMatch>;

const queryMatch = z
  .object({
    name: z.string().min(1).max(256),
    /** Only true: write `present: true` with `invert: true` for "absent". */
    present: z.literal(true).optional(),
    exact: z.string().max(8192).optional(),
    regex: regexSchema.optional(),
  })
  .strict()
  .superRefine((q, ctx) => {
    const n = ['present', 'exact', 'regex'].filter((k) => q[k as keyof typeof q] !== undefined);
    if (n.length !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of present, exact, regex' });
  });

function onePath(
  m: { path_exact?: string | undefined; path_prefix?: string | undefined; path_regex?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  const n = [m.path_exact, m.path_prefix, m.path_regex].filter((x) => x !== undefined).length;
  if (n > 1) ctx.addIssue({ code: 'custom', message: 'give at most one of path_exact, path_prefix, path_regex' });
}

const httpRouteMatch = z
  .object({
    path_exact: pathSchema.optional(),
    path_prefix: pathSchema.optional(),
    path_regex: regexSchema.optional(),
    header: z.array(headerMatch).max(32).optional(),
    query_param: z.array(queryMatch).max(32).optional(),
    methods: z.array(methodSchema).min(1).max(16).optional(),
  })
  .strict()
  .superRefine(onePath);

const routeDestination = z
  .object({
    /** Defaults to the router's own service. */
    service: nameSchema.optional(),
    service_subset: subsetName.optional(),
    /** Replaces the matched path prefix (path_prefix or path_exact match) before forwarding. */
    prefix_rewrite: pathSchema.optional(),
    request_headers: headerModifiers.optional(),
    response_headers: headerModifiers.optional(),
    /** The route's own timeouts and retries, over the service-defaults' (./config-resilience.ts). */
    ...routeDestinationResilience,
  })
  .strict();
export type RouteDestination = z.infer<typeof routeDestination>;

export const serviceRouterSchema = z
  .object({
    kind: z.literal('service-router'),
    name: nameSchema,
    routes: z
      .array(
        z
          .object({
            /** No match (or an empty one) matches every request. */
            match: z.object({ http: httpRouteMatch.optional() }).strict().optional(),
            destination: routeDestination.optional(),
          })
          .strict()
          .superRefine((r, ctx) => {
            if (r.destination?.prefix_rewrite && !r.match?.http?.path_prefix && !r.match?.http?.path_exact)
              ctx.addIssue({
                code: 'custom',
                path: ['destination', 'prefix_rewrite'],
                message: 'needs a path_prefix or path_exact match (it replaces the matched prefix)',
              });
          }),
      )
      .max(256),
  })
  .strict();
export type ServiceRouter = z.infer<typeof serviceRouterSchema>;
export type ServiceRoute = ServiceRouter['routes'][number];

const intentionTarget = z.union([nameSchema, z.literal('*')]);

const permission = z
  .object({
    action: z.enum(['allow', 'deny']),
    http: z
      .object({
        path_exact: pathSchema.optional(),
        path_prefix: pathSchema.optional(),
        path_regex: regexSchema.optional(),
        methods: z.array(methodSchema).min(1).max(16).optional(),
        header: z.array(headerMatch).max(32).optional(),
      })
      .strict()
      .superRefine(onePath),
  })
  .strict();
export type IntentionPermission = z.infer<typeof permission>;

export const intentionSourceSchema = z
  .object({
    name: intentionTarget,
    /** L4: the whole connection. Exclusive with permissions. */
    action: z.enum(['allow', 'deny']).optional(),
    /** L7: ordered rules, the first that matches decides; none matching means the default. */
    permissions: z.array(permission).min(1).max(64).optional(),
    description: z.string().max(512).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.action === undefined) === (s.permissions === undefined))
      ctx.addIssue({ code: 'custom', message: 'give either action (allow|deny) or permissions, not both' });
  });
export type IntentionSource = z.infer<typeof intentionSourceSchema>;

export const serviceIntentionsSchema = z
  .object({
    kind: z.literal('service-intentions'),
    /** The destination service, or * for every one. */
    name: intentionTarget,
    sources: z.array(intentionSourceSchema).max(1024),
  })
  .strict();
export type ServiceIntentions = z.infer<typeof serviceIntentionsSchema>;

export const configEntrySchema = z.discriminatedUnion('kind', [
  serviceDefaultsSchema,
  serviceResolverSchema,
  serviceSplitterSchema,
  serviceRouterSchema,
  serviceIntentionsSchema,
]);
export type ConfigEntry = z.infer<typeof configEntrySchema>;

/** `service-router/api`: how messages, history and the CLI name an entry. */
export function entryRef(e: { kind: string; name: string }): string {
  return `${e.kind}/${e.name}`;
}

/** An entry as the registry answers it: the entry and the store revisions that made it. */
export interface StoredConfigEntry {
  entry: ConfigEntry;
  createRevision: number;
  modRevision: number;
}

export type ConfigChangeOp = 'create' | 'update' | 'delete';

/** One line of `config history`: an entry changed in one store transaction. */
export interface ConfigHistoryRecord {
  revision: number;
  time: string;
  /** `admin token 3f2a…` or `node web-1`. */
  who: string;
  kind: ConfigKind;
  name: string;
  op: ConfigChangeOp;
  /** For a split: the weights after the change, so "who sent 30 % to v2" reads off the list. */
  summary: string;
}

/** What `POST /v1/config/apply` answers. */
export interface ApplyResult {
  dryRun: boolean;
  /** Store revision after the apply (unchanged on a dry run or when nothing changed). */
  revision: number;
  changes: Array<{ kind: ConfigKind; name: string; op: ConfigChangeOp | 'unchanged' }>;
  /** A unified diff of live → applied, as YAML, only for changed entries. */
  diff: string;
}
