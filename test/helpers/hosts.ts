/**
 * Loopback "host" addresses: a block of its own for each test file that runs agents with sidecars.
 * Test files run in parallel, and an agent picks a sidecar's mesh port (21000 up) by trying to
 * bind its host address; two files probing one address at the same moment would both pick 21000,
 * and one mesh's sidecar would get the other's traffic. `meshctl demo` has 127.0.100.2-4.
 */
export const HOSTS = {
  agent: ['127.0.0.2', '127.0.0.3'],
  dataplane: ['127.0.2.2', '127.0.2.3', '127.0.2.4'],
  rotation: ['127.0.3.2', '127.0.3.3'],
  /** l7in's block (127.0.9.0/24): the proxy process footprint, limits, drain. */
  footprint: ['127.0.9.2'],
  drain: ['127.0.9.10', '127.0.9.11'],
  /** perf (#13): 50 MB bodies through a pair of sidecar processes (web, api). */
  bodyMemory: ['127.0.9.40', '127.0.9.41'],
  /** Two registries (first two) and three agents on one etcd: the HA test. */
  ha: ['127.0.5.2', '127.0.5.3', '127.0.5.4', '127.0.5.5', '127.0.5.6'],
  /** policy's block (127.0.11.0/24): web and api v1/v2 for config entries reaching the sidecars. */
  policy: ['127.0.11.2', '127.0.11.3', '127.0.11.4'],
  /** sec's block (127.0.6.0/24): a removed node's leaves refused at a sidecar. */
  revocation: ['127.0.6.2', '127.0.6.3'],
  /** sec's block: exec checks refused through the socket. */
  execChecks: ['127.0.6.4'],
  /** sec's block: the demo's hosts join with scoped tokens. */
  demoScopes: ['127.0.6.5', '127.0.6.6'],
  /** The CLI's golden files: one running agent, two joined hosts that never start. */
  /** The CLI's golden files: one running agent, two joined hosts that never start, one address nobody listens on. */
  golden: ['127.0.12.2', '127.0.12.3', '127.0.12.4', '127.0.12.5'],
  /** structure (#10): the HTTP client's unit tests (servers on port 0). */
  httpClient: ['127.0.12.10'],
  /** structure (#10): the agent's ProxyManager with real sidecars (mesh ports 24620-24629). */
  proxyManager: ['127.0.12.20'],
  /** The L7 outbound forwarder's pair tests (in-process sidecars; engineer l7out's block). */
  l7out: ['127.0.10.2', '127.0.10.3'],
  /** rel (#11): the agent's data-dir lock and socket (127.0.7.0/24). */
  agentLock: ['127.0.7.2', '127.0.7.3'],
  /** rel (#11): registration checks, sidecar listener errors (127.0.7.0/24). */
  registerChecks: ['127.0.7.10', '127.0.7.11'],
  /** rel (#11): a sidecar told to stop is withdrawn from callers before it drains: web, api. */
  withdraw: ['127.0.7.20', '127.0.7.21'],
  /** rel (#11): the fault suite, test/faults (127.0.8.0/24). */
  faults: ['127.0.8.2', '127.0.8.3', '127.0.8.4', '127.0.8.5'],
  /** l7in (#13 §3, #14 L7 intentions): the inbound byte pipe and L7 permissions on real agents. */
  inboundPipe: ['127.0.9.20', '127.0.9.21'],
  l7Permissions: ['127.0.9.30', '127.0.9.31'],
  /** policy (#14): routes, splits, subsets and hash policies on real agents: web, api v1, v1b, v2, v2b. */
  trafficPolicy: ['127.0.11.10', '127.0.11.11', '127.0.11.12', '127.0.11.13', '127.0.11.14'],
  /** resil (#15, 127.0.14.0/24): retries, timeouts, breakers, ejection on real agents (web upstream 24810, web agent /metrics 24811). */
  resilience: ['127.0.14.2', '127.0.14.3', '127.0.14.4', '127.0.14.5'],
  resilienceBlackhole: ['127.0.14.10', '127.0.14.11'],
  /** resil2 (#15, 127.0.15.0/24): the web sidecar's memory under overload past max_concurrent_requests. */
  resilienceOverload: ['127.0.15.2', '127.0.15.3'],
  /** rel (#11): SIGTERM drain and many reconnecting agents in the fault suite. */
  faultsDrain: ['127.0.8.10', '127.0.8.11', '127.0.8.12'],
  /** rel (#12): figures merged across two registries. */
  haMetrics: ['127.0.13.2', '127.0.13.3', '127.0.13.4', '127.0.13.5'],
  /** ha (#12, 127.0.13.10-60): the agent's RegistryLink against three small registries of HTTPS servers. */
  registryLink: ['127.0.13.10', '127.0.13.11', '127.0.13.12'],
  /** ha (#12): three registries (first three) and three agents on one 3-member etcd. */
  haThree: ['127.0.13.20', '127.0.13.21', '127.0.13.22', '127.0.13.23', '127.0.13.24', '127.0.13.25'],
} as const;

/**
 * etcd clusters of the tests' own: each file a block of ports (client, peer per member: 2 × 3
 * ports per cluster), outside Linux's ephemeral range so no port-0 listener can take one.
 */
export const ETCD_PORTS = {
  store: 23790,
  storeTls: 23800,
  sharedMesh: 23810,
  ha: 23820,
  bench: 23830,
  /** ha's block (TEAM.md: 23870, 23880): the notifier on etcd across a compaction. */
  notifierCompaction: 23870,
  /** policy: config entries on a real etcd (test/registry/config-entries.test.ts). */
  configEntries: 23860,
  /** rel (#12): two registries on one etcd, figures merged. */
  haMetrics: 23880,
  /** ha (#12, its block 23890-23899): three registries on one etcd, agents failing over. */
  haThree: 23890,
  /** structure (#10, its block 24600–24699): the golden files of `init --server --store etcd`. */
  golden: 24690,
  /** Nothing listens here: the golden of the refusal of an etcd nobody answers on. */
  goldenUnused: 24699,
} as const;

/** Fixed ports of tests that start proxy processes and must know their listeners up front (l7in: 24300–24399). */
export const PROXY_PORTS = {
  /** test/proxy/drain.test.ts: web's outbound listener for api, api's mesh port. */
  drainWebOutbound: 24310,
  drainApiInbound: 24311,
} as const;

/** Fixed ports of engineer l7out's tests (block 24400–24499). */
/** perf's ports (24300-24399): the body-memory pair's listeners, two of each (one per case). */
export const PERF_PORTS = {
  bodyMemoryWeb: 24300,
  bodyMemoryApi: 24310,
} as const;

/** ha's ports (#12, block 24700-24799). */
export const HA_PORTS = {
  /** test/agent/registry-link.test.ts: each small registry on its own address, this port. */
  registryLink: 24700,
  /** test/ha/three-registries.e2e.test.ts: each registry on its own address, this port. */
  threeRegistries: 24710,
} as const;

export const L7OUT_PORTS = {
  /** The web sidecar process of the forwarder's memory test, on HOSTS.l7out[1]. */
  forwarderMemory: 24400,
} as const;
