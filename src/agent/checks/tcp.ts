/** TCP check: passing when a connection to host:port opens within the timeout, critical otherwise. */
import net from 'node:net';
import type { CheckDefinition, CheckResult } from './types.js';
import { formatHostPort, parseTcpTarget } from './target.js';
import { describeNetError } from './net-error.js';
import { truncateOutput } from './output.js';
import { runProbe } from './probe.js';

export function runTcpCheck(def: CheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const parsed = parseTcpTarget(def.target);
  if (!parsed.ok)
    return Promise.resolve({
      status: 'critical',
      output: `invalid TCP check target '${def.target}': ${parsed.reason}`,
    });
  const prefix = `TCP connect ${formatHostPort(parsed.value)}`;
  return runProbe({ prefix, timeoutMs: def.timeoutMs, signal }, ({ finish, onSettled }) => {
    let socket: net.Socket;
    try {
      socket = net.connect({ host: parsed.value.host, port: parsed.value.port });
    } catch (err) {
      finish({ status: 'critical', output: truncateOutput(`${prefix}: ${describeNetError(err)}`) });
      return;
    }
    onSettled(() => socket.destroy());
    socket.once('connect', () => finish({ status: 'passing', output: `${prefix}: success` }));
    socket.on('error', (err) =>
      finish({ status: 'critical', output: truncateOutput(`${prefix}: ${describeNetError(err)}`) }),
    );
  });
}
