import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RegistryContext } from '../context.js';
import { SharedReads } from '../shared-reads.js';
import { blockingParams } from '../validate.js';

/** One SharedReads per registry (tests build several registries in one process). */
const sharedReads = new WeakMap<RegistryContext, SharedReads>();

export function sharedReadsOf(ctx: RegistryContext): SharedReads {
  let s = sharedReads.get(ctx);
  if (!s) {
    s = new SharedReads();
    sharedReads.set(ctx, s);
  }
  return s;
}

/** What the answer depends on: the route and its parameters, the query without index/wait. */
function readKey(req: FastifyRequest): string {
  const q = Object.entries(req.query as Record<string, unknown>)
    .filter(([k]) => k !== 'index' && k !== 'wait')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([req.routeOptions.url, req.params, q]);
}

/**
 * Answers a read, first waiting (Consul-style blocking query) when the client passed
 * `?index=N`: until one of `groups` changes after N, or `wait` runs out. The watchers one
 * change wakes share one read and one serialized body (shared-reads.ts).
 *
 * The answer goes straight onto the raw response (`reply.hijack()`): the body is already the
 * JSON bytes, so fastify's send path (serializer choice, onSend/content-length handling, its
 * promise per reply) would only add work to each of the thousands of answers one change sends.
 * Errors before that point (bad query, store unavailable) still go to fastify's error handler.
 * A client that went away while waiting gets no read and no answer.
 */
export async function blockingRead<T extends { revision: number }>(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  groups: readonly string[],
  read: () => Promise<T>,
): Promise<void> {
  const shared = sharedReadsOf(ctx);
  const arrival = shared.arrival();
  const params = blockingParams(req.query as Record<string, unknown>);
  const res = reply.raw;
  let need = 0;
  if (params) {
    need = await ctx.notifier.wait(groups, params.index, params.waitMs, req.raw);
    if (res.destroyed) {
      reply.hijack();
      return;
    }
  }
  const answer = await shared.read(readKey(req), arrival, ctx.notifier.revision, need, read);
  reply.hijack();
  if (res.destroyed) return;
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': answer.body.length,
    'x-mesh-index': String(answer.revision),
  });
  res.end(answer.body);
}
