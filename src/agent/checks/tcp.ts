/** TCP check: passing when a connection to host:port opens within the timeout, critical otherwise. */
import net from 'node:net';
import type { CheckDefinition, CheckResult } from './types.js';
import { formatHostPort, parseTcpTarget } from './target.js';
import { describeNetError } from './net-error.js';
import { truncateOutput } from './output.js';

export function runTcpCheck(def: CheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const parsed = parseTcpTarget(def.target);
  if (!parsed.ok)
    return Promise.resolve({
      status: 'critical',
      output: `invalid TCP check target '${def.target}': ${parsed.reason}`,
    });
  const prefix = `TCP connect ${formatHostPort(parsed.value)}`;
  if (signal?.aborted) return Promise.resolve({ status: 'critical', output: `${prefix}: check cancelled` });

  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    let socket: net.Socket | undefined;
    const finish = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket?.destroy();
      resolve(result);
    };
    const onAbort = (): void => finish({ status: 'critical', output: `${prefix}: check cancelled` });
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => finish({ status: 'critical', output: `${prefix}: timed out after ${def.timeoutMs}ms` }),
      def.timeoutMs,
    );

    try {
      socket = net.connect({ host: parsed.value.host, port: parsed.value.port });
    } catch (err) {
      finish({ status: 'critical', output: truncateOutput(`${prefix}: ${describeNetError(err)}`) });
      return;
    }
    socket.once('connect', () => finish({ status: 'passing', output: `${prefix}: success` }));
    socket.on('error', (err) =>
      finish({ status: 'critical', output: truncateOutput(`${prefix}: ${describeNetError(err)}`) }),
    );
  });
}
