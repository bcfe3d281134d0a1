/** Builds a proxy's config snapshot from what the agent knows (pure: no I/O). */
import type { ProxySnapshotInput } from '../../proxy/snapshot.js';
import type { InstanceView } from '../../api/schemas.js';
import type { LocalService } from '../state.js';
import type { IntentionsView } from './watch.js';
import type { Leaf } from './leaf.js';

export interface SnapshotInputs {
  version: number;
  trustDomain: string;
  /** Address the inbound listener binds (the node's advertised address). */
  advertise: string;
  service: LocalService;
  meshPort: number;
  leaf: Leaf;
  intentions: IntentionsView;
  /** Serials of revoked service leaves (CatalogWatch.revokedSerials). */
  revokedSerials: readonly string[];
  instancesOf: (service: string) => InstanceView[] | undefined;
  accessLog?: { enabled: boolean; path?: string };
}

const LOOPBACK = /^127\.|^::1$/;

export function buildSnapshot(i: SnapshotInputs): ProxySnapshotInput {
  const reg = i.service.registration;
  return {
    version: i.version,
    trustDomain: i.trustDomain,
    service: {
      name: reg.name,
      id: i.service.id,
      protocol: reg.protocol,
      inbound: { address: i.advertise, port: i.meshPort },
      // The app is reached on loopback; a loopback registration address (one host, several "hosts") is kept.
      app: { address: reg.address && LOOPBACK.test(reg.address) ? reg.address : '127.0.0.1', port: reg.port },
    },
    tls: { certPem: i.leaf.certPem, keyPem: i.leaf.keyPem, rootsPem: i.leaf.rootsPem },
    defaultIntention: i.intentions.defaultAction,
    intentions: i.intentions.intentions,
    revokedSerials: [...i.revokedSerials],
    upstreams: reg.upstreams.map((u) => ({
      service: u.service,
      // The upstream's own protocol decides L4 vs L7: an http upstream gets HTTP handling.
      protocol: (i.instancesOf(u.service) ?? []).some((x) => x.protocol === 'http') ? 'http' : 'tcp',
      localAddress: u.localAddress,
      localPort: u.localPort,
      loadBalancer: u.loadBalancer,
      endpoints: (i.instancesOf(u.service) ?? [])
        .filter((x) => x.meshPort !== undefined && x.status !== 'critical')
        .map((x) => ({ id: x.id, node: x.node, address: x.address, port: x.meshPort!, weight: x.weight })),
    })),
    ...(i.accessLog ? { accessLog: i.accessLog } : {}),
  };
}
