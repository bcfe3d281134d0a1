import type { FastifyInstance } from 'fastify';
import { MeshError, toMeshError } from '../../errors/index.js';
import type { RegistryContext } from '../context.js';
import { PREFIX } from '../keys.js';

/** What a node may watch: the catalog, liveness, intentions and config entries, never tokens. */
const NODE_PREFIXES = [PREFIX.services, PREFIX.alive, PREFIX.nodes, PREFIX.intentions, PREFIX.config];
const HEARTBEAT_MS = 15_000;

/**
 * `GET /v1/watch?prefix=P&revision=N`: a stream of newline-delimited JSON batches, one per
 * store revision that touched keys under P, starting at N (or now), with heartbeats so
 * clients and proxies can tell a quiet stream from a dead one.
 */
export function watchRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/v1/watch', { config: { auth: 'any' } }, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const prefix = typeof q.prefix === 'string' ? q.prefix : '';
    if (prefix.length > 512) throw new MeshError('MESH_ERR_BAD_REQUEST', 'prefix is too long');
    if (req.principal?.kind !== 'admin' && !NODE_PREFIXES.some((p) => prefix.startsWith(p))) {
      throw new MeshError('MESH_ERR_FORBIDDEN', `nodes may watch only ${NODE_PREFIXES.join(', ')}`);
    }
    let fromRevision: number | undefined;
    if (q.revision !== undefined) {
      fromRevision = Number(q.revision);
      if (!Number.isSafeInteger(fromRevision) || fromRevision < 1)
        throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid revision '${String(q.revision)}'`);
    }

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'cache-control': 'no-store',
      'x-mesh-index': String(ctx.notifier.revision),
    });
    const write = (obj: unknown) => {
      if (!res.destroyed) res.write(`${JSON.stringify(obj)}\n`);
    };
    const watcher = ctx.store.watch(
      prefix,
      (batch) =>
        write({
          revision: batch.revision,
          events: batch.events.map((e) => ({
            type: e.type,
            key: e.kv.key,
            value: e.type === 'put' ? e.kv.value : undefined,
            modRevision: e.kv.modRevision,
          })),
        }),
      {
        ...(fromRevision === undefined ? {} : { fromRevision }),
        onError: (err) => {
          const me = toMeshError(err, 'MESH_ERR_STORE');
          write({ error: { code: me.code, message: me.message } });
          res.end();
        },
      },
    );
    const beat = setInterval(() => write({ heartbeat: ctx.notifier.revision }), HEARTBEAT_MS);
    beat.unref();
    write({ heartbeat: ctx.notifier.revision });
    const stop = () => {
      clearInterval(beat);
      watcher.cancel();
    };
    res.on('close', stop);
    res.on('error', stop);
  });
}
