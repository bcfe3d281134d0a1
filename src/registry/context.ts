import type { Logger } from '../util/log.js';
import type { Store } from '../store/types.js';
import type { CertificateAuthority } from '../ca/index.js';
import type { RegistryConfig } from './config.js';
import type { Catalog } from './catalog.js';
import type { Nodes } from './nodes.js';
import type { Intentions } from './intentions.js';
import type { ConfigEntries } from './config-entries.js';
import type { TokenStore } from './token-store.js';
import type { ChangeNotifier } from './notifier.js';
import type { MetricsHub } from './metrics.js';
import type { Revocations } from './revocations.js';
import type { WrongTokenLimiter } from './rate-limit.js';
import type { AuditLog } from './audit.js';
import type { PeerDirectory } from './peers.js';
import type { PeerMetrics } from './metrics-peers.js';

/** Everything a route needs; built once by `buildRegistry`. */
export interface RegistryContext {
  config: RegistryConfig;
  store: Store;
  ca: CertificateAuthority;
  catalog: Catalog;
  nodes: Nodes;
  intentions: Intentions;
  configEntries: ConfigEntries;
  tokens: TokenStore;
  notifier: ChangeNotifier;
  metrics: MetricsHub;
  revocations: Revocations;
  wrongTokens: WrongTokenLimiter;
  audit: AuditLog;
  /** The registries serving this mesh (only this one on sqlite). */
  peers: PeerDirectory;
  /** Reads the samples the other registries hold, for the whole mesh's figures. */
  peerMetrics: PeerMetrics;
  log: Logger;
}
