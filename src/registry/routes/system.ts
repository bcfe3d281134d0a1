import type { FastifyInstance } from 'fastify';
import { certExpiry } from '../../ca/index.js';
import type { RegistryContext } from '../context.js';

export function systemRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  /** The one anonymous endpoint: for load balancers and `systemctl` health probes. */
  app.get('/v1/health', { config: { auth: 'none' } }, async () => ({ status: 'ok' }));

  app.get('/v1/status', { config: { auth: 'any' } }, async () => ({
    trustDomain: ctx.config.trustDomain,
    revision: await ctx.store.revision(),
    store: ctx.store.kind,
    defaultIntention: ctx.config.defaultIntention,
    caFingerprint: ctx.ca.fingerprint,
    caNotAfter: certExpiry(ctx.ca.rootPem).toISOString(),
    blockingQueries: ctx.notifier.waiting,
    leaseTtlSeconds: ctx.config.leaseTtlSeconds,
  }));

  /** Every registry serving this mesh, so agents and the CLI know where to fail over. */
  app.get('/v1/status/peers', { config: { auth: 'any' } }, async () => ({
    self: ctx.peers.self.id,
    peers: await ctx.peers.list(),
  }));
}
