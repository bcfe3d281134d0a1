/**
 * The agent's local admin API on a unix socket: every CLI command on this host goes through
 * it. Access is the socket file's: owner-only, or group `meshctl` when that group exists,
 * so callers without access are refused by the kernel before a byte is read.
 */
import { chmod, chown, lstat, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../util/log.js';
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { checkStatusSchema, nameSchema } from '../api/schemas.js';
import { installErrorHandlers } from '../api/server-errors.js';
import { REQUEST_TIMEOUT_MS, serverLimits } from '../api/server-limits.js';
import type { AgentAdminApi } from './admin-api.js';
import { claimSocketPath } from './data-dir-lock.js';
import { sidecarDrainingSchema } from '../api/sidecar-draining.js';

export interface AdminServer {
  close(): Promise<void>;
}

const BODY_LIMIT = 256 * 1024;
const ttlUpdateSchema = z.object({ status: checkStatusSchema, note: z.string().max(4096).default('') }).strict();

/** The `:id` of a route: a service id, or MESH_ERR_BAD_REQUEST naming it. */
function serviceIdParam(params: unknown): string {
  const raw = (params as { id: string }).id;
  const id = nameSchema.safeParse(raw);
  if (!id.success) throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid service id '${raw}'`);
  return id.data;
}

/** The admin API's routes over `api`, not listening: tests inject requests, `startAdminServer` listens. */
export function buildAdminServer(api: AgentAdminApi, log: Logger): FastifyInstance {
  const app = Fastify({
    bodyLimit: BODY_LIMIT,
    logger: false,
    forceCloseConnections: true,
    // Slow clients are cut (src/api/server-limits.ts); Fastify sets requestTimeout itself.
    http: { ...serverLimits },
    requestTimeout: REQUEST_TIMEOUT_MS,
  });
  installErrorHandlers(app, log, BODY_LIMIT);

  app.get('/v1/agent/self', async () => ({ ...api.self(), nodeCertNotAfter: await api.nodeCertificateExpiry() }));
  app.get('/v1/agent/services', async () => ({
    services: api.services(),
    definitionProblems: api.definitionProblems(),
  }));
  app.put('/v1/agent/services', async (req) => {
    const q = req.query as Record<string, unknown>;
    const flag = (name: string): boolean | undefined => {
      const v = q[name];
      if (v === undefined) return undefined;
      if (v !== 'true' && v !== 'false')
        throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid ${name} '${String(v)}' in the query: true or false`);
      return v === 'true';
    };
    const replace = flag('replace');
    const dryRun = flag('dryRun');
    return api.register(req.body, {
      ...(replace === undefined ? {} : { replace }),
      ...(dryRun === undefined ? {} : { dryRun }),
    });
  });
  // Read-only pass-through to the registry with this node's identity, so `meshctl status`
  // works on any host of the mesh without the admin token.
  app.get('/v1/agent/registry/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    if (!/^(status(\/peers)?|catalog\/[a-z/._-]+|intentions|config|ca\/roots|metrics\/[a-z/._-]+)$/.test(rest)) {
      throw new MeshError(
        'MESH_ERR_FORBIDDEN',
        `the agent only passes through read-only registry endpoints, not /v1/${rest}`,
      );
    }
    const query = req.query as Record<string, string>;
    const res = await api.registryGet(`/v1/${rest}`, query);
    void reply.header('x-mesh-index', res.headers['x-mesh-index'] ?? '');
    return res.body;
  });
  app.get('/v1/agent/proxies', async () => ({ proxies: await api.proxyStats() }));
  // A sidecar told to stop, before it drains (src/api/sidecar-draining.ts).
  app.post('/v1/agent/proxies/:id/draining', async (req) => {
    const id = serviceIdParam(req.params);
    const body = sidecarDrainingSchema.safeParse(req.body ?? {});
    if (!body.success)
      throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid draining notice: ${body.error.issues[0]?.message}`, {
        hint: 'The body is {"pid": N}, the pid of the sidecar that drains.',
      });
    return api.sidecarDraining(id, body.data.pid);
  });
  app.delete('/v1/agent/services/:id', async (req) => {
    return api.deregister(serviceIdParam(req.params));
  });
  app.put('/v1/agent/checks/:id', async (req) => {
    const body = ttlUpdateSchema.safeParse(req.body ?? {});
    if (!body.success)
      throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid check update: ${body.error.issues[0]?.message}`);
    return api.ttlUpdate((req.params as { id: string }).id, body.data.status, body.data.note);
  });
  app.post(
    '/v1/agent/leave',
    {
      // The caller gets its answer before the agent is asked to stop.
      onResponse: (_req, reply, done) => {
        if (reply.statusCode < 400) api.requestStop();
        done();
      },
    },
    async () => {
      await api.leave();
      return { left: true };
    },
  );
  app.post('/v1/agent/reload', async () => {
    await api.reload();
    return { reloaded: true };
  });
  return app;
}

/** Builds the admin server and listens on the unix socket, restricted to its owner (and group meshctl). */
export async function startAdminServer(api: AgentAdminApi, socketPath: string, log: Logger): Promise<AdminServer> {
  const app = buildAdminServer(api, log);
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o750 });
  // A live agent's socket is refused; one left by a crashed agent is removed.
  await claimSocketPath(socketPath);
  await app.listen({ path: socketPath }).catch((e: NodeJS.ErrnoException) => {
    throw new MeshError('MESH_ERR_UNAVAILABLE', `cannot listen on ${socketPath}: ${e.code ?? e.message}`);
  });
  await restrictSocket(socketPath, log);
  const ours = await lstat(socketPath);
  return {
    async close() {
      await app.close();
      // Only the file this agent made: never a socket another agent made there since.
      const now = await lstat(socketPath).catch(() => undefined);
      if (now && now.ino === ours.ino && now.dev === ours.dev) await rm(socketPath, { force: true });
    },
  };
}

async function restrictSocket(path: string, log: Logger): Promise<void> {
  const gid = meshctlGroupId();
  if (gid !== undefined) {
    try {
      await chown(path, process.getuid?.() ?? 0, gid);
      await chmod(path, 0o660);
      return;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not give group meshctl the agent socket; owner-only');
    }
  }
  await chmod(path, 0o600);
}

function meshctlGroupId(): number | undefined {
  try {
    const out = execFileSync('getent', ['group', 'meshctl'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const gid = Number(out.split(':')[2]);
    return Number.isInteger(gid) ? gid : undefined;
  } catch {
    return undefined;
  }
}
