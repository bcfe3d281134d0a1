import type { FastifyInstance } from 'fastify';
import { MeshError } from '../../errors/index.js';
import { signRequestSchema, type SignResponse } from '../../api/schemas.js';
import { certExpiry, serviceId } from '../../ca/index.js';
import type { RegistryContext } from '../context.js';
import { parseOrThrow } from '../validate.js';
import { blockingRead } from './util.js';
import { assertMayServe } from '../authz.js';

export function caRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/v1/ca/roots', { config: { auth: 'any' } }, async () => ({
    trustDomain: ctx.config.trustDomain,
    roots: [
      { pem: ctx.ca.rootPem, fingerprint: ctx.ca.fingerprint, notAfter: certExpiry(ctx.ca.rootPem).toISOString() },
    ],
  }));

  /** Serials of revoked certificates not yet expired; sidecars refuse them (*blocking*). */
  app.get('/v1/ca/revoked', { config: { auth: 'any' } }, (req, reply) =>
    blockingRead(ctx, req, reply, ['revoked'], async () => {
      const { revision, revoked } = await ctx.revocations.list();
      return {
        revision,
        revoked: revoked.map((r) => ({ serial: r.serial, node: r.node, kind: r.kind, notAfter: r.notAfter })),
      };
    }),
  );

  /** A node gets a leaf for a service only if it may serve it and the service is registered on it. */
  app.post('/v1/ca/sign', { config: { auth: 'any' } }, async (req): Promise<SignResponse> => {
    const body = parseOrThrow(signRequestSchema, req.body);
    const p = req.principal;
    if (p?.kind === 'node') {
      const rec = await ctx.nodes.get(p.node);
      if (!rec)
        throw new MeshError('MESH_ERR_NOT_FOUND', `node '${p.node}' has not joined the mesh`, {
          hint: 'The agent restores its node record on its next sync; try again.',
        });
      try {
        assertMayServe(rec, body.service, 'certificate');
      } catch (e) {
        ctx.log.warn({ node: p.node, service: body.service }, 'certificate refused: service not authorized');
        throw e;
      }
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
    if (p?.kind === 'node')
      await ctx.revocations.recordIssued({
        serial: signed.serial,
        node: p.node,
        kind: 'leaf',
        service: body.service,
        notAfter: signed.notAfter.toISOString(),
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
