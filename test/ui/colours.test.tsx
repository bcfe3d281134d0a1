/**
 * Colours carry meaning (red: unreachable, critical), so check them with colour forced on;
 * the colour library reads the environment when it loads, hence the late imports.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { ReactElement } from 'react';

process.env.FORCE_COLOR = '1';

const RED = '\u001B[31m';
let frame: (el: ReactElement) => string;
let ui: {
  Header: typeof import('../../src/ui/views/Header.js').Header;
  NodesList: typeof import('../../src/ui/views/NodesList.js').NodesList;
  ServiceDetail: typeof import('../../src/ui/views/ServiceDetail.js').ServiceDetail;
  model: typeof import('../../src/ui/model.js');
  fx: typeof import('./fixtures.js');
};

beforeAll(async () => {
  const { render } = await import('ink-testing-library');
  frame = (el) => {
    const r = render(el);
    const f = r.lastFrame() ?? '';
    r.unmount();
    return f;
  };
  ui = {
    Header: (await import('../../src/ui/views/Header.js')).Header,
    NodesList: (await import('../../src/ui/views/NodesList.js')).NodesList,
    ServiceDetail: (await import('../../src/ui/views/ServiceDetail.js')).ServiceDetail,
    model: await import('../../src/ui/model.js'),
    fx: await import('./fixtures.js'),
  };
});

/** The text right after the last colour code before `text`. */
function colourOf(f: string, text: string): string | undefined {
  const at = f.indexOf(text);
  if (at < 0) return undefined;
  const codes = [...f.slice(0, at).matchAll(/\u001B\[\d+m/g)].map((m) => m[0]);
  return codes.at(-1);
}

describe('colours', () => {
  it('draws an unreachable registry red and a reachable one green', () => {
    const { Header, fx } = ui;
    const base = { snapshot: fx.demoSnapshot(), lastUpdated: fx.NOW, now: fx.NOW, width: 80, sourceLabel: 'x' };
    expect(colourOf(frame(<Header {...base} reachable={false} error={fx.unavailable()} />), '✗ unreachable')).toBe(RED);
    expect(colourOf(frame(<Header {...base} reachable={false} error={fx.unavailable()} />), 'cannot reach')).toBe(RED);
    expect(colourOf(frame(<Header {...base} reachable error={undefined} />), '● reachable')).toBe('\u001B[32m');
  });

  it('draws critical nodes and failing instances red', () => {
    const { NodesList, ServiceDetail, model, fx } = ui;
    expect(
      colourOf(
        frame(<NodesList rows={model.nodeRows(fx.demoSnapshot())} maxRows={5} width={40} now={fx.NOW} />),
        'critical',
      ),
    ).toBe(RED);
    const detail = frame(
      <ServiceDetail name="api" detail={model.serviceDetail(fx.demoSnapshot(), 'api')} maxLines={20} width={80} />,
    );
    expect(colourOf(detail, 'critical')).toBe(RED);
    expect(colourOf(detail, '  ↳ api-http: connect ECONNREFUSED')).toBe(RED);
  });
});
