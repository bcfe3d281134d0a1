import { describe, expect, it } from 'vitest';
import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import { Header } from '../../src/ui/views/Header.js';
import { ServicesTable } from '../../src/ui/views/ServicesTable.js';
import { NodesList } from '../../src/ui/views/NodesList.js';
import { IntentionsList } from '../../src/ui/views/IntentionsList.js';
import { ServiceDetail } from '../../src/ui/views/ServiceDetail.js';
import { HelpOverlay, HELP_KEYS } from '../../src/ui/views/HelpOverlay.js';
import { DashboardView, type DashboardViewProps } from '../../src/ui/views/DashboardView.js';
import { renderFrame } from '../../src/ui/run-dashboard.js';
import { intentionRows, nodeRows, serviceDetail, serviceRows } from '../../src/ui/model.js';
import { MeshError } from '../../src/errors/index.js';
import { bigSnapshot, demoSnapshot, instance, node, NOW, registryStatus, unavailable } from './fixtures.js';
import { fits } from './terminal.js';
import { DEMO_KEYS } from '../../src/demo/command.js';

const frame = (el: React.ReactElement): string => {
  const r = render(el);
  const f = stripVTControlCharacters(r.lastFrame() ?? '');
  r.unmount();
  return f;
};

function viewProps(over: Partial<DashboardViewProps> = {}): DashboardViewProps {
  return {
    snapshot: demoSnapshot(),
    reachable: true,
    error: undefined,
    lastUpdated: NOW,
    now: NOW,
    width: 80,
    height: 23,
    mode: 'overview',
    help: false,
    selected: undefined,
    interactive: true,
    sourceLabel: 'registry https://127.0.0.1:7443',
    ...over,
  };
}

const headerProps = {
  snapshot: demoSnapshot(),
  reachable: true,
  error: undefined,
  lastUpdated: NOW,
  now: NOW,
  width: 80,
  sourceLabel: 'registry https://127.0.0.1:7443',
};

describe('Header', () => {
  it('shows trust domain, reachable registry, revision, store, CA and node cert expiry, policy and metrics window', () => {
    const f = frame(<Header {...headerProps} />);
    expect(f).toContain('mesh.local');
    expect(f).toContain('● reachable');
    expect(f).toContain('rev 42');
    expect(f).toContain('store sqlite');
    expect(f).toContain('CA in 3650d');
    expect(f).toContain('node host-a cert in 23h 59m');
    expect(f).toContain('default deny');
    expect(f).toContain('metrics: 10s window');
  });

  it('says metrics are not available when the registry has none, and leaves out the node cert without an agent', () => {
    const f = frame(
      <Header
        {...headerProps}
        snapshot={demoSnapshot({ metrics: null, metricsProblem: 'not available', agent: null })}
      />,
    );
    expect(f).toContain('metrics: not available');
    expect(f).not.toContain('cert');
  });

  it('says when the figures lack a registry that did not answer (its agents are not counted)', () => {
    const base = demoSnapshot();
    const snap = demoSnapshot({
      metrics: { ...base.metrics!, registries: { asked: 2, missing: ['https://10.0.0.2:7443'] } },
    });
    expect(frame(<Header {...headerProps} snapshot={snap} width={160} />)).toContain(
      'metrics: 10s window, without 1 of 2 registries (https://10.0.0.2:7443 not answering)',
    );
    const whole = demoSnapshot({ metrics: { ...base.metrics!, registries: { asked: 2, missing: [] } } });
    expect(frame(<Header {...headerProps} snapshot={whole} width={160} />)).not.toContain('without');
  });

  it('marks expired certificates', () => {
    const snap = demoSnapshot({
      registry: registryStatus({ caNotAfter: new Date(NOW.getTime() - 2 * 3600_000).toISOString() }),
    });
    expect(frame(<Header {...headerProps} snapshot={snap} />)).toContain('CA expired 2h ago');
  });

  it('shows an unreachable registry in red with the reason and the age of the data it keeps', () => {
    const f = frame(
      <Header
        {...headerProps}
        reachable={false}
        error={unavailable()}
        lastUpdated={new Date(NOW.getTime() - 12_000)}
      />,
    );
    expect(f).toContain('✗ unreachable, showing data 12s old, retrying');
    expect(f).toContain('cannot reach 127.0.0.1:7443 (ECONNREFUSED)');
    expect(f).not.toContain('rev 42');
  });

  it('says failing (not unreachable) for an answer that is an error, and connecting before the first answer', () => {
    const denied = new MeshError('MESH_ERR_UNAUTHENTICATED', 'authentication required');
    expect(frame(<Header {...headerProps} snapshot={undefined} reachable={false} error={denied} />)).toMatch(
      /✗ failing, retrying\n.*authentication required/,
    );
    expect(frame(<Header {...headerProps} snapshot={undefined} reachable={undefined} />)).toContain(
      'connecting to registry https://127.0.0.1:7443',
    );
  });

  it('takes a title, for the demo', () => {
    expect(frame(<Header {...headerProps} title="meshctl demo" />)).toMatch(
      /^meshctl demo {2}mesh\.local {2}registry ● reachable/,
    );
  });

  it('keeps the link state when the terminal is narrow and drops the revision instead', () => {
    const f = frame(<Header {...headerProps} width={44} />);
    expect(f.split('\n')[0]).toContain('● reachable');
    expect(f).not.toContain('rev 42');
    expect(fits(f, 44, 2)).toBe(true);
  });
});

describe('ServicesTable', () => {
  const rows = serviceRows(demoSnapshot());
  it('lists services with healthy/total and what their callers saw: rps, success, mesh errors, percentiles', () => {
    const f = frame(<ServicesTable rows={rows} maxRows={10} width={80} selected="web" interactive />);
    const line = (name: string) => f.split('\n').find((l) => l.includes(` ${name} `)) ?? '';
    expect(f).toContain('SERVICES (3)');
    expect(f).toMatch(/SERVICE\s+HEALTHY\s+RPS\s+OK%\s+MESH ERRORS\s+P50\s+P99/);
    expect(line('api')).toMatch(/api\s+1\/2\s+20\s+98\.0%\s+4\s+2\.0ms\s+40ms/);
    // Nobody in the mesh calls web or db: dashes, not zeros.
    expect(line('web')).toMatch(/^›\s+web\s+1\/1\s+—\s+—\s+—\s+—\s+—/);
    expect(line('db')).toMatch(/db\s+1\/1\s+—\s+—\s+—\s+—\s+—/);
  });

  it('has an empty state', () => {
    expect(frame(<ServicesTable rows={[]} maxRows={10} width={80} selected={undefined} interactive />)).toContain(
      'no services registered',
    );
  });

  it('trims a long list to its rows with "…N more" and keeps the selected service in view', () => {
    const many = serviceRows(bigSnapshot());
    const f = frame(<ServicesTable rows={many} maxRows={8} width={80} selected="svc-30" interactive />);
    const lines = f.split('\n');
    expect(lines).toHaveLength(2 + 8);
    expect(f).toContain('…33 more');
    expect(lines.find((l) => l.startsWith('›'))).toContain('svc-30');
  });

  it('does not mark a selection in a one-shot print', () => {
    expect(
      frame(<ServicesTable rows={rows} maxRows={10} width={80} selected="api" interactive={false} />),
    ).not.toContain('›');
  });
});

describe('NodesList and IntentionsList', () => {
  it('shows each node with its lease state and when it was last seen', () => {
    const f = frame(<NodesList rows={nodeRows(demoSnapshot())} maxRows={5} width={40} now={NOW} />);
    expect(f).toContain('NODES (1/2 alive)');
    expect(f).toMatch(/host-a\s+alive\s+3s ago/);
    expect(f).toMatch(/host-b\s+critical\s+expired/);
  });

  it('with several registries, shows which one each node is on, and the header counts them', () => {
    const s = demoSnapshot();
    s.nodes = [
      node('host-a', { registry: 'https://10.0.0.1:7443' }),
      node('host-b', { registry: 'https://10.0.0.2:7443' }),
    ];
    s.registries = [
      { id: 'a', url: 'https://10.0.0.1:7443', startedAt: NOW.toISOString(), store: 'etcd' },
      { id: 'b', url: 'https://10.0.0.2:7443', startedAt: NOW.toISOString(), store: 'etcd' },
    ];
    const f = frame(<NodesList rows={nodeRows(s)} maxRows={5} width={60} now={NOW} showRegistry />);
    expect(f).toContain('REGISTRY');
    expect(f).toMatch(/host-a\s+alive\s+3s ago\s+10\.0\.0\.1:7443/);
    expect(f).toMatch(/host-b\s+alive\s+3s ago\s+10\.0\.0\.2:7443/);
    // One registry: no column, as before.
    expect(frame(<NodesList rows={nodeRows(s)} maxRows={5} width={60} now={NOW} />)).not.toContain('REGISTRY');
    expect(frame(<Header {...headerProps} snapshot={s} width={100} />)).toContain('registries 2');
  });

  it('has empty states', () => {
    expect(frame(<NodesList rows={[]} maxRows={5} width={40} now={NOW} />)).toContain('no nodes have joined');
    expect(frame(<IntentionsList rows={[]} defaultAction="deny" maxRows={5} width={40} />)).toContain(
      'none: deny applies to all',
    );
  });

  it('shows intentions with the default policy and trims long lists', () => {
    const f = frame(
      <IntentionsList rows={intentionRows(demoSnapshot())} defaultAction="deny" maxRows={5} width={40} />,
    );
    expect(f).toContain('INTENTIONS (default deny)');
    expect(f).toMatch(/web → api\s+allow/);
    const many = frame(
      <IntentionsList rows={intentionRows(bigSnapshot())} defaultAction="allow" maxRows={4} width={40} />,
    );
    expect(many).toContain('…12 more');
    expect(many.split('\n')).toHaveLength(2 + 4);
  });
});

describe('ServiceDetail', () => {
  it('shows instances (trouble first) with their state and the first line of the check output', () => {
    const f = frame(
      <ServiceDetail name="api" detail={serviceDetail(demoSnapshot(), 'api')} maxLines={20} width={80} />,
    );
    const lines = f.split('\n');
    const b = lines.findIndex((l) => l.startsWith('api@host-b'));
    const a = lines.findIndex((l) => l.startsWith('api@host-a'));
    expect(b).toBeGreaterThan(-1);
    expect(b).toBeLessThan(a);
    // ENDPOINT is where callers' sidecars reach it: the mesh port, not the app's 9000.
    expect(lines[b]).toMatch(/127\.0\.0\.3:21001\s+critical\s+2\.0\s+0\.0%\s+1\.0ms\s+0/);
    expect(lines[b + 1]).toContain('↳ api-http: connect ECONNREFUSED 127.0.0.1:9000');
    expect(f).not.toContain('second line never shown');
    expect(lines[a]).toMatch(/127\.0\.0\.2:21000\s+passing\s+18\s+100%\s+9\.0ms\s+1/);
    expect(f).toContain('this service calls no upstreams');
    expect(f).toMatch(/api\s+1\/2 healthy\s+20 rps\s+98\.0% ok\s+p50 2\.0ms\s+p99 40ms/);
    expect(f).toContain('as 1 caller saw it; mesh errors: connect-failure 4');
  });

  it('shows upstreams with their endpoints, figures and mesh errors', () => {
    const f = frame(
      <ServiceDetail name="web" detail={serviceDetail(demoSnapshot(), 'web')} maxLines={20} width={80} />,
    );
    expect(f).toMatch(/→ api\s+127\.0\.0\.1:18000\s+20\s+98\.0%\s+2\.0ms\s+40ms/);
    expect(f).toMatch(/api@host-a\s+18\s+100%\s+9\.0ms/);
    expect(f).toMatch(/api@host-b\s+2\.0\s+0\.0%\s+1\.0ms/);
    expect(f).toContain('mesh errors: connect-failure 4');
    expect(f).toContain('as callers see it: no calls from the mesh in the window');
  });

  it('shows an instance whose sidecar drains as draining (withdrawn on purpose), not as a failing check', () => {
    const snap = demoSnapshot({
      instances: [
        instance('api', 'host-a', {
          meshPort: 21000,
          status: 'critical',
          drainingSince: NOW.toISOString(),
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
          checkStates: { 'api-http': { status: 'passing', output: '200 OK', updatedAt: NOW.toISOString() } },
        }),
        instance('api', 'host-b', { meshPort: 21001 }),
      ],
      services: [{ name: 'api', instances: 2, healthy: 1, tags: [], protocols: ['http'] }],
    });
    const f = frame(<ServiceDetail name="api" detail={serviceDetail(snap, 'api')} maxLines={20} width={80} />);
    const lines = f.split('\n');
    const a = lines.findIndex((l) => l.startsWith('api@host-a'));
    expect(lines[a]).toMatch(/127\.0\.0\.2:21000\s+draining/);
    expect(lines[a + 1]).toContain('↳ sidecar draining: withdrawn from callers while requests in flight finish');
    expect(f).not.toContain('critical');
    // The overview says why api is 1/2.
    const overview = frame(
      <ServicesTable rows={serviceRows(snap)} maxRows={10} width={80} selected={undefined} interactive={false} />,
    );
    expect(overview).toMatch(/api \(1 draining\)\s+1\/2/);
    expect(renderFrame(snap, 100)).toContain('api (1 draining)');
  });

  it('shows a node that went down, and truncates a long check output to the width', () => {
    const snap = demoSnapshot({
      instances: [
        instance('api', 'host-a', {
          nodeAlive: false,
          checkStates: { c: { status: 'critical', output: 'x'.repeat(300), updatedAt: NOW.toISOString() } },
        }),
      ],
    });
    const f = frame(<ServiceDetail name="api" detail={serviceDetail(snap, 'api')} maxLines={20} width={80} />);
    expect(f).toMatch(/api@host-a\s+127\.0\.0\.2:9000\s+node down/);
    expect(f).toContain('↳ c: xxx');
    expect(fits(f, 80, 20)).toBe(true);
  });

  it('says so when the service left the catalog', () => {
    expect(frame(<ServiceDetail name="gone" detail={null} maxLines={20} width={80} />)).toContain(
      "'gone' is no longer in the catalog",
    );
  });

  it('trims many instances with "…N more" inside its lines', () => {
    const snap = demoSnapshot({
      services: [{ name: 'api', instances: 30, healthy: 30, tags: [], protocols: ['http'] }],
      instances: Array.from({ length: 30 }, (_, i) =>
        instance('api', `node-${String(i).padStart(2, '0')}`, { id: `api-${i}` }),
      ),
    });
    const f = frame(<ServiceDetail name="api" detail={serviceDetail(snap, 'api')} maxLines={18} width={80} />);
    expect(f.split('\n').length).toBeLessThanOrEqual(18);
    expect(f).toMatch(/…\d+ more/);
    expect(f).toContain('UPSTREAMS (0)');
  });
});

describe('HelpOverlay', () => {
  it('lists every key', () => {
    const f = frame(<HelpOverlay width={80} maxLines={20} />);
    for (const [k, what] of HELP_KEYS) {
      expect(f).toContain(k);
      expect(f).toContain(what);
    }
  });

  it("lists the demo's own keys (1/2) after the dashboard's", () => {
    const f = frame(<DashboardView {...viewProps({ help: true, extraHelp: DEMO_KEYS })} />);
    expect(f).toMatch(/│ 1\s+demo: stop \/ start api-1's app/);
    expect(f).toMatch(/│ 2\s+demo: stop \/ start api-2's app/);
    expect(fits(f, 80, 23)).toBe(true);
    expect(frame(<DashboardView {...viewProps({ help: true })} />)).not.toContain('demo: stop');
  });
});

describe('DashboardView at 80×24', () => {
  const props = viewProps;

  it('shows header, services, nodes, intentions and the key line', () => {
    const f = frame(<DashboardView {...props()} />);
    expect(fits(f, 80, 23)).toBe(true);
    for (const s of [
      'mesh.local',
      'SERVICES (3)',
      'NODES (1/2 alive)',
      'INTENTIONS (default deny)',
      'web → api',
      'q quit',
    ])
      expect(f).toContain(s);
    expect(f.split('\n').at(-1)).toContain('? help');
  });

  it('fits a big mesh into 23 lines of 80 columns, saying how much is left out', () => {
    const f = frame(<DashboardView {...props({ snapshot: bigSnapshot() })} />);
    expect(fits(f, 80, 23)).toBe(true);
    expect(f.split('\n')).toHaveLength(23);
    expect(f).toMatch(/…\d+ more/g);
    expect(f).toContain('svc-00');
    expect(f).toContain('node-00');
  });

  it('fits the detail and the help too, and a small terminal', () => {
    expect(
      fits(
        frame(<DashboardView {...props({ snapshot: bigSnapshot(), mode: 'detail', selected: 'svc-01' })} />),
        80,
        23,
      ),
    ).toBe(true);
    expect(fits(frame(<DashboardView {...props({ help: true })} />), 80, 23)).toBe(true);
    const small = frame(<DashboardView {...props({ snapshot: bigSnapshot(), width: 60, height: 15 })} />);
    expect(fits(small, 60, 15)).toBe(true);
    expect(small).toContain('SERVICES (40)');
  });

  it('keeps the last data on screen while the registry is unreachable', () => {
    const f = frame(
      <DashboardView
        {...props({ reachable: false, error: unavailable(), lastUpdated: new Date(NOW.getTime() - 5000) })}
      />,
    );
    expect(f).toContain('unreachable, showing data 5s old');
    expect(f).toContain('SERVICES (3)');
    expect(f).toContain('host-a');
  });

  it('shows the unreachable registry with no data yet', () => {
    const f = frame(<DashboardView {...props({ snapshot: undefined, reachable: false, error: unavailable() })} />);
    expect(f).toContain('✗ unreachable, retrying');
    expect(f).not.toContain('SERVICES');
    expect(fits(f, 80, 23)).toBe(true);
  });
});

describe('one plain frame (--once)', () => {
  it('lists everything, with no height limit and no cursor movement', () => {
    const out = renderFrame(bigSnapshot(), 80);
    expect(out).not.toMatch(/\u001B\[\d*[ABCDHJK]/);
    const plain = stripVTControlCharacters(out);
    expect(plain).toContain('svc-39');
    expect(plain).toContain('node-11');
    expect(plain).not.toMatch(/…\d+ more/);
    expect(plain).not.toContain('q quit');
    expect(fits(plain, 80, 1000)).toBe(true);
  });
});
