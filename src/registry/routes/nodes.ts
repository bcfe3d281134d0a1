import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  addressSchema,
  aliveRequestSchema,
  joinRequestSchema,
  nodeAuthorizationSchema,
  type JoinResponse,
  type NodeRecord,
} from '../../api/schemas.js';
import { MeshError } from '../../errors/index.js';
import { nodeId } from '../../ca/index.js';
import type { RegistryContext } from '../context.js';
import { assertActsFor } from '../auth.js';
import { authorizeNode, joinNode, removeNode } from '../membership.js';
import { authorizationOf } from '../authz.js';
import { keys } from '../keys.js';
import { nameParam, parseOrThrow } from '../validate.js';

const renewSchema = z.object({ csr: z.string().min(1).max(16384) }).strict();
const nodeUpdateSchema = z
  .object({ address: addressSchema, meta: z.record(z.string(), z.string().max(512)).default({}) })
  .strict();

export function nodeRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  const nodeCertTtlMs = ctx.config.nodeCertTtlSeconds * 1000;

  app.post('/v1/join', { config: { auth: 'join' } }, async (req): Promise<JoinResponse> => {
    const body = parseOrThrow(joinRequestSchema, req.body);
    const joined = await joinNode(ctx, req.principal!, body);
    return {
      nodeName: body.nodeName,
      trustDomain: ctx.config.trustDomain,
      certificate: joined.certificate,
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
    await ctx.revocations.recordIssued({
      serial: signed.serial,
      node,
      kind: 'node',
      notAfter: signed.notAfter.toISOString(),
    });
    // After registry data loss the record may be missing until the node's next full sync restores it.
    const rec = await ctx.nodes.get(node);
    if (rec) await ctx.nodes.upsert({ ...rec, certSerial: signed.serial });
    return { certificate: signed.certPem, roots: [ctx.ca.rootPem], notAfter: signed.notAfter.toISOString() };
  });

  /** A node with its authorization, liveness and instances (`meshctl node show`). */
  app.get('/v1/nodes/:node', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const rec = await existingNode(ctx, node);
    const [alive, instances, issued] = await Promise.all([
      ctx.nodes.isAlive(node),
      ctx.catalog.onNode(node),
      ctx.store.range(keys.issuedPrefix(node)),
    ]);
    const lastSeen = ctx.nodes.lastSeen(node);
    return {
      node: {
        ...rec,
        authorization: authorizationOf(rec),
        alive,
        ...(lastSeen ? { lastSeen } : {}),
        instances: instances.map((i) => ({ id: i.id, name: i.name, port: i.port })),
        certificates: issued.kvs.length,
      },
    };
  });

  /** The admin allows or denies services for a node. */
  app.post('/v1/nodes/:node/authorization', { config: { auth: 'admin' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    const body = parseOrThrow(nodeAuthorizationSchema, req.body);
    return authorizeNode(ctx, node, body);
  });

  /** A joined node (proved by its certificate) restores its own record, e.g. after registry data loss. */
  app.put('/v1/nodes/:node', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const body = parseOrThrow(nodeUpdateSchema, req.body);
    const prev = await ctx.nodes.get(node);
    // The authorization is the admin's: a node's own write keeps it as it is (none after data loss).
    const next: NodeRecord = {
      ...(prev ?? {}),
      name: node,
      address: body.address,
      meta: body.meta,
      joinedAt: prev?.joinedAt ?? new Date().toISOString(),
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

  /** The node leaves (`agent leave`) or the admin removes it (`node remove`): either way its certificates are revoked. */
  app.delete('/v1/nodes/:node', { config: { auth: 'any' } }, async (req) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    assertActsFor(req.principal, node);
    const byAdmin = req.principal?.kind === 'admin';
    if (byAdmin && !(await ctx.nodes.get(node)))
      throw new MeshError('MESH_ERR_NOT_FOUND', `no node '${node}'`, {
        hint: 'List nodes with `meshctl catalog nodes`.',
      });
    return removeNode(ctx, node, byAdmin ? 'removed by the admin' : 'the node left');
  });
}

async function existingNode(ctx: RegistryContext, node: string): Promise<NodeRecord> {
  const rec = await ctx.nodes.get(node);
  if (!rec)
    throw new MeshError('MESH_ERR_NOT_FOUND', `node '${node}' has not joined the mesh`, {
      hint: 'Join it first with `meshctl init --join`.',
    });
  return rec;
}
