/**
 * Builds the registry's HTTPS API without listening (tests and `registry start` both use it):
 * TLS 1.3 only, client certificates requested (nodes authenticate with them) but not required
 * (the CLI uses the admin token), every route's auth declared in its config.
 */
import type { Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandlers } from '../api/server-errors.js';
import { HANDSHAKE_TIMEOUT_MS, REQUEST_TIMEOUT_MS, serverLimits } from '../api/server-limits.js';
import type { RegistryContext } from './context.js';
import { authorize, isWrongToken, resolvePrincipal, type AuthRequirement, type Principal } from './auth.js';
import { MeshError } from '../errors/index.js';
import { catalogRoutes } from './routes/catalog.js';
import { nodeRoutes } from './routes/nodes.js';
import { intentionRoutes } from './routes/intentions.js';
import { configRoutes } from './routes/config.js';
import { caRoutes } from './routes/ca.js';
import { tokenRoutes } from './routes/tokens.js';
import { watchRoutes } from './routes/watch.js';
import { systemRoutes } from './routes/system.js';
import { metricsRoutes } from './routes/metrics.js';
import { msUntilNextKeys, ticketKeysFor, ticketOptions } from './session-tickets.js';

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
  /**
   * What the session ticket keys are derived from (the CA key: every registry of the mesh has
   * it), so sessions resume after a restart; without it, Node's per-process keys.
   */
  ticketSecret?: string;
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
      // Slow and silent clients are cut (src/api/server-limits.ts).
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(tls.ticketSecret !== undefined ? ticketOptions(tls.ticketSecret) : {}),
      ...serverLimits,
    },
    // Fastify sets the server's requestTimeout from its own option after creating it.
    requestTimeout: REQUEST_TIMEOUT_MS,
    bodyLimit: BODY_LIMIT,
    logger: false,
    // Blocking queries hold requests for minutes; closing must not wait for them.
    forceCloseConnections: true,
    return503OnClosing: true,
  });

  app.decorateRequest('principal', undefined);

  if (tls.ticketSecret !== undefined) {
    // A new set of ticket keys each day, the same on every registry of the mesh.
    const secret = tls.ticketSecret;
    let timer: NodeJS.Timeout | undefined;
    const rotate = () => {
      timer = setTimeout(() => {
        (app.server as unknown as TlsServer).setTicketKeys(ticketKeysFor(secret));
        rotate();
      }, msUntilNextKeys() + 1000);
      timer.unref();
    };
    rotate();
    app.addHook('onClose', async () => clearTimeout(timer));
  }

  app.addHook('onRequest', async (req) => {
    // No such route: 404 whoever asks (a 401 would suggest the path exists).
    if (req.is404) return;
    const need = req.routeOptions.config.auth ?? 'admin';
    if (need === 'none') return;
    const bearer = req.headers.authorization !== undefined;
    if (bearer) refuseLimitedSource(ctx, req.ip);
    try {
      req.principal = await resolvePrincipal(req.raw, ctx.tokens, ctx.config.trustDomain, ctx.revocations);
    } catch (e) {
      if (bearer && isWrongToken(e)) countWrongToken(ctx, req.ip, req.url);
      if (need === 'join' && e instanceof MeshError && e.code === 'MESH_ERR_UNAUTHENTICATED')
        throw new MeshError(e.code, e.message, {
          hint: 'Check the join token (`meshctl token list` on the control plane), or make a new one with `meshctl token create --service NAME`.',
        });
      throw e;
    }
    authorize(req.principal, need);
  });

  // Every write made with a token goes to the audit log with the token id that made it.
  app.addHook('onResponse', async (req, reply) => {
    const p = req.principal;
    if (!p || p.kind === 'node' || req.method === 'GET' || req.method === 'HEAD') return;
    ctx.audit.record({
      tokenId: p.tokenId,
      kind: p.kind,
      action: `${req.method} ${req.url.split('?')[0]}`,
      status: reply.statusCode,
      source: req.ip,
    });
  });

  installErrorHandlers(app, ctx.log, BODY_LIMIT);

  app.server.on('tlsClientError', (err) => ctx.log.debug({ err: err.message }, 'TLS handshake failed'));

  systemRoutes(app, ctx);
  nodeRoutes(app, ctx);
  catalogRoutes(app, ctx);
  intentionRoutes(app, ctx);
  configRoutes(app, ctx);
  caRoutes(app, ctx);
  tokenRoutes(app, ctx);
  watchRoutes(app, ctx);
  metricsRoutes(app, ctx);
  return app;
}

/** A source that sent too many wrong tokens gets 429 before its token is even looked at. */
function refuseLimitedSource(ctx: RegistryContext, source: string): void {
  const retryAfter = ctx.wrongTokens.retryAfter(source);
  if (retryAfter === undefined) return;
  throw new MeshError('MESH_ERR_RATE_LIMITED', `too many wrong tokens from ${source}; try again in ${retryAfter} s`, {
    details: { retryAfterSeconds: retryAfter },
  });
}

function countWrongToken(ctx: RegistryContext, source: string, url: string): void {
  const { limited } = ctx.wrongTokens.fail(source);
  ctx.log.warn(
    { source, url: url.split('?')[0], limited },
    limited ? 'wrong token; source rate-limited' : 'wrong token',
  );
}
