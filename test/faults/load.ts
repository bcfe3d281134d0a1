/**
 * Bounded load: `count` GETs at a fixed rate through a local port (an app's upstream listener),
 * a few in flight at a time, each with its own timeout. Every answer is kept, so a scenario can
 * say exactly how many failed and why.
 */
import http from 'node:http';

export interface LoadResult {
  sent: number;
  ok: number;
  failed: Array<{ status: number; reason: string }>;
  /** When request i was made (before it was written), by the test's clock. */
  sentAt: number[];
}

export interface LoadOptions {
  port: number;
  host?: string;
  count: number;
  perSecond: number;
  timeoutMs?: number;
  /** Request i asks for `/?n=i`, so the app can tell which requests reached it. */
  numbered?: boolean;
}

export function describeLoad(o: LoadOptions): string {
  return `${o.count} GET at ${o.perSecond}/s`;
}

function once(o: LoadOptions, agent: http.Agent, i: number): Promise<{ status: number; reason: string }> {
  return new Promise((resolve) => {
    const path = o.numbered ? `/?n=${i}` : '/';
    const req = http.get(
      { host: o.host ?? '127.0.0.1', port: o.port, path, agent, timeout: o.timeoutMs ?? 5000 },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, reason: String(res.headers['x-meshctl-reason'] ?? '') }),
        );
        res.on('error', (e) => resolve({ status: 0, reason: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: 0, reason: e.message }));
  });
}

/** Runs the load while `during` runs (started after `leadMs`), and until all `count` requests are answered. */
export async function underLoad(o: LoadOptions, during: () => Promise<void>, leadMs = 500): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const result: LoadResult = { sent: 0, ok: 0, failed: [], sentAt: [] };
  const every = 1000 / o.perSecond;
  const started = Date.now();
  const inflight = new Set<Promise<void>>();
  const loop = (async () => {
    for (let i = 0; i < o.count; i++) {
      const due = started + i * every;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      result.sent += 1;
      result.sentAt.push(Date.now());
      const p = once(o, agent, i).then((a) => {
        if (a.status === 200) result.ok += 1;
        else result.failed.push(a);
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await Promise.all(inflight);
  })();
  await new Promise((r) => setTimeout(r, leadMs));
  try {
    await during();
  } finally {
    await loop;
    agent.destroy();
  }
  return result;
}

/** "3 × 502 connect-failure, 1 × 0 socket hang up" */
export function failureSummary(r: LoadResult): string {
  const by = new Map<string, number>();
  for (const f of r.failed) {
    const k = `${f.status} ${f.reason}`.trim();
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return [...by].map(([k, n]) => `${n} × ${k}`).join(', ');
}
