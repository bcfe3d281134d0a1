/** One error shape for every mesh HTTP API (registry, agent): `{code, message, hint}` with the code's status. */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from '../util/log.js';
import { MeshError, isErrorCode, toMeshError } from '../errors/index.js';

export function installErrorHandlers(app: FastifyInstance, log: Logger, bodyLimit: number): void {
  installJsonOnly(app);
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
  if (status === 415)
    return new MeshError('MESH_ERR_UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json', {
      hint: 'Send the body as JSON with `content-type: application/json`.',
    });
  if (status >= 400 && status < 500) return new MeshError('MESH_ERR_BAD_REQUEST', `invalid request: ${err.message}`);
  return toMeshError(err);
}

const PROTO_MESSAGE = 'request body has a "__proto__" or "constructor.prototype" key, which is never accepted';

/**
 * Bodies are JSON and nothing else: Fastify's own text/plain parser goes (so a text body gets
 * 415, not a confusing schema error about a string), and JSON is parsed here so that a key
 * that would reach Object.prototype gets a clear 400 naming it (Fastify's parser refuses it
 * too, but as "not valid JSON"). The key scan runs only when the text holds such a key.
 */
function installJsonOnly(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    const body = String(text);
    if (body.trim() === '') {
      done(new MeshError('MESH_ERR_BAD_REQUEST', 'request body is empty but its content-type is application/json'));
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (e) {
      done(new MeshError('MESH_ERR_BAD_REQUEST', `request body is not valid JSON: ${(e as Error).message}`));
      return;
    }
    if ((body.includes('__proto__') || body.includes('prototype')) && hasProtoKey(value)) {
      done(new MeshError('MESH_ERR_BAD_REQUEST', PROTO_MESSAGE));
      return;
    }
    done(null, value);
  });
}

function hasProtoKey(v: unknown, depth = 0): boolean {
  if (v === null || typeof v !== 'object' || depth > 64) return false;
  if (Array.isArray(v)) return v.some((x) => hasProtoKey(x, depth + 1));
  for (const k of Object.keys(v)) {
    if (k === '__proto__') return true;
    const child = (v as Record<string, unknown>)[k];
    if (k === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype'))
      return true;
    if (hasProtoKey(child, depth + 1)) return true;
  }
  return false;
}
