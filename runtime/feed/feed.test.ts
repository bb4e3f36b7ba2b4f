/**
 * The extension's wiring, with a fake stream source: what the source delivers and what the bus
 * publishes (but `@argus.batch`) reach clients; the mode picks the source; bad options are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { LogTap, LogTapListener } from '../../actors/log/types.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { hashToken } from '../auth.ts';
import { realClock } from '../clock.ts';
import { startHttp } from '../http.ts';
import { createRuntime } from '../runtime.ts';
import { defaultSource, eventFeed } from './feed.ts';
import type { FeedEvent } from './filter.ts';
import type { DeliverEvents, EventSource } from './tail.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

class FakeSource implements EventSource {
  readonly name = 'fake';
  deliver: DeliverEvents | undefined;
  stopped = false;
  async start(deliver: DeliverEvents): Promise<void> {
    this.deliver = deliver;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

const embedded = () => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-feed-unit-'));
  dirs.push(dir);
  return { dataDir: dir, http: false };
};

describe('eventFeed', () => {
  it('sends what its source delivers and the bus events, but not batch events', async () => {
    const source = new FakeSource();
    const rt = createRuntime(embedded());
    const feed = eventFeed({
      tokens: [{ name: 't', sha256: hashToken('tok'), scopes: ['read'] }],
      source: () => source,
    });
    rt.use(feed);
    await rt.start();
    cleanups.push(() => rt.stop());
    const http = await startHttp(rt, '127.0.0.1', 0);
    cleanups.push(() => http.close());

    const ws = new WebSocket(`${http.url.replace('http:', 'ws:')}/api/v1/events/stream`, {
      headers: { authorization: 'Bearer tok' },
    });
    cleanups.push(() => ws.terminate());
    const frames: { type: string; event?: FeedEvent }[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    await waitFor('hello', () => frames.length > 0);
    ws.send('{"type":"subscribe"}');
    await waitFor('subscribed', () => frames.some((f) => f.type === 'subscribed'));

    source.deliver!([{ type: '@argus.alert', n: 1 }]);
    // The runtime's bus, as its shards and supervisors would publish on it.
    const bus = (rt as unknown as { events: { publish(e: unknown): void } }).events;
    bus.publish({ type: '@argus.batch', node: 'x' });
    bus.publish({ type: '@argus.deadletter', kind: 'k', key: 'a' });
    source.deliver!([{ type: '@argus.notify', n: 2 }]);
    await waitFor('three events', () => frames.filter((f) => f.type === 'event').length === 3);
    expect(frames.filter((f) => f.type === 'event').map((f) => f.event?.type)).toEqual([
      '@argus.alert',
      '@argus.deadletter',
      '@argus.notify',
    ]);
    expect(feed.stats()).toMatchObject({ clients: 1, published: 3, replayable: 3 });
    await rt.stop();
    expect(source.stopped).toBe(true);
  });

  it('tails log streams from the logTap option, subscribing only while a client tails', async () => {
    const listeners = new Set<LogTapListener>();
    const tap: LogTap = {
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    let asked = 0;
    const rt = createRuntime(embedded());
    const feed = eventFeed({
      tokens: [{ name: 't', sha256: hashToken('tok'), scopes: ['read'] }],
      source: () => new FakeSource(),
      logTap: () => {
        asked++;
        return tap;
      },
    });
    rt.use(feed);
    await rt.start();
    cleanups.push(() => rt.stop());
    const http = await startHttp(rt, '127.0.0.1', 0);
    cleanups.push(() => http.close());
    const ws = new WebSocket(`${http.url.replace('http:', 'ws:')}/api/v1/events/stream`, {
      headers: { authorization: 'Bearer tok' },
    });
    cleanups.push(() => ws.terminate());
    const frames: { type: string }[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    await waitFor('hello', () => frames.length > 0);
    expect([asked, listeners.size]).toEqual([0, 0]);
    ws.send('{"type":"tail","stream":"web","filter":"status >= 500"}');
    await waitFor('tailing', () => frames.some((f) => f.type === 'tailing'));
    expect([asked, listeners.size]).toEqual([1, 1]);
    for (const l of listeners)
      l('web', [
        { time: 1, fields: { status: 200 } },
        { time: 2, fields: { status: 500 } },
      ]);
    await waitFor('the log frame', () => frames.some((f) => f.type === 'log'));
    expect(frames.slice(1)).toEqual([
      { type: 'tailing', stream: 'web', filter: 'status >= 500' },
      { type: 'log', stream: 'web', records: [{ time: 2, fields: { status: 500 } }] },
    ]);
    expect(feed.stats()).toMatchObject({ clients: 1, tails: 1, sampledOut: 0 });
    await rt.stop();
    expect(listeners.size).toBe(0);
  });

  it('tails Kafka in kafka mode and takes onOutput on one embedded node', () => {
    const kafka = createRuntime({ mode: 'kafka', kafka: { brokers: ['127.0.0.1:9'], topicPrefix: 'p' } });
    expect(defaultSource(kafka, 10, realClock).name).toBe("topic 'p.stream.events'");
    expect(defaultSource(createRuntime(embedded()), 10, realClock).name).toBe("output stream 'events'");
  });

  it('refuses bad options naming the field', () => {
    expect(() => createRuntime(embedded()).use(eventFeed({ bufferBytes: 0 }))).toThrow(
      /eventFeed: bufferBytes must be an integer ≥ 1/,
    );
    expect(() => createRuntime(embedded()).use(eventFeed({ replayMax: -1 }))).toThrow(/replayMax/);
    expect(() => createRuntime(embedded()).use(eventFeed({ tailBufferBytes: 0.5 }))).toThrow(
      /eventFeed: tailBufferBytes must be an integer ≥ 1/,
    );
  });
});
