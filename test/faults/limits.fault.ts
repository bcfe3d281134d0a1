/**
 * Oversized heads and slow clients on every listener: the registry (HTTPS), the agent's
 * socket, a sidecar's mesh port (mTLS) and its outbound listener (plain, from the app). Each
 * must answer a 100 KB head at once (431 or a close) and cut a client that drips its head or
 * never starts its handshake, long before the client gives up (40 s).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { stopAllDaemons } from '../helpers/cli.js';
import { startFaultMesh, type FaultMesh } from './mesh.js';
import { oversizedHead, silentConnection, slowHead, type Dial, type Outcome } from './slow.js';
import { recordAndCheck } from './record.js';

describe('oversized heads and slow clients on every listener', () => {
  let f: FaultMesh;
  beforeAll(async () => {
    f = await startFaultMesh(24152);
  });
  afterAll(async () => {
    await stopAllDaemons();
    await f?.close();
  });

  const show = (o: Outcome) =>
    o.held
      ? `held ${Math.round(o.afterMs / 1000)} s`
      : `${o.answer || 'closed'} after ${(o.afterMs / 1000).toFixed(1)} s`;

  const check = async (listener: string, dialHttp: Dial, dialSilent?: () => net.Socket) => {
    const [big, slow, silent] = await Promise.all([
      oversizedHead(dialHttp),
      slowHead(dialHttp),
      dialSilent ? silentConnection(dialSilent) : Promise.resolve(undefined),
    ]);
    const bigOk = !big.held && (big.answer === '' || /^HTTP\/1\.1 431/.test(big.answer));
    const slowOk = !slow.held;
    const silentOk = silent === undefined || !silent.held;
    recordAndCheck(
      {
        scenario: `oversized head / slow client: ${listener}`,
        load: '1 × 100 KB head, 1 × head at 1 byte/s' + (silent ? ', 1 × silent TLS connection' : ''),
        fault: `100 KB head: ${show(big)}; drip: ${show(slow)}${silent ? `; silent: ${show(silent)}` : ''}`,
        sent: dialSilent ? 3 : 2,
        failed: [bigOk, slowOk, silentOk].filter((x) => !x).length,
        lostWrites: '—',
        expected: '431 or close at once; drip and silent cut before 40 s',
      },
      bigOk && slowOk && silentOk,
      `${listener} held a client`,
    );
  };

  it('the registry (HTTPS)', async () => {
    const port = f.mesh.registryPort;
    await check(
      'registry',
      () => tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }),
      () => net.connect({ host: '127.0.0.1', port }),
    );
  });

  it("the agent's socket", async () => {
    await check('agent socket', () => net.connect({ path: f.web.socket }));
  });

  it("a sidecar's outbound listener (the app's side)", async () => {
    await check('outbound listener', () => net.connect({ host: '127.0.0.1', port: f.port }));
  });

  it("a sidecar's mesh port (mTLS: without a client certificate nothing gets past the handshake)", async () => {
    const inst = JSON.parse((await f.mesh.admin(['catalog', 'instances', 'api', '--json'])).stdout) as {
      instances: Array<{ address: string; meshPort: number }>;
    };
    const { address, meshPort } = inst.instances[0]!;
    await check(
      'mesh port',
      () => tls.connect({ host: address, port: meshPort, rejectUnauthorized: false }),
      () => net.connect({ host: address, port: meshPort }),
    );
  });
});
