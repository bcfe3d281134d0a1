/** The sidecar proxy's public surface, for the agent and the CLI. */
export { runProxy, type RunProxyOptions, type RunningProxy } from './main.js';
export { MeshProxy, DEFAULT_DRAIN_MS, type ProxyOptions, type ProxyHealth, type ProxyState } from './proxy.js';
export {
  parseSnapshot,
  redactSnapshot,
  proxySnapshotSchema,
  type ProxySnapshot,
  type ProxySnapshotInput,
  type RedactedSnapshot,
  type SnapshotUpstream,
  type SnapshotEndpoint,
  type LoadBalancerName,
  type ProxyProtocol,
} from './snapshot.js';
export { startAdmin, adminHandler, MAX_SNAPSHOT_BYTES, MAX_DRAIN_SECONDS, type AdminServer } from './admin.js';
