import type { FastifyInstance } from 'fastify';
import { MeshError } from '../../errors/index.js';
import { signRequestSchema, type SignResponse } from '../../api/schemas.js';
import { certExpiry, serviceId } from '../../ca/index.js';
import type { RegistryContext } from '../context.js';
import { parseOrThrow } from '../validate.js';

export function caRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/v1/ca/roots', { config: { auth: 'any' } }, async () => ({
    trustDomain: ctx.config.trustDomain,
    roots: [
      { pem: ctx.ca.rootPem, fingerprint: ctx.ca.fingerprint, notAfter: certExpiry(ctx.ca.rootPem).toISOString() },
    ],
  }));

  /** A node gets a leaf for a service only if that service is registered on it. */
  app.post('/v1/ca/sign', { config: { auth: 'any' } }, async (req): Promise<SignResponse> => {
    const body = parseOrThrow(signRequestSchema, req.body);
    const p = req.principal;
    if (p?.kind === 'node') {
      const mine = await ctx.catalog.onNode(p.node);
      if (!mine.some((i) => i.name === body.service)) {
        throw new MeshError('MESH_ERR_FORBIDDEN', `service '${body.service}' is not registered on node '${p.node}'`, {
          hint: 'Register the service on this node before asking for its certificate.',
        });
      }
    }
    const ttlMs = (body.ttlSeconds ?? ctx.config.leafTtlSeconds) * 1000;
    const signed = await ctx.ca.signCsr(body.csr, {
      expectedId: serviceId(ctx.config.trustDomain, body.service),
      ttlMs,
      usage: 'both',
    });
    return {
      certificate: signed.certPem,
      roots: [ctx.ca.rootPem],
      serial: signed.serial,
      notBefore: signed.notBefore.toISOString(),
      notAfter: signed.notAfter.toISOString(),
    };
  });
}
