import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReplayBody } from '../../../../src/proxy/outbound/http/replay-body.js';

/** The app's request body, as a stream we write by hand. */
function source(): PassThrough & IncomingMessage {
  return new PassThrough() as PassThrough & IncomingMessage;
}

function collect(s: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (got += c));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

describe('replay-body', () => {
  it('a second attempt gets what the first read, then the rest as it comes', async () => {
    const src = source();
    const body = new ReplayBody(src, 1024);
    const first = body.attempt();
    const firstGot: string[] = [];
    first.on('data', (c: Buffer) => firstGot.push(c.toString()));
    src.write('hello ');
    await new Promise((r) => setImmediate(r));
    expect(firstGot.join('')).toBe('hello ');
    expect(body.replayable).toBe(true);

    const second = body.attempt(); // the first attempt failed over
    expect(first.destroyed).toBe(true);
    const all = collect(second);
    src.end('world');
    expect(await all).toBe('hello world');
    expect(body.bytes).toBe(11);
  });

  it('past the limit it is no longer replayable, and keeps nothing', async () => {
    const src = source();
    const body = new ReplayBody(src, 8);
    const first = body.attempt();
    const got = collect(first);
    src.end('0123456789');
    expect(await got).toBe('0123456789');
    expect(body.replayable).toBe(false);
    expect(() => body.attempt()).toThrow(/no longer be replayed/);
  });

  it('an unread body stays unread until an attempt wants it (a connect failure reads nothing)', async () => {
    const src = source();
    src.write('abc');
    const body = new ReplayBody(src, 1024);
    body.attempt().destroy(); // the connect failed: the client never read
    await new Promise((r) => setImmediate(r));
    expect(body.bytes).toBe(0);
    const again = collect(body.attempt());
    src.end();
    expect(await again).toBe('abc');
  });

  it("an app that goes away mid-upload fails the attempt's stream", async () => {
    const src = source();
    const body = new ReplayBody(src, 1024);
    const s = body.attempt();
    const done = collect(s);
    src.write('part');
    await new Promise((r) => setImmediate(r));
    src.destroy();
    await expect(done).rejects.toThrow(/cut off by the client/);
    expect(body.replayable).toBe(false);
  });
});
