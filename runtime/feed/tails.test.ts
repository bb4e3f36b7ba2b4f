/**
 * Live tail of log streams on the feed hub, on a plain HTTP server with real `ws` clients and a fake
 * `LogTap`: acks, exact filtering and batching, untail, several streams next to the event
 * subscription, bad frames, and slow clients — sampled with markers, never closed for tail frames,
 * while a fast client on the same hub gets every record in order and publishing stays fast.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parseLogFilter } from '../../actors/log/filter.ts';
import type { LogTap, LogTapListener, StoredLog } from '../../actors/log/types.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { hashToken } from '../auth.ts';
import { realClock } from '../clock.ts';
import { FEED_PATH, FeedHub, type FeedHubOptions } from './hub.ts';
import { FEED_PROTOCOL } from './protocol.ts';

const TOKEN = 'tail-test-token';
let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** The boundary the log extension provides, driven by the test. */
class FakeTap implements LogTap {
  readonly listeners = new Set<LogTapListener>();
  subscriptions = 0;
  subscribe(listener: LogTapListener): () => void {
    this.subscriptions++;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(stream: string, records: readonly StoredLog[]): void {
    for (const listener of this.listeners) listener(stream, records);
  }
}

const startHub = async (over: Partial<FeedHubOptions> = {}) => {
  const tap = new FakeTap();
  const hub = new FeedHub({
    node: 'n1',
    tokens: [{ name: 'viewer', sha256: hashToken(TOKEN), scopes: ['read'] }],
    replayMax: 5,
    bufferBytes: 1 << 20,
    heartbeatMs: 30_000,
    clock: realClock,
    warn: () => undefined,
    logTap: () => tap,
    tailFlushMs: 20,
    ...over,
  });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    if (!hub.upgrade(req, socket, head, new URL(req.url ?? '/', 'http://x'))) socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub.start();
  cleanups.push(
    () => new Promise<void>((r) => server.close(() => r())),
    () => hub.stop(),
  );
  const { port } = server.address() as AddressInfo;
  return { hub, tap, url: `ws://127.0.0.1:${port}${FEED_PATH}` };
};

interface Frame {
  readonly type: string;
  readonly [k: string]: unknown;
}

interface LogFrame extends Frame {
  readonly stream: string;
  readonly records: StoredLog[];
}

interface Marker extends Frame {
  readonly stream: string;
  readonly dropped: number;
  readonly kept: number;
  readonly since: number;
}

const connect = async (url: string) => {
  const ws = new WebSocket(url, [FEED_PROTOCOL, `bearer.${TOKEN}`]);
  const frames: Frame[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanups.push(() => ws.terminate());
  await waitFor('hello', () => frames.length > 0);
  const send = (v: unknown) => ws.send(JSON.stringify(v));
  /** Sends a frame and waits for the next frame of `type` after it. */
  const ask = async (v: unknown, type: string): Promise<Frame> => {
    const from = frames.length;
    send(v);
    return waitFor(type, () => frames.slice(from).find((f) => f.type === type));
  };
  return { ws, frames, closed, send, ask };
};

const rec = (time: number, fields: Record<string, unknown>): StoredLog => ({ time, fields });
const logFrames = (frames: Frame[]) => frames.filter((f): f is LogFrame => f.type === 'log');
const markersOf = (frames: Frame[]) => frames.filter((f): f is Marker => f.type === 'sampled');

describe('live tail', () => {
  it('acks a tail and sends exactly the records that pass its filter, one frame per batch', async () => {
    const { tap, url } = await startHub();
    const c = await connect(url);
    expect(
      await c.ask({ type: 'tail', stream: 'payments.nginx-access', filter: 'status >= 500' }, 'tailing'),
    ).toEqual({ type: 'tailing', stream: 'payments.nginx-access', filter: 'status >= 500' });
    tap.emit('payments.nginx-access', [
      rec(1, { status: 200, path: '/' }),
      rec(2, { status: 503, path: '/pay' }),
      rec(3, { status: 500, path: '/pay', a: { b: [1, 2] } }),
      rec(4, { path: '/no-status' }),
    ]);
    tap.emit('payments.other', [rec(5, { status: 599 })]);
    tap.emit('payments.nginx-access', [rec(6, { status: 404 })]);
    tap.emit('payments.nginx-access', [rec(7, { status: 502 })]);
    await waitFor('two log frames', () => logFrames(c.frames).length === 2);
    expect(c.frames.slice(1)).toEqual([
      { type: 'tailing', stream: 'payments.nginx-access', filter: 'status >= 500' },
      {
        type: 'log',
        stream: 'payments.nginx-access',
        records: [
          { time: 2, fields: { status: 503, path: '/pay' } },
          { time: 3, fields: { status: 500, path: '/pay', a: { b: [1, 2] } } },
        ],
      },
      { type: 'log', stream: 'payments.nginx-access', records: [{ time: 7, fields: { status: 502 } }] },
    ]);
  });

  it('replaces the filter on a second tail, untails, and holds the tap only while someone tails', async () => {
    const { hub, tap, url } = await startHub();
    const c = await connect(url);
    expect(tap.listeners.size).toBe(0);
    await c.ask({ type: 'tail', stream: 's' }, 'tailing');
    expect(tap.listeners.size).toBe(1);
    expect(await c.ask({ type: 'tail', stream: 's', filter: "level = 'error'" }, 'tailing')).toEqual({
      type: 'tailing',
      stream: 's',
      filter: "level = 'error'",
    });
    expect([tap.listeners.size, tap.subscriptions, hub.stats().tails]).toEqual([1, 1, 1]);
    tap.emit('s', [rec(1, { level: 'info' }), rec(2, { level: 'error' })]);
    await waitFor('the error record', () => logFrames(c.frames).length === 1);
    expect(logFrames(c.frames)[0]!.records).toEqual([{ time: 2, fields: { level: 'error' } }]);

    expect(await c.ask({ type: 'untail', stream: 's' }, 'untailed')).toEqual({
      type: 'untailed',
      stream: 's',
    });
    expect([tap.listeners.size, hub.stats().tails]).toEqual([0, 0]);
    expect(await c.ask({ type: 'untail', stream: 'never-tailed' }, 'untailed')).toEqual({
      type: 'untailed',
      stream: 'never-tailed',
    });
    // Tailing again subscribes again; a client that goes away lets go of the tap.
    await c.ask({ type: 'tail', stream: 's' }, 'tailing');
    expect([tap.listeners.size, tap.subscriptions]).toEqual([1, 2]);
    c.ws.close();
    await waitFor('the tap let go', () => tap.listeners.size === 0);
    expect(hub.stats()).toMatchObject({ clients: 0, tails: 0 });
  });

  it('tails two streams side by side with the event subscription, which works as before', async () => {
    const { hub, tap, url } = await startHub();
    const c = await connect(url);
    await c.ask({ type: 'subscribe', filter: { types: ['@argus.alert'] } }, 'subscribed');
    await c.ask({ type: 'tail', stream: 'a', filter: 'n > 1' }, 'tailing');
    await c.ask({ type: 'tail', stream: 'b' }, 'tailing');
    const other = await connect(url);
    await other.ask({ type: 'tail', stream: 'a' }, 'tailing');
    tap.emit('a', [rec(1, { n: 1 }), rec(2, { n: 2 })]);
    hub.publish([{ type: '@argus.alert', n: 9 }]);
    tap.emit('b', [rec(3, { n: 0 })]);
    await waitFor('three frames', () => c.frames.length === 7);
    await waitFor('the other client', () => logFrames(other.frames).length === 1);
    expect(c.frames.slice(4)).toEqual([
      { type: 'log', stream: 'a', records: [{ time: 2, fields: { n: 2 } }] },
      { type: 'event', event: { type: '@argus.alert', n: 9 } },
      { type: 'log', stream: 'b', records: [{ time: 3, fields: { n: 0 } }] },
    ]);
    expect(logFrames(other.frames)).toEqual([
      {
        type: 'log',
        stream: 'a',
        records: [
          { time: 1, fields: { n: 1 } },
          { time: 2, fields: { n: 2 } },
        ],
      },
    ]);
    expect(other.frames.some((f) => f.type === 'event')).toBe(false);
    expect(hub.stats().tails).toBe(3);
  });

  it('answers bad tail frames with an error and stays open', async () => {
    const { tap, url } = await startHub();
    const c = await connect(url);
    const badFilter = 'status >= AND';
    const expected = parseLogFilter(badFilter);
    expect(expected.ok).toBe(false);
    expect(await c.ask({ type: 'tail', stream: '-bad' }, 'error')).toEqual({
      type: 'error',
      error:
        "stream: must be a stream name (1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'), got \"-bad\"",
    });
    expect(await c.ask({ type: 'tail', stream: 's', filter: badFilter }, 'error')).toEqual({
      type: 'error',
      error: expected.ok ? '' : expected.error,
    });
    expect(tap.listeners.size).toBe(0);
    for (let i = 0; i < 16; i++) await c.ask({ type: 'tail', stream: `s${i}` }, 'tailing');
    expect(await c.ask({ type: 'tail', stream: 's16' }, 'error')).toEqual({
      type: 'error',
      error: 'stream: at most 16 streams can be tailed at once on one connection; untail one first',
    });
    // Replacing one of the 16 is fine; so is a 17th once one is untailed.
    await c.ask({ type: 'tail', stream: 's3', filter: 'x = 1' }, 'tailing');
    await c.ask({ type: 'untail', stream: 's0' }, 'untailed');
    await c.ask({ type: 'tail', stream: 's16' }, 'tailing');
    tap.emit('s16', [rec(1, {})]);
    await waitFor('the record', () => logFrames(c.frames).length === 1);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('refuses tails on a node without log streams', async () => {
    const { url } = await startHub({ logTap: () => undefined });
    const c = await connect(url);
    expect(await c.ask({ type: 'tail', stream: 's' }, 'error')).toEqual({
      type: 'error',
      error: 'stream: log streams are not enabled on this node (no log tap)',
    });
  });

  it('samples a client that does not read, with markers, while a fast one gets every record in order', async () => {
    const { hub, tap, url } = await startHub();
    const fast = await connect(url);
    const slow = await connect(url);
    await fast.ask({ type: 'tail', stream: 'flood' }, 'tailing');
    await slow.ask({ type: 'tail', stream: 'flood' }, 'tailing');
    await slow.ask({ type: 'subscribe' }, 'subscribed');
    slow.ws.pause();
    const BATCHES = 200;
    const PER_BATCH = 100;
    const pad = 'x'.repeat(1_000);
    const took: number[] = [];
    const received = () => logFrames(fast.frames).reduce((n, f) => n + f.records.length, 0);
    for (let b = 0; b < BATCHES; b++) {
      const batch = Array.from({ length: PER_BATCH }, (_, i) =>
        rec(1_700_000_000_000 + b * PER_BATCH + i, { seq: b * PER_BATCH + i, pad }),
      );
      const t0 = performance.now();
      tap.emit('flood', batch);
      took.push(performance.now() - t0);
      // The fast client reads: it keeps up, so it is never sampled.
      await waitFor('the fast client to read the batch', () => received() === (b + 1) * PER_BATCH, 10_000, 1);
    }
    const published = BATCHES * PER_BATCH;
    expect(hub.stats().sampledOut).toBeGreaterThan(0);
    // Publishing never waits on the slow client.
    // Typically ~1 ms for 100 records of 1 KB to two clients; the bounds leave room for a busy machine.
    const sorted = [...took].sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length * 0.95)]).toBeLessThan(10);
    expect(took.reduce((a, b) => a + b, 0) / took.length).toBeLessThan(5);
    // Its event subscription is untouched by the tail bytes it has waiting.
    hub.publish([{ type: '@argus.alert', n: 1 }]);

    slow.ws.resume();
    const seqs = (frames: Frame[]) =>
      logFrames(frames).flatMap((f) => f.records.map((r) => r.fields.seq as number));
    const accounted = () =>
      seqs(slow.frames).length + markersOf(slow.frames).reduce((n, m) => n + m.dropped, 0);
    await waitFor('every record sent or counted as dropped', () => accounted() === published, 30_000, 10);

    expect(seqs(fast.frames)).toEqual(Array.from({ length: published }, (_, i) => i));
    expect(markersOf(fast.frames)).toEqual([]);
    const kept = seqs(slow.frames);
    const markers = markersOf(slow.frames);
    expect(markers.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(published);
    expect(kept.every((s, i) => i === 0 || s > kept[i - 1]!)).toBe(true);
    expect(markers.reduce((n, m) => n + m.dropped, 0)).toBe(hub.stats().sampledOut);
    for (const m of markers) {
      expect(m.stream).toBe('flood');
      expect(m.dropped).toBeGreaterThan(0);
      expect(m.since).toBeGreaterThan(1_600_000_000_000);
    }
    expect(markers.reduce((n, m) => n + m.kept, 0)).toBeLessThanOrEqual(kept.length);
    // A marker comes before the log frame that continues after the gap: never two markers in a row
    // without records between, except the last, sent alone once the client caught up.
    const tailFrames = slow.frames.filter((f) => f.type === 'log' || f.type === 'sampled');
    for (let i = 0; i + 1 < tailFrames.length; i++)
      if (tailFrames[i]!.type === 'sampled') expect(tailFrames[i + 1]!.type).toBe('log');
    await waitFor('the event', () => slow.frames.some((f) => f.type === 'event'));
    expect(slow.ws.readyState).toBe(WebSocket.OPEN);
    expect(hub.stats()).toMatchObject({ clients: 2, dropped: 0 });
  }, 60_000);

  it('never closes a client for tail bytes waiting, but still for events it cannot take (4008)', async () => {
    const { hub, tap, url } = await startHub({ bufferBytes: 64 * 1024, tailBufferBytes: 256 * 1024 });
    const c = await connect(url);
    await c.ask({ type: 'subscribe' }, 'subscribed');
    await c.ask({ type: 'tail', stream: 's' }, 'tailing');
    c.ws.pause();
    const pad = 'y'.repeat(2_000);
    // Tail bytes pile up past the tail bound (so far past the 64 KiB events bound) until it samples.
    for (let i = 0; hub.stats().sampledOut === 0; i++) {
      tap.emit(
        's',
        Array.from({ length: 50 }, (_, j) => rec(i * 50 + j, { pad })),
      );
      if (i > 20_000) throw new Error('never sampled');
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    hub.publish([{ type: '@argus.alert', n: 1, pad }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(hub.stats().dropped).toBe(0);
    // Events alone past 64 KiB: the slow-consumer rule as before.
    for (let n = 2; n < 100; n++) hub.publish([{ type: '@argus.alert', n, pad }]);
    expect(hub.stats().dropped).toBe(1);
    c.ws.resume();
    const closed = await c.closed;
    expect(closed).toEqual({ code: 4008, reason: 'slow consumer: more than 65536 bytes buffered' });
    const events = c.frames.filter((f) => f.type === 'event').map((f) => (f.event as { n: number }).n);
    expect(events[0]).toBe(1);
    expect(events).toEqual(events.map((_, i) => i + 1));
    expect(hub.stats()).toMatchObject({ clients: 0, tails: 0 });
  }, 60_000);
});
