import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RegistryContext } from '../context.js';
import { blockingParams } from '../validate.js';

/**
 * Answers a read, first waiting (Consul-style blocking query) when the client passed
 * `?index=N`: until one of `groups` changes after N, or `wait` runs out.
 */
export async function blockingRead<T extends { revision: number }>(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  groups: readonly string[],
  read: () => Promise<T>,
): Promise<T> {
  const params = blockingParams(req.query as Record<string, unknown>);
  if (params) {
    const ac = new AbortController();
    const onClose = () => ac.abort();
    req.raw.once('close', onClose);
    try {
      await ctx.notifier.wait(groups, params.index, params.waitMs, ac.signal);
    } finally {
      req.raw.off('close', onClose);
    }
  }
  const result = await read();
  void reply.header('x-mesh-index', String(result.revision));
  return result;
}
