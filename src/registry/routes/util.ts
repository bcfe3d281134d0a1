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
 */
export async function blockingRead<T extends { revision: number }>(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  groups: readonly string[],
  read: () => Promise<T>,
): Promise<Buffer> {
  const shared = sharedReadsOf(ctx);
  const arrival = shared.arrival();
  const params = blockingParams(req.query as Record<string, unknown>);
  let need = 0;
  if (params) {
    const ac = new AbortController();
    const onClose = () => ac.abort();
    req.raw.once('close', onClose);
    try {
      need = await ctx.notifier.wait(groups, params.index, params.waitMs, ac.signal);
    } finally {
      req.raw.off('close', onClose);
    }
  }
  const answer = await shared.read(readKey(req), arrival, ctx.notifier.revision, need, read);
  void reply.header('x-mesh-index', String(answer.revision)).type('application/json; charset=utf-8');
  return answer.body;
}
