import type { FastifyInstance } from 'fastify';
import { MeshError } from '../../errors/index.js';
import { drainingUpdateSchema, healthUpdateSchema, registerRequestSchema } from '../../api/schemas.js';
import type { RegistryContext } from '../context.js';
import { assertActsFor } from '../auth.js';
import { assertMayServe } from '../authz.js';
import { nameParam, parseOrThrow } from '../validate.js';
import { blockingRead } from './util.js';

export function catalogRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/v1/catalog/services', { config: { auth: 'any' } }, (req, reply) =>
    blockingRead(ctx, req, reply, ['services', 'alive'], () => ctx.catalog.services()),
  );

  app.get('/v1/catalog/service/:name', { config: { auth: 'any' } }, (req, reply) => {
    const name = nameParam((req.params as { name: string }).name, 'service name');
    const q = req.query as Record<string, unknown>;
    const healthyOnly = q.healthy !== undefined && q.healthy !== 'false' && q.healthy !== '0';
    return blockingRead(ctx, req, reply, [`services/${name}`, 'alive'], () =>
      ctx.catalog.instances(name, { healthyOnly }),
    );
  });

  app.get('/v1/catalog/instances', { config: { auth: 'any' } }, (req, reply) =>
    blockingRead(ctx, req, reply, ['services', 'alive'], () => ctx.catalog.allInstances()),
  );

  app.get('/v1/catalog/node/:node', { config: { auth: 'any' } }, async (req, reply) => {
    const node = nameParam((req.params as { node: string }).node, 'node name');
    return blockingRead(ctx, req, reply, ['services', 'alive'], async () => {
      const [revision, instances] = await Promise.all([ctx.store.revision(), ctx.catalog.onNode(node)]);
      return { revision, instances };
    });
  });

  app.get('/v1/catalog/nodes', { config: { auth: 'any' } }, (req, reply) =>
    blockingRead(ctx, req, reply, ['nodes', 'alive', 'services'], () => ctx.nodes.list()),
  );

  app.put('/v1/catalog/register', { config: { auth: 'any' } }, async (req) => {
    const body = parseOrThrow(registerRequestSchema, req.body);
    const principal = req.principal;
    const node = body.node ?? (principal?.kind === 'node' ? principal.node : undefined);
    if (!node)
      throw new MeshError(
        'MESH_ERR_BAD_REQUEST',
        'invalid request body: node: required when registering with the admin token',
      );
    assertActsFor(principal, node);
    const rec = await ctx.nodes.get(node);
    if (!rec)
      throw new MeshError('MESH_ERR_NOT_FOUND', `node '${node}' has not joined the mesh`, {
        hint: 'Join it first with `meshctl init --join`.',
      });
    // Whoever registers it, an instance on a node must be a service that node may serve.
    try {
      assertMayServe(rec, body.service.name, 'register');
    } catch (e) {
      ctx.log.warn(
        { node, service: body.service.name, by: principal?.kind },
        'registration refused: service not authorized',
      );
      throw e;
    }
    const { instance, revision } = await ctx.catalog.register(node, rec.address, body.service);
    return { revision, instance };
  });

  app.delete('/v1/catalog/node/:node/service/:id', { config: { auth: 'any' } }, async (req) => {
    const p = req.params as { node: string; id: string };
    const node = nameParam(p.node, 'node name');
    const id = nameParam(p.id, 'instance id');
    assertActsFor(req.principal, node);
    return ctx.catalog.deregister(node, id);
  });

  app.put('/v1/health/node/:node/service/:id/check/:check', { config: { auth: 'any' } }, async (req) => {
    const p = req.params as { node: string; id: string; check: string };
    const node = nameParam(p.node, 'node name');
    const id = nameParam(p.id, 'instance id');
    const check = nameParam(p.check, 'check id');
    assertActsFor(req.principal, node);
    const body = parseOrThrow(healthUpdateSchema, req.body);
    // Keep stored output bounded whatever the check printed.
    return ctx.catalog.updateCheck(node, id, check, body.status, body.output.slice(0, 4096));
  });

  // The agent says its sidecar for this instance drains (or serves again): see Catalog.setDraining.
  app.put('/v1/health/node/:node/service/:id/draining', { config: { auth: 'any' } }, async (req) => {
    const p = req.params as { node: string; id: string };
    const node = nameParam(p.node, 'node name');
    const id = nameParam(p.id, 'instance id');
    assertActsFor(req.principal, node);
    const body = parseOrThrow(drainingUpdateSchema, req.body);
    return ctx.catalog.setDraining(node, id, body.draining);
  });
}
