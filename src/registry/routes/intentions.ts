import type { FastifyInstance } from 'fastify';
import { intentionNameSchema, intentionRequestSchema } from '../../api/schemas.js';
import { decideIntention } from '../../api/intentions.js';
import type { RegistryContext } from '../context.js';
import { nameParam, parseOrThrow } from '../validate.js';
import { blockingRead } from './util.js';
import { who } from '../config-entries.js';

export function intentionRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/v1/intentions', { config: { auth: 'any' } }, (req, reply) =>
    blockingRead(ctx, req, reply, ['intentions'], async () => ({
      ...(await ctx.intentions.list()),
      defaultAction: ctx.config.defaultIntention,
    })),
  );

  app.put('/v1/intentions', { config: { auth: 'admin' } }, async (req) => {
    const body = parseOrThrow(intentionRequestSchema, req.body);
    return ctx.configEntries.setIntention(
      body.source,
      body.destination,
      body.action,
      body.description,
      who(req.principal),
    );
  });

  app.delete('/v1/intentions/:source/:destination', { config: { auth: 'admin' } }, async (req) => {
    const p = req.params as { source: string; destination: string };
    const source = parseOrThrow(intentionNameSchema, p.source, 'source');
    const destination = parseOrThrow(intentionNameSchema, p.destination, 'destination');
    return ctx.configEntries.removeIntention(source, destination, who(req.principal));
  });

  app.get('/v1/intentions/check', { config: { auth: 'any' } }, async (req) => {
    const q = req.query as Record<string, unknown>;
    const source = nameParam(q.source, 'source');
    const destination = nameParam(q.destination, 'destination');
    const { revision, intentions } = await ctx.intentions.list();
    return {
      revision,
      source,
      destination,
      ...decideIntention(intentions, source, destination, ctx.config.defaultIntention),
    };
  });
}
