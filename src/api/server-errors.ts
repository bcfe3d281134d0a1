/** One error shape for every mesh HTTP API (registry, agent): `{code, message, hint}` with the code's status. */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { MeshError, isErrorCode, toMeshError } from '../errors/index.js';

export function installErrorHandlers(app: FastifyInstance, log: Logger, bodyLimit: number): void {
  app.setErrorHandler((err: FastifyError | MeshError, req, reply) => {
    const me = fromFastifyError(err, bodyLimit);
    if (me.httpStatus >= 500) log.error({ err, url: req.url }, 'request failed');
    else log.debug({ code: me.code, url: req.url }, me.message);
    const retryAfter = (me.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (me.httpStatus === 429 && typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    void reply.status(me.httpStatus).send({ code: me.code, message: me.message, hint: me.hint });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      code: 'MESH_ERR_NOT_FOUND',
      message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}`,
      hint: 'See docs/API.md for the API.',
    });
  });
}

function fromFastifyError(err: FastifyError | MeshError, bodyLimit: number): MeshError {
  if (err instanceof MeshError) return err;
  if (isErrorCode((err as { code?: unknown }).code)) return toMeshError(err);
  const status = err.statusCode ?? 500;
  if (status === 413) return new MeshError('MESH_ERR_BODY_TOO_LARGE', `request body is larger than ${bodyLimit} bytes`);
  if (status === 415) return new MeshError('MESH_ERR_BAD_REQUEST', 'request body must be application/json');
  if (status >= 400 && status < 500) return new MeshError('MESH_ERR_BAD_REQUEST', `invalid request: ${err.message}`);
  return toMeshError(err);
}
