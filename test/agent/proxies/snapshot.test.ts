/**
 * The agent's snapshot of a sidecar (src/agent/proxies/snapshot.ts): which protocol the
 * service's inbound and its upstreams run, from the registrations and, when set, the service's
 * service-defaults `protocol` (issue 14: as in Consul, that entry is where a service's protocol
 * is said, and both sides of a call follow it).
 */
import { describe, expect, it } from 'vitest';
import { buildSnapshot, type SnapshotInputs } from '../../../src/agent/proxies/snapshot.js';
import { configEntrySchema, type ConfigEntry } from '../../../src/api/config-entries.js';
import { serviceRegistrationSchema, type InstanceView } from '../../../src/api/schemas.js';

function instance(name: string, protocol: 'http' | 'tcp', port: number): InstanceView {
  return {
    ...serviceRegistrationSchema.parse({ name, port, meshPort: port + 1000, protocol }),
    id: `${name}-1`,
    node: 'n1',
    address: '127.0.0.1',
    checkStates: {},
    registeredAt: '2026-12-02T00:00:00.000Z',
    updatedAt: '2026-12-02T00:00:00.000Z',
    nodeAlive: true,
    status: 'passing',
  };
}

function snapshotOf(web: 'http' | 'tcp', api: 'http' | 'tcp', entries: unknown[]) {
  const inputs: SnapshotInputs = {
    version: 1,
    trustDomain: 'mesh.local',
    advertise: '127.0.0.1',
    service: {
      id: 'web-1',
      registration: serviceRegistrationSchema.parse({
        name: 'web',
        port: 9000,
        protocol: web,
        upstreams: [{ service: 'api', localPort: 18000 }],
      }),
      source: { kind: 'cli' },
    },
    meshPort: 21000,
    leaf: { certPem: 'c', keyPem: 'k', rootsPem: ['r'], notBefore: 0, notAfter: 1 },
    intentions: { defaultAction: 'allow', intentions: [] },
    revokedSerials: [],
    instancesOf: (s) => (s === 'api' ? [instance('api', api, 9100)] : []),
    configEntries: entries.map((e) => configEntrySchema.parse(e) as ConfigEntry),
    endpointId: (x) => `${x.id}.${x.node}`,
  };
  const snap = buildSnapshot(inputs);
  return { inbound: snap.service.protocol, upstream: snap.upstreams[0]!.protocol, snap };
}

describe('the protocol in a sidecar snapshot', () => {
  it('without service-defaults: the registrations say (today behaviour)', () => {
    expect(snapshotOf('http', 'http', [])).toMatchObject({ inbound: 'http', upstream: 'http' });
    expect(snapshotOf('tcp', 'tcp', [])).toMatchObject({ inbound: 'tcp', upstream: 'tcp' });
  });

  it("service-defaults protocol wins over the registrations, for the service's own inbound and for its callers", () => {
    const r = snapshotOf('tcp', 'tcp', [
      { kind: 'service-defaults', name: 'api', protocol: 'http', request_timeout: '2s' },
      { kind: 'service-defaults', name: 'web', protocol: 'http' },
    ]);
    expect([r.inbound, r.upstream]).toEqual(['http', 'http']);
    // Now http, the upstream takes the rest of its service-defaults too.
    expect(r.snap.upstreams[0]!.resilience?.requestTimeoutMs).toBe(2000);
    const t = snapshotOf('http', 'http', [
      { kind: 'service-defaults', name: 'api', protocol: 'tcp' },
      { kind: 'service-defaults', name: 'web', protocol: 'tcp' },
    ]);
    expect([t.inbound, t.upstream]).toEqual(['tcp', 'tcp']);
    expect(t.snap.upstreams[0]!.resilience).toBeUndefined();
  });

  it('service-defaults without a protocol leave the registrations to say', () => {
    const r = snapshotOf('tcp', 'http', [{ kind: 'service-defaults', name: 'api', request_timeout: '2s' }]);
    expect([r.inbound, r.upstream]).toEqual(['tcp', 'http']);
  });
});
