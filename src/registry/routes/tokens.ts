import type { FastifyInstance } from 'fastify';
import { DEFAULT_JOIN_TOKEN_TTL_SECONDS, tokenCreateSchema } from '../../api/schemas.js';
import { MeshError } from '../../errors/index.js';
import type { RegistryContext } from '../context.js';
import { parseOrThrow } from '../validate.js';

export function tokenRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/v1/tokens', { config: { auth: 'admin' } }, async () => ({ tokens: await ctx.tokens.list() }));

  app.post('/v1/tokens', { config: { auth: 'admin' } }, async (req) => {
    const body = parseOrThrow(tokenCreateSchema, req.body);
    // Join tokens live a day unless told otherwise; admin tokens until revoked unless told otherwise.
    const ttl = body.ttlSeconds ?? (body.kind === 'join' ? DEFAULT_JOIN_TOKEN_TTL_SECONDS : undefined);
    return ctx.tokens.create(body.kind, body.description, ttl, {
      services: body.services,
      anyService: body.anyService,
      ...(body.uses !== undefined ? { maxUses: body.uses } : {}),
      ...(body.replaceNode ? { replaceNode: body.replaceNode } : {}),
    });
  });

  app.delete('/v1/tokens/:id', { config: { auth: 'admin' } }, async (req) => {
    const id = (req.params as { id: string }).id;
    if (!/^[0-9a-f]{16}$/.test(id))
      throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid token id '${id}'`, {
        hint: 'Token ids are 16 hex digits; see `meshctl token list`.',
      });
    const info = await ctx.tokens.revoke(id);
    if (req.principal?.kind === 'admin' && req.principal.tokenId === id)
      ctx.log.warn({ id }, 'the admin token revoked itself');
    return { token: info };
  });
}
