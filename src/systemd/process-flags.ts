/**
 * Flags for node's command line when a registry runs as a service (the systemd unit,
 * templates/systemd/meshctl-registry.service, and the control-plane bench, which starts the
 * registries as the unit does). V8 sizes its heap as the process starts, so these cannot be set
 * from inside (docs/BENCHMARKS.md "Young generation").
 *
 * A young generation of 4 MB semi-spaces instead of Node's 16 MB: a registry grows it to the
 * maximum while it loads and keeps it, and the TLS handshakes of thousands of agents keep it
 * there, so Node's default holds 32 MB of young generation in every registry. With 4 MB, two
 * registries holding 2,500 watchers each on etcd peaked at 271 and 274 MB against 296 MB with
 * the default (issue 12's goal: 300 MB), idle at 96-100 against 111 MB; registration p99 and CPU
 * per change unchanged, 5,000 new watches held in 12.1-12.7 s against 9.2 s (more scavenges
 * while the handshakes' garbage flows).
 */
export const REGISTRY_NODE_FLAGS = ['--max-semi-space-size=4'] as const;
