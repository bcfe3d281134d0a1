import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { nameSchema } from '../../api/schemas.js';
import type { NodeMetricsReport } from '../../api/metrics.js';
import type { RegistryContext } from '../context.js';
import { assertActsFor } from '../auth.js';
import { nameParam, parseOrThrow } from '../validate.js';

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const countMap = z.record(z.string().max(128), count).refine((m) => Object.keys(m).length <= 64, 'at most 64 entries');
const counters = {
  requests: count,
  responses: countMap,
  meshErrors: countMap,
  activeConnections: count,
  totalConnections: count,
  bytesIn: count,
  bytesOut: count,
  latency: z.string().max(65_536),
};
const targetName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,62}(\/[a-z0-9][a-z0-9_-]{0,62})?$/, 'SERVICE or SERVICE/SUBSET');
const endpointSchema = z
  .object({ endpoint: z.string().max(128), node: nameSchema.optional(), subset: targetName.optional(), ...counters })
  .strict();
const subsetSchema = z.object({ subset: targetName, ...counters }).strict();
const resilienceSchema = z
  .object({
    retries: count,
    retryBudgetExhausted: count,
    timeouts: count,
    circuitOpen: countMap,
    ejections: count,
    ejected: count,
  })
  .strict();
const upstreamSchema = z
  .object({
    service: nameSchema,
    endpoints: z.array(endpointSchema).max(4096),
    subsets: z.array(subsetSchema).max(1024).optional(),
    ...counters,
    resilience: resilienceSchema.optional(),
  })
  .strict();
const reportSchema = z
  .object({
    sampledAt: count,
    proxies: z
      .array(
        z
          .object({
            service: nameSchema,
            serviceId: nameSchema,
            node: nameSchema,
            inbound: z.object({ tlsFailures: countMap, ...counters }).strict(),
            upstreams: z.array(upstreamSchema).max(64),
          })
          .strict(),
      )
      .max(256),
  })
  .strict();

export function metricsRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  const hub = ctx.metrics;
  app.put('/v1/metrics/node/:node', { config: { auth: 'any' }, bodyLimit: 1024 * 1024 }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    hub.ingest(node, parseOrThrow(reportSchema, req.body) as NodeMetricsReport);
    return { accepted: true };
  });

  // The whole mesh's figures: this registry's agents' and those its peers hold (metrics-peers.ts).
  app.get('/v1/metrics/services', { config: { auth: 'any' } }, async () => {
    if (!ctx.peerMetrics.enabled) return hub.overview();
    const peers = await ctx.peerMetrics.fetch();
    return {
      ...hub.overview(peers.samples),
      registries: { asked: 1 + peers.answered.length + peers.missing.length, missing: peers.missing },
    };
  });

  // Another registry of the mesh reads this one's samples (it checks the peer key itself).
  app.get('/v1/metrics/local', { config: { auth: 'none' } }, async (req) => {
    ctx.peerMetrics.checkPeer(req.headers.authorization);
    return hub.localSamples();
  });
}
