import { afterEach, describe, expect, it } from 'vitest';
import { Dashboard } from '../../src/ui/app.js';
import { bigSnapshot, demoSnapshot, FakeSource, unavailable } from './fixtures.js';
import { fits, KEYS, renderInTerminal, type TestTerminal } from './terminal.js';

let open: TestTerminal | undefined;
afterEach(() => {
  open?.app.unmount();
  open = undefined;
});

const selectedLine = (screen: string) => screen.split('\n').find((l) => l.startsWith('›')) ?? '';

describe('the live dashboard', () => {
  it('walks through services with the keyboard: select, open, back, help, quit', async () => {
    const src = new FakeSource();
    const t = (open = renderInTerminal(<Dashboard source={src} intervalMs={50} />));
    await t.waitFor((s) => s.includes('SERVICES (3)') && s.includes('● reachable'), 'the overview');
    expect(selectedLine(t.screen())).toMatch(/›\s+api/);

    t.press(KEYS.down);
    await t.waitFor((s) => /›\s+db/.test(selectedLine(s)), 'db selected');
    t.press(KEYS.tab);
    await t.waitFor((s) => /›\s+web/.test(selectedLine(s)), 'web selected by tab');
    t.press(KEYS.tab);
    await t.waitFor((s) => /›\s+api/.test(selectedLine(s)), 'tab wrapping to api');
    t.press(KEYS.shiftTab);
    await t.waitFor((s) => /›\s+web/.test(selectedLine(s)), 'shift-tab back to web');

    t.press(KEYS.enter);
    await t.waitFor((s) => s.includes('UPSTREAMS (1)') && s.includes('web@host-a'), "web's detail");
    expect(t.screen()).toContain('api@host-b');
    t.press(KEYS.up);
    await t.waitFor((s) => s.includes('db@host-b'), 'up moving the detail to db');
    t.press(KEYS.escape);
    await t.waitFor((s) => s.includes('SERVICES (3)') && /›\s+db/.test(selectedLine(s)), 'back to the overview on db');

    t.press(KEYS.up);
    t.press(KEYS.right);
    await t.waitFor((s) => s.includes('INSTANCES (2)') && s.includes('ECONNREFUSED'), "api's detail by →");
    t.press(KEYS.left);
    await t.waitFor((s) => s.includes('SERVICES (3)'), 'back by ←');

    t.press('?');
    await t.waitFor((s) => s.includes('Keys') && s.includes('show or hide this help'), 'the help');
    t.press(KEYS.down);
    t.press('?');
    await t.waitFor((s) => !s.includes('show or hide this help') && s.includes('SERVICES (3)'), 'the help closed');
    expect(selectedLine(t.screen())).toMatch(/›\s+api/);

    t.press('q');
    await t.app.waitUntilExit();
    const reads = src.reads;
    await new Promise((r) => setTimeout(r, 150));
    expect(src.reads).toBeLessThanOrEqual(reads + 1);
  });

  it('keeps the screen while the registry is away and comes back', async () => {
    const src = new FakeSource();
    const t = (open = renderInTerminal(<Dashboard source={src} intervalMs={30} />));
    await t.waitFor((s) => s.includes('● reachable'), 'the overview');
    src.fail = unavailable();
    await t.waitFor(
      (s) => s.includes('✗ unreachable') && s.includes('ECONNREFUSED') && s.includes('SERVICES (3)'),
      'unreachable with the old data',
    );
    src.fail = undefined;
    await t.waitFor((s) => s.includes('● reachable'), 'reachable again');
  });

  it('fits the terminal and redraws to its new size on resize', async () => {
    const src = new FakeSource(bigSnapshot());
    const t = (open = renderInTerminal(<Dashboard source={src} intervalMs={50} />, { columns: 80, rows: 24 }));
    await t.waitFor((s) => s.includes('SERVICES (40)'), 'the overview');
    expect(fits(t.screen(), 80, 23)).toBe(true);
    t.stdout.resize(60, 14);
    await t.waitFor((s) => fits(s, 60, 13) && s.includes('SERVICES (40)'), 'a frame for 60×14');
    t.stdout.resize(120, 40);
    await t.waitFor((s) => s.split('\n').length > 30 && fits(s, 120, 39), 'a frame for 120×40');
  });

  it('selects a service that is still there when the selected one leaves', async () => {
    const src = new FakeSource();
    const t = (open = renderInTerminal(<Dashboard source={src} intervalMs={30} />));
    await t.waitFor((s) => s.includes('SERVICES (3)'), 'the overview');
    t.press(KEYS.down);
    await t.waitFor((s) => /›\s+db/.test(selectedLine(s)), 'db selected');
    src.snapshot = demoSnapshot({ services: demoSnapshot().services.filter((s) => s.name !== 'db') });
    await t.waitFor((s) => s.includes('SERVICES (2)') && /›\s+api/.test(selectedLine(s)), 'the selection falling back');
  });
});
