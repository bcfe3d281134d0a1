/**
 * Builds the registry's HTTPS API without listening (tests and `registry start` both use it):
 * TLS 1.3 only, client certificates requested (nodes authenticate with them) but not required
 * (the CLI uses the admin token), every route's auth declared in its config.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandlers } from '../api/server-errors.js';
import type { RegistryContext } from './context.js';
import { authorize, resolvePrincipal, type AuthRequirement, type Principal } from './auth.js';
import { catalogRoutes } from './routes/catalog.js';
import { nodeRoutes } from './routes/nodes.js';
import { intentionRoutes } from './routes/intentions.js';
import { caRoutes } from './routes/ca.js';
import { tokenRoutes } from './routes/tokens.js';
import { watchRoutes } from './routes/watch.js';
import { systemRoutes } from './routes/system.js';
import { metricsRoutes } from './routes/metrics.js';

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

  installErrorHandlers(app, ctx.log, BODY_LIMIT);

  app.server.on('tlsClientError', (err) => ctx.log.debug({ err: err.message }, 'TLS handshake failed'));

  systemRoutes(app, ctx);
  nodeRoutes(app, ctx);
  catalogRoutes(app, ctx);
  intentionRoutes(app, ctx);
  caRoutes(app, ctx);
  tokenRoutes(app, ctx);
  watchRoutes(app, ctx);
  metricsRoutes(app, ctx);
  return app;
}
