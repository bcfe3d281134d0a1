/** Snapshots and a scriptable data source for the dashboard tests (the views only ever see data). */
import type { InstanceView, Intention, NodeView, ServiceSummary } from '../../src/api/schemas.js';
import type { MetricsOverview, ServiceMetricsView } from '../../src/api/metrics.js';
import type { RegistryStatus } from '../../src/api/registry-client.js';
import { MeshError } from '../../src/errors/index.js';
import type { AgentInfo, MeshDataSource, MeshSnapshot } from '../../src/ui/data/source.js';

export const NOW = new Date('2025-06-01T12:00:00.000Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
const inFuture = (s: number) => new Date(NOW.getTime() + s * 1000).toISOString();

export const registryStatus = (over: Partial<RegistryStatus> = {}): RegistryStatus => ({
  trustDomain: 'mesh.local',
  revision: 42,
  store: 'sqlite',
  defaultIntention: 'deny',
  caFingerprint: 'AA:BB',
  caNotAfter: inFuture(3650 * 86_400),
  blockingQueries: 0,
  leaseTtlSeconds: 15,
  ...over,
});

export function instance(name: string, node: string, over: Partial<InstanceView> = {}): InstanceView {
  return {
    id: name,
    name,
    node,
    address: node === 'host-a' ? '127.0.0.2' : '127.0.0.3',
    port: 9000,
    tags: [],
    meta: {},
    weight: 1,
    protocol: 'http',
    upstreams: [],
    checks: [],
    proxy: true,
    checkStates: {},
    registeredAt: ago(600),
    updatedAt: ago(60),
    nodeAlive: true,
    status: 'passing',
    ...over,
  };
}

export function node(name: string, over: Partial<NodeView> = {}): NodeView {
  return {
    name,
    address: '127.0.0.2',
    meta: {},
    joinedAt: ago(3600),
    alive: true,
    lastSeen: ago(3),
    services: 1,
    ...over,
  };
}

export function intention(source: string, destination: string, action: 'allow' | 'deny' = 'allow'): Intention {
  return { source, destination, action, description: '', createdAt: ago(100), updatedAt: ago(100) };
}

export function serviceMetrics(name: string, over: Partial<ServiceMetricsView> = {}): ServiceMetricsView {
  return {
    name,
    rps: 12.34,
    successRate: 0.9991,
    p50Ms: 1.25,
    p99Ms: 8.5,
    maxMs: 20,
    requests: 123,
    failed: 0,
    meshErrors: {},
    callers: 1,
    activeConnections: 2,
    bytesInPerSec: 0,
    bytesOutPerSec: 0,
    instances: [],
    upstreams: [],
    ...over,
  };
}

/** A per-instance figure row, as the registry reports callers' attempts to one instance. */
export function instanceMetrics(
  node: string,
  serviceId: string,
  over: Partial<ServiceMetricsView['instances'][number]> = {},
): ServiceMetricsView['instances'][number] {
  return {
    node,
    serviceId,
    rps: 0,
    successRate: null,
    p50Ms: null,
    p99Ms: null,
    attempts: 0,
    failed: 0,
    activeConnections: 0,
    ...over,
  };
}

/** The demo's shape: web → api, two api instances (one failing its check), and a db nobody calls. */
export function demoSnapshot(over: Partial<MeshSnapshot> = {}): MeshSnapshot {
  const instances = [
    instance('web', 'host-a', {
      port: 8080,
      upstreams: [{ service: 'api', localPort: 18000, localAddress: '127.0.0.1', loadBalancer: 'round_robin' }],
    }),
    instance('api', 'host-a', {
      meshPort: 21000,
      checks: [
        {
          id: 'api-http',
          kind: 'http',
          target: 'http://127.0.0.1:9000/health',
          intervalMs: 1000,
          timeoutMs: 500,
          successBeforePassing: 1,
          failuresBeforeCritical: 1,
        },
      ],
      checkStates: {
        'api-http': { status: 'passing', output: 'HTTP GET http://127.0.0.1:9000/health: 200 OK', updatedAt: ago(1) },
      },
    }),
    instance('api', 'host-b', {
      meshPort: 21001,
      status: 'critical',
      checks: [
        {
          id: 'api-http',
          kind: 'http',
          target: 'http://127.0.0.1:9000/health',
          intervalMs: 1000,
          timeoutMs: 500,
          successBeforePassing: 1,
          failuresBeforeCritical: 1,
        },
      ],
      checkStates: {
        'api-http': {
          status: 'critical',
          output: 'connect ECONNREFUSED 127.0.0.1:9000\nsecond line never shown',
          updatedAt: ago(1),
        },
      },
    }),
    instance('db', 'host-b', { port: 5432, protocol: 'tcp' }),
  ];
  const services: ServiceSummary[] = [
    { name: 'api', instances: 2, healthy: 1, tags: [], protocols: ['http'] },
    { name: 'db', instances: 1, healthy: 1, tags: [], protocols: ['tcp'] },
    { name: 'web', instances: 1, healthy: 1, tags: [], protocols: ['http'] },
  ];
  const metrics: MetricsOverview = {
    windowSeconds: 10,
    generatedAt: NOW.toISOString(),
    services: [
      // What web (api's one caller) saw of api: 4 of 200 requests got a mesh error.
      serviceMetrics('api', {
        rps: 20,
        successRate: 0.98,
        p50Ms: 2,
        p99Ms: 40,
        requests: 200,
        failed: 4,
        meshErrors: { 'connect-failure': 4 },
        callers: 1,
        instances: [
          instanceMetrics('host-a', 'api', {
            rps: 18,
            successRate: 1,
            p50Ms: 1.25,
            p99Ms: 9,
            attempts: 180,
            activeConnections: 1,
          }),
          instanceMetrics('host-b', 'api', { rps: 2, successRate: 0, p99Ms: 1, attempts: 20, failed: 20 }),
        ],
      }),
      // Nothing in the mesh calls web (the demo's traffic reaches its app directly).
      serviceMetrics('web', {
        rps: 0,
        successRate: null,
        p50Ms: null,
        p99Ms: null,
        maxMs: null,
        requests: 0,
        callers: 0,
        activeConnections: 0,
        instances: [instanceMetrics('host-a', 'web')],
        upstreams: [
          {
            service: 'api',
            rps: 20,
            successRate: 0.98,
            p50Ms: 2,
            p99Ms: 40,
            meshErrors: { 'connect-failure': 4 },
            endpoints: [
              { endpoint: 'api', node: 'host-a', rps: 18, successRate: 1, p99Ms: 9 },
              { endpoint: 'api', node: 'host-b', rps: 2, successRate: 0, p99Ms: 1 },
            ],
          },
        ],
      }),
    ],
  };
  return {
    source: 'registry https://127.0.0.1:7443',
    fetchedAt: NOW.toISOString(),
    registry: registryStatus(),
    services,
    instances,
    nodes: [node('host-a'), node('host-b', { address: '127.0.0.3', alive: false, lastSeen: undefined, services: 2 })],
    intentions: [intention('web', 'api')],
    defaultAction: 'deny',
    metrics,
    metricsProblem: null,
    agent: { node: 'host-a', registryReachable: true, nodeCertNotAfter: inFuture(23 * 3600 + 59 * 60) },
    ...over,
  };
}

/** A mesh too big for 80×24: many services, nodes and intentions. */
export function bigSnapshot(): MeshSnapshot {
  const names = Array.from({ length: 40 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
  return demoSnapshot({
    services: names.map((name) => ({ name, instances: 3, healthy: 3, tags: [], protocols: ['http'] })),
    instances: names.flatMap((name) => [instance(name, 'host-a'), instance(name, 'host-b')]),
    nodes: Array.from({ length: 12 }, (_, i) => node(`node-${String(i).padStart(2, '0')}`)),
    intentions: names.slice(0, 15).map((n) => intention('web', n)),
    metrics: { windowSeconds: 10, generatedAt: NOW.toISOString(), services: names.map((n) => serviceMetrics(n)) },
  });
}

/** A data source whose answers the test scripts: `fail` makes every read throw until cleared. */
export class FakeSource implements MeshDataSource {
  readonly label = 'fake registry';
  snapshot: MeshSnapshot;
  fail: MeshError | undefined;
  metricsMissing = false;
  reads = 0;
  closed = false;

  constructor(snapshot: MeshSnapshot = demoSnapshot()) {
    this.snapshot = snapshot;
  }

  private answer<T>(v: T): Promise<T> {
    if (this.fail) return Promise.reject(this.fail);
    return Promise.resolve(v);
  }
  status() {
    this.reads += 1;
    return this.answer(this.snapshot.registry);
  }
  services() {
    return this.answer(this.snapshot.services);
  }
  instances() {
    return this.answer(this.snapshot.instances);
  }
  nodes() {
    return this.answer(this.snapshot.nodes);
  }
  intentions() {
    return this.answer({ intentions: this.snapshot.intentions, defaultAction: this.snapshot.defaultAction });
  }
  metrics() {
    if (this.metricsMissing || !this.snapshot.metrics)
      return Promise.reject(new MeshError('MESH_ERR_NOT_FOUND', 'Route GET:/v1/metrics/services not found'));
    return this.answer(this.snapshot.metrics);
  }
  agent(): Promise<AgentInfo | undefined> {
    return this.answer(this.snapshot.agent ?? undefined);
  }
  close() {
    this.closed = true;
  }
}

export const unavailable = () => new MeshError('MESH_ERR_UNAVAILABLE', 'cannot reach 127.0.0.1:7443 (ECONNREFUSED)');
