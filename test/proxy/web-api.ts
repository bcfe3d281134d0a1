/** The web → api pair most proxy tests use: api instances (app + sidecar) and a web sidecar calling them. */
import { beforeAll } from 'vitest';
import type { MeshProxy } from '../../src/proxy/proxy.js';
import type { ProxySnapshotInput } from '../../src/proxy/snapshot.js';
import { inboundPort, snapshot, startHttpApp, startProxy, type UpstreamSpec } from './harness.js';
import { badLeaves, makePki, type BadLeafKind, type Leaf, type Pki } from './pki.js';

export const ALLOW_WEB: ProxySnapshotInput['intentions'] = [{ source: 'web', destination: 'api', action: 'allow' }];
/**
 * The same, as an L7 intention that allows every request: the api inbound then parses HTTP
 * (inbound/mode.ts) where ALLOW_WEB leaves it a byte pipe.
 */
export const ALLOW_WEB_L7: ProxySnapshotInput['intentions'] = [
  { source: 'web', destination: 'api', action: 'allow', permissions: [{ action: 'allow' }] },
];

export interface WebApiPki {
  pki: Pki;
  apiLeaf: Leaf;
  webLeaf: Leaf;
}

export type BadLeaves = Record<BadLeafKind, Leaf>;

export interface WebApiPkiOptions<L extends string, B extends string> {
  /** More leaves from the same root, by the name the test reads them under → their service (two may share one). */
  leaves?: Record<L, string>;
  /** Services to make the bad-certificate set for (badLeaves in pki.ts). */
  bad?: readonly B[];
}

export type WebApiPkiWith<L extends string, B extends string> = WebApiPki & {
  leaves: Record<L, Leaf>;
  bad: Record<B, BadLeaves>;
};

/**
 * One root and the api and web leaves, made once for the calling test file (its beforeAll):
 * the PKI fixture the pair's test files shared by copying it. A file that needs more leaves
 * (another service, a second leaf for the same one) or the bad-certificate set names them in
 * `opts`, so it still has one fixture rather than a beforeAll of its own.
 */
export function webApiPki<L extends string = never, B extends string = never>(
  opts: WebApiPkiOptions<L, B> = {},
): () => WebApiPkiWith<L, B> {
  let made: WebApiPkiWith<L, B> | undefined;
  beforeAll(async () => {
    const pki = await makePki();
    const leaves = {} as Record<L, Leaf>;
    for (const [name, service] of Object.entries(opts.leaves ?? {}) as [L, string][]) {
      leaves[name] = await pki.leaf(service);
    }
    const bad = {} as Record<B, BadLeaves>;
    for (const service of opts.bad ?? []) bad[service] = await badLeaves(pki, service);
    made = { pki, apiLeaf: await pki.leaf('api'), webLeaf: await pki.leaf('web'), leaves, bad };
  });
  return () => {
    if (!made) throw new Error('the test PKI is made in beforeAll: read it inside a test or a hook');
    return made;
  };
}

/**
 * `get` is read at call time, so a test file may fill its PKI in its own beforeAll; without
 * one the fixture makes its own (webApiPki), and `certs()` reads it.
 */
export function webApiFixture(get: () => WebApiPki = webApiPki()) {
  async function apiInstance(
    name: string,
    address: string,
    opts: { protocol?: 'http' | 'tcp'; appPort?: number; intentions?: typeof ALLOW_WEB } = {},
  ) {
    const { pki, apiLeaf } = get();
    const app = opts.appPort === undefined ? await startHttpApp(name) : undefined;
    const appPort = opts.appPort ?? app!.port;
    const snap = (version: number, intentions = opts.intentions ?? ALLOW_WEB, inboundPortNumber = 0) =>
      snapshot({
        version,
        pki,
        leaf: apiLeaf,
        service: 'api',
        id: name,
        protocol: opts.protocol ?? 'http',
        inboundAddress: address,
        inboundPort: inboundPortNumber,
        appPort,
        intentions,
      });
    const proxy = await startProxy(snap(1));
    const port = inboundPort(proxy);
    return {
      app,
      proxy,
      endpoint: { id: name, address, port },
      deny: () => proxy.apply(snap(2, [], port)),
      /** This instance's snapshot at `version`, on the port it is bound to. */
      snapshot: (version: number) => snap(version, undefined, port),
    };
  }

  function webSnapshot(upstream: UpstreamSpec, version = 1) {
    const { pki, webLeaf } = get();
    return snapshot({ version, pki, leaf: webLeaf, service: 'web', appPort: 1, upstreams: [upstream] });
  }

  function webProxy(upstream: UpstreamSpec): Promise<MeshProxy> {
    return startProxy(webSnapshot(upstream));
  }

  return { apiInstance, webSnapshot, webProxy, certs: get };
}
