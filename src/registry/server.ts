/**
 * Builds the registry's HTTPS API without listening (tests and `registry start` both use it):
 * TLS 1.3 only, client certificates requested (nodes authenticate with them) but not required
 * (the CLI uses the admin token), every route's auth declared in its config.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { MeshError, isErrorCode, toMeshError } from '../errors/index.js';
import type { RegistryContext } from './context.js';
import { authorize, resolvePrincipal, type AuthRequirement, type Principal } from './auth.js';
import { catalogRoutes } from './routes/catalog.js';
import { nodeRoutes } from './routes/nodes.js';
import { intentionRoutes } from './routes/intentions.js';
import { caRoutes } from './routes/ca.js';
import { tokenRoutes } from './routes/tokens.js';
import { watchRoutes } from './routes/watch.js';
import { systemRoutes } from './routes/system.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    auth?: AuthRequirement;
  }
}

export interface RegistryTls {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export const BODY_LIMIT = 64 * 1024;

export function buildRegistryServer(ctx: RegistryContext, tls: RegistryTls): FastifyInstance {
  const app = Fastify({
    https: {
      cert: tls.certPem,
      key: tls.keyPem,
      ca: [tls.caPem],
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false,
    },
    bodyLimit: BODY_LIMIT,
    logger: false,
    // Blocking queries hold requests for minutes; closing must not wait for them.
    forceCloseConnections: true,
    return503OnClosing: true,
  });

  app.decorateRequest('principal', undefined);

  app.addHook('onRequest', async (req) => {
    const need = req.routeOptions.config.auth ?? 'admin';
    if (need === 'none') return;
    req.principal = await resolvePrincipal(req.raw, ctx.tokens, ctx.config.trustDomain);
    authorize(req.principal, need);
  });

  app.setErrorHandler((err: FastifyError | MeshError, req, reply) => {
    const me = fromFastifyError(err);
    if (me.httpStatus >= 500) ctx.log.error({ err, url: req.url }, 'request failed');
    else ctx.log.debug({ code: me.code, url: req.url }, me.message);
    void reply.status(me.httpStatus).send({ code: me.code, message: me.message, hint: me.hint });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'MESH_ERR_NOT_FOUND', message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}`, hint: 'See docs/API.md for the registry API.' });
  });

  app.server.on('tlsClientError', (err) => ctx.log.debug({ err: err.message }, 'TLS handshake failed'));

  systemRoutes(app, ctx);
  nodeRoutes(app, ctx);
  catalogRoutes(app, ctx);
  intentionRoutes(app, ctx);
  caRoutes(app, ctx);
  tokenRoutes(app, ctx);
  watchRoutes(app, ctx);
  return app;
}

function fromFastifyError(err: FastifyError | MeshError): MeshError {
  if (err instanceof MeshError) return err;
  if (isErrorCode((err as { code?: unknown }).code)) return toMeshError(err);
  const status = err.statusCode ?? 500;
  if (status === 413) return new MeshError('MESH_ERR_BODY_TOO_LARGE', `request body is larger than ${BODY_LIMIT} bytes`);
  if (status === 415) return new MeshError('MESH_ERR_BAD_REQUEST', 'request body must be application/json');
  if (status >= 400 && status < 500) return new MeshError('MESH_ERR_BAD_REQUEST', `invalid request: ${err.message}`);
  return toMeshError(err);
}
