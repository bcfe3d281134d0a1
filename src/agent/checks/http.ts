/**
 * HTTP check: one GET, no redirects followed, no connection pooling. 2xx/3xx is passing,
 * 429 warning (the service is up but shedding load, as Consul reads it), anything else
 * critical. Output is the status line and the start of the body.
 */
import http from 'node:http';
import https from 'node:https';
import type { CheckDefinition, CheckResult, CheckStatus } from './types.js';
import { OutputCollector, OUTPUT_LIMIT, truncateOutput } from './output.js';
import { displayUrl, parseHttpTarget } from './target.js';
import { describeNetError } from './net-error.js';
import { runProbe } from './probe.js';

const USER_AGENT = 'meshctl-health-check';

export function httpStatusToCheckStatus(code: number): CheckStatus {
  if (code >= 200 && code < 400) return 'passing';
  if (code === 429) return 'warning';
  return 'critical';
}

export function runHttpCheck(def: CheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const parsed = parseHttpTarget(def.target);
  if (!parsed.ok)
    return Promise.resolve({ status: 'critical', output: `invalid HTTP check URL '${def.target}': ${parsed.reason}` });
  const url = parsed.value;
  const prefix = `HTTP GET ${displayUrl(url)}`;
  let response: http.IncomingMessage | undefined;
  const body = new OutputCollector(OUTPUT_LIMIT);
  const fromResponse = (res: http.IncomingMessage, note = ''): CheckResult => {
    const code = res.statusCode ?? 0;
    const head = `${prefix}: ${code} ${res.statusMessage ?? ''}`.trimEnd() + note;
    const text = body.text();
    return { status: httpStatusToCheckStatus(code), output: truncateOutput(text ? `${head}\n${text}` : head) };
  };
  // Headers already in: the status decided, only the body was slow. Report what arrived.
  const timedOut = (): CheckResult =>
    response
      ? fromResponse(response, ` (body cut off after ${def.timeoutMs}ms)`)
      : { status: 'critical', output: `${prefix}: timed out after ${def.timeoutMs}ms` };

  return runProbe({ prefix, timeoutMs: def.timeoutMs, signal, timedOut }, ({ finish, onSettled }) => {
    let req: http.ClientRequest;
    try {
      const client = url.protocol === 'https:' ? https : http;
      req = client.request(url, {
        method: 'GET',
        agent: false,
        headers: { 'user-agent': USER_AGENT, accept: 'text/plain, text/*, */*', connection: 'close' },
      });
    } catch (err) {
      finish({ status: 'critical', output: truncateOutput(`${prefix}: ${describeNetError(err)}`) });
      return;
    }
    // Always tear the socket down: with agent:false nothing else would reuse it.
    onSettled(() => {
      response?.destroy();
      req.destroy();
    });

    req.on('response', (res) => {
      response = res;
      res.on('data', (chunk: Buffer) => {
        body.add(chunk);
        if (body.full) finish(fromResponse(res));
      });
      res.on('end', () => finish(fromResponse(res)));
      // A body cut short still carries a status; report it with what arrived.
      res.on('error', () => finish(fromResponse(res)));
      res.on('close', () => finish(fromResponse(res)));
    });
    req.on('error', (err) =>
      finish({ status: 'critical', output: truncateOutput(`${prefix}: ${describeNetError(err)}`) }),
    );
    req.end();
  });
}
