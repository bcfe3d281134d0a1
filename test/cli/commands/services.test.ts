/**
 * `meshctl services` text with resilience lines, pinned by a golden file: the e2e files show the
 * lines with real sidecars (test/agent/resilience.e2e.test.ts), but their counts depend on when
 * the window is read, so the layout is pinned here from fixed figures.
 */
import { describe, expect, it } from 'vitest';
import type { ServiceView } from '../../../src/agent/admin-api.js';
import { emptyResilience } from '../../../src/api/resilience-window.js';
import { servicesText } from '../../../src/cli/commands/services.js';
import { expectGolden } from '../../helpers/golden.js';

function service(id: string, over: Partial<ServiceView> = {}): ServiceView {
  return {
    id,
    name: id,
    port: 8080,
    protocol: 'http',
    tags: [],
    weight: 1,
    upstreams: [],
    source: { kind: 'cli' },
    status: 'passing',
    checks: [],
    ...over,
  };
}

describe('meshctl services text', () => {
  it('a line per upstream whose resilience did something in the window, none for quiet ones', async () => {
    const busy = {
      ...emptyResilience(),
      retries: 12,
      timeouts: 2,
      circuitOpen: { 'max-requests': 4, 'max-retries': 1 },
      ejections: 1,
      ejected: 1,
    };
    const lines = servicesText({
      services: [
        service('web', {
          resilience: {
            windowSeconds: 10,
            upstreams: [
              { service: 'api', ...busy },
              { service: 'db', ...emptyResilience() },
            ],
          },
        }),
        // A sidecar with nothing to report, and a service without a sidecar: no lines.
        service('worker', { resilience: { windowSeconds: 10, upstreams: [{ service: 'api', ...emptyResilience() }] } }),
        service('api', { port: 9000 }),
      ],
      definitionProblems: [],
    });
    expect(lines.filter((l) => l.includes('→'))).toHaveLength(1);
    await expectGolden('services-resilience.txt', `${lines.join('\n')}\n`);
  });
});
