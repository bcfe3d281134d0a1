import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { addressSchema, aliveRequestSchema, joinRequestSchema, type JoinResponse } from '../../api/schemas.js';
import { nodeId } from '../../ca/index.js';
import type { RegistryContext } from '../context.js';
import { assertActsFor } from '../auth.js';
import { nameParam, parseOrThrow } from '../validate.js';

const renewSchema = z.object({ csr: z.string().min(1).max(16384) }).strict();
const nodeUpdateSchema = z
  .object({ address: addressSchema, meta: z.record(z.string(), z.string().max(512)).default({}) })
  .strict();

export function nodeRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  const nodeCertTtlMs = ctx.config.nodeCertTtlSeconds * 1000;

  app.post('/v1/join', { config: { auth: 'join' } }, async (req): Promise<JoinResponse> => {
    const body = parseOrThrow(joinRequestSchema, req.body);
    // Sign first: a bad CSR must leave no node record behind.
    const signed = await ctx.ca.signCsr(body.csr, {
      expectedId: nodeId(ctx.config.trustDomain, body.nodeName),
      ttlMs: nodeCertTtlMs,
      usage: 'both',
    });
    const prev = await ctx.nodes.get(body.nodeName);
    await ctx.nodes.upsert({
      name: body.nodeName,
      address: body.address,
      meta: body.meta,
      joinedAt: prev?.joinedAt ?? new Date().toISOString(),
      certSerial: signed.serial,
    });
    ctx.log.info({ node: body.nodeName, address: body.address, rejoin: prev !== undefined }, 'node joined');
    return {
      nodeName: body.nodeName,
      trustDomain: ctx.config.trustDomain,
      certificate: signed.certPem,
      roots: [ctx.ca.rootPem],
      leaseTtlSeconds: ctx.config.leaseTtlSeconds,
    };
  });

  app.post('/v1/nodes/:node/certificate', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const body = parseOrThrow(renewSchema, req.body);
    const signed = await ctx.ca.signCsr(body.csr, {
      expectedId: nodeId(ctx.config.trustDomain, node),
      ttlMs: nodeCertTtlMs,
      usage: 'both',
    });
    return { certificate: signed.certPem, roots: [ctx.ca.rootPem], notAfter: signed.notAfter.toISOString() };
  });

  /** A joined node (proved by its certificate) restores its own record, e.g. after registry data loss. */
  app.put('/v1/nodes/:node', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const body = parseOrThrow(nodeUpdateSchema, req.body);
    const prev = await ctx.nodes.get(node);
    const next = {
      name: node,
      address: body.address,
      meta: body.meta,
      joinedAt: prev?.joinedAt ?? new Date().toISOString(),
      ...(prev?.certSerial ? { certSerial: prev.certSerial } : {}),
    };
    if (prev && JSON.stringify(prev) === JSON.stringify(next))
      return { revision: await ctx.store.revision(), changed: false };
    return { revision: await ctx.nodes.upsert(next), changed: true };
  });

  app.put('/v1/nodes/:node/alive', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const body = parseOrThrow(aliveRequestSchema, req.body ?? {});
    return ctx.nodes.heartbeat(node, body.ttlSeconds ?? ctx.config.leaseTtlSeconds);
  });

  app.delete('/v1/nodes/:node', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const res = await ctx.nodes.remove(node);
    ctx.log.info({ node }, 'node left');
    return res;
  });
}
