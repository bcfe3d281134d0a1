/** Builds a proxy's config snapshot from what the agent knows (pure: no I/O). */
import type { ProxySnapshotInput } from '../../proxy/snapshot.js';
import type { InstanceView } from '../../api/schemas.js';
import type { LocalService } from '../state.js';
import type { IntentionsView } from './watch.js';
import type { Leaf } from './leaf.js';
import type { ConfigEntry, IntentionPermission, ServiceDefaults } from '../../api/config-entries.js';
import { compileResilience } from './resilience.js';
import { compilePolicy, indexEntries } from './policy.js';

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
  /** Config entries (CatalogWatch.configEntries): compiled per http upstream into its policy. */
  configEntries: readonly ConfigEntry[];
  /** The id an instance gets in the snapshot (unique per upstream). */
  endpointId: (instance: InstanceView) => string;
  accessLog?: { enabled: boolean; path?: string };
}

const LOOPBACK = /^127\.|^::1$/;

export function buildSnapshot(i: SnapshotInputs): ProxySnapshotInput {
  const reg = i.service.registration;
  const entries = indexEntries(i.configEntries);
  const defaults = (service: string) => entries.get(`service-defaults/${service}`) as ServiceDefaults | undefined;
  return {
    version: i.version,
    trustDomain: i.trustDomain,
    service: {
      name: reg.name,
      id: i.service.id,
      // A service-defaults `protocol` is the service's, as in Consul: its sidecar and its
      // callers' take it over what the registrations say, so both sides agree.
      protocol: defaults(reg.name)?.protocol ?? reg.protocol,
      inbound: { address: i.advertise, port: i.meshPort },
      // The app is reached on loopback; a loopback registration address (one host, several "hosts") is kept.
      app: { address: reg.address && LOOPBACK.test(reg.address) ? reg.address : '127.0.0.1', port: reg.port },
    },
    tls: { certPem: i.leaf.certPem, keyPem: i.leaf.keyPem, rootsPem: i.leaf.rootsPem },
    defaultIntention: i.intentions.defaultAction,
    intentions: i.intentions.intentions.map(snapshotIntention),
    revokedSerials: [...i.revokedSerials],
    upstreams: reg.upstreams.map((u) => {
      // The upstream's own protocol decides L4 vs L7: an http upstream gets HTTP handling. Its
      // service-defaults say which, else its registrations (http when any instance says so).
      const protocol =
        defaults(u.service)?.protocol ??
        ((i.instancesOf(u.service) ?? []).some((x) => x.protocol === 'http') ? 'http' : 'tcp');
      // Routes and splits act on HTTP requests: a tcp upstream keeps today's one balancer.
      const policy =
        protocol === 'http'
          ? compilePolicy({
              upstream: u.service,
              registrationLb: u.loadBalancer,
              entries,
              instancesOf: i.instancesOf,
              endpointId: i.endpointId,
            })
          : undefined;
      // Timeouts, retries, limits, ejection: the called service's defaults (HTTP only).
      const resilience = protocol === 'http' ? compileResilience(defaults(u.service)) : undefined;
      return {
        service: u.service,
        protocol,
        localAddress: u.localAddress,
        localPort: u.localPort,
        loadBalancer: u.loadBalancer,
        endpoints: (i.instancesOf(u.service) ?? [])
          .filter((x) => x.meshPort !== undefined && x.status !== 'critical')
          .map((x) => ({ id: i.endpointId(x), node: x.node, address: x.address, port: x.meshPort!, weight: x.weight })),
        ...(policy ? { policy } : {}),
        ...(resilience ? { resilience } : {}),
      };
    }),
    ...(i.accessLog ? { accessLog: i.accessLog } : {}),
  };
}

type ViewIntention = IntentionsView['intentions'][number];

/**
 * An intention as the proxy gets it. A source with L7 permissions carries them: the
 * destination's inbound then parses HTTP and decides each request by them
 * (src/proxy/inbound/permissions.ts); its connection-level action is the registry's `allow`.
 */
function snapshotIntention(x: ViewIntention): ProxySnapshotInput['intentions'][number] {
  if (!x.permissions) return { source: x.source, destination: x.destination, action: x.action };
  return { source: x.source, destination: x.destination, action: x.action, permissions: x.permissions.map(permission) };
}

function permission(
  p: IntentionPermission,
): NonNullable<ProxySnapshotInput['intentions'][number]['permissions']>[number] {
  const h = p.http;
  return {
    action: p.action,
    ...(h.path_exact !== undefined ? { pathExact: h.path_exact } : {}),
    ...(h.path_prefix !== undefined ? { pathPrefix: h.path_prefix } : {}),
    ...(h.path_regex !== undefined ? { pathRegex: h.path_regex } : {}),
    ...(h.methods ? { methods: h.methods } : {}),
    ...(h.header ? { headers: h.header.map((x) => ({ ...x })) } : {}),
  };
}
