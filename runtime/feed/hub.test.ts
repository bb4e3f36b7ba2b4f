/**
 * The feed hub alone, on a plain HTTP server, with events published by the test (no runtime): auth at
 * the handshake, subscribe/replay/resubscribe, errors, the heartbeat (on a simulated clock) and stop.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { refusal } from '../../test/feed/support.ts';
import { SimulatedClock } from '../../test/helpers/clock.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import { hashToken } from '../auth.ts';
import { realClock } from '../clock.ts';
import type { FeedEvent } from './filter.ts';
import { FEED_PATH, FeedHub, type FeedHubOptions } from './hub.ts';
import { FEED_PROTOCOL } from './protocol.ts';

const TOKEN = 'hub-test-token';
let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const startHub = async (over: Partial<FeedHubOptions> = {}) => {
  const hub = new FeedHub({
    node: 'n1',
    tokens: [{ name: 'viewer', sha256: hashToken(TOKEN), scopes: ['read'] }],
    replayMax: 5,
    bufferBytes: 1 << 20,
    heartbeatMs: 30_000,
    clock: realClock,
    warn: () => undefined,
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
  return { hub, url: `ws://127.0.0.1:${port}${FEED_PATH}` };
};

interface Frame {
  readonly type: string;
  readonly [k: string]: unknown;
}

const connect = async (url: string, protocols: string[] = [FEED_PROTOCOL, `bearer.${TOKEN}`]) => {
  const ws = new WebSocket(url, protocols);
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
  return { ws, frames, closed, send: (v: unknown) => ws.send(JSON.stringify(v)) };
};

const alert = (n: number, severity = 3): FeedEvent => ({ type: '@argus.alert', n, severity });
const eventsOf = (frames: Frame[]) =>
  frames.filter((f) => f.type === 'event').map((f) => (f.event as { n: number }).n);

describe('FeedHub', () => {
  it('greets, replays the newest matching events, then streams live ones through the filter', async () => {
    const { hub, url } = await startHub();
    hub.publish([1, 2, 3, 4, 5, 6, 7].map((n) => alert(n, n % 2 === 0 ? 4 : 2)));
    const c = await connect(url);
    expect(c.frames[0]).toEqual({ type: 'hello', node: 'n1' });
    expect(c.ws.protocol).toBe(FEED_PROTOCOL);
    c.send({ type: 'subscribe', filter: { minSeverity: 4 }, replay: 10 });
    await waitFor('subscribed', () => c.frames.find((f) => f.type === 'subscribed'));
    // The ring holds 3..7 (replayMax 5); the even ones match.
    expect(c.frames.slice(1)).toEqual([
      { type: 'event', event: alert(4, 4) },
      { type: 'event', event: alert(6, 4) },
      { type: 'subscribed', filter: { minSeverity: 4 }, replayed: 2 },
    ]);
    hub.publish([alert(8, 4), alert(9, 2), { type: '@argus.lifecycle' }]);
    await waitFor('live event', () => eventsOf(c.frames).includes(8));
    expect(eventsOf(c.frames)).toEqual([4, 6, 8]);

    c.send({ type: 'subscribe', filter: { types: ['@argus.lifecycle'] } });
    await waitFor('resubscribed', () => c.frames.filter((f) => f.type === 'subscribed').length === 2);
    hub.publish([alert(10, 5), { type: '@argus.lifecycle', n: 11 }]);
    await waitFor('lifecycle', () => eventsOf(c.frames).includes(11));
    expect(eventsOf(c.frames)).toEqual([4, 6, 8, 11]);
    expect(hub.stats()).toMatchObject({ clients: 1, published: 12, replayable: 5 });
  });

  it('sends nothing before a subscribe', async () => {
    const { hub, url } = await startHub();
    const c = await connect(url);
    hub.publish([alert(1)]);
    c.send({ type: 'subscribe' });
    await waitFor('subscribed', () => c.frames.find((f) => f.type === 'subscribed'));
    expect(c.frames.map((f) => f.type)).toEqual(['hello', 'subscribed']);
  });

  it('answers a bad frame with an error and stays open', async () => {
    const { hub, url } = await startHub();
    const c = await connect(url);
    c.send({ type: 'subscribe', filter: { minSeverity: 7 } });
    c.ws.send('not json');
    await waitFor('two errors', () => c.frames.filter((f) => f.type === 'error').length === 2);
    expect(c.frames.filter((f) => f.type === 'error').map((f) => f.error)).toEqual([
      'filter.minSeverity: must be an integer from 1 to 5 (5 most severe), got number 7',
      expect.stringMatching(/^frame is not JSON/),
    ]);
    c.send({ type: 'subscribe' });
    await waitFor('subscribed', () => c.frames.find((f) => f.type === 'subscribed'));
    hub.publish([alert(1)]);
    await waitFor('the event', () => eventsOf(c.frames).includes(1));
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('closes with 1009 on a frame over 64 KiB', async () => {
    const { url } = await startHub();
    const c = await connect(url);
    c.ws.send(JSON.stringify({ type: 'subscribe', pad: 'x'.repeat(70_000) }));
    expect((await c.closed).code).toBe(1009);
  });

  it('refuses before the handshake: 401 without a valid token, 403 without read scope', async () => {
    const { url } = await startHub({
      tokens: [{ name: 'pusher', sha256: hashToken('push-only'), scopes: [] }],
    });
    const [status, body] = await refusal(url, {});
    expect(status).toBe(401);
    expect(body).toEqual({ error: expect.stringMatching(/^a bearer token is required/) });
    expect(await refusal(url, { authorization: 'Bearer push-only' })).toEqual([
      403,
      { error: "token 'pusher' does not have the 'read' scope" },
    ]);
    await expect(connect(url, [])).rejects.toThrow(/401/);
    await expect(connect(url, [`bearer.nope`])).rejects.toThrow(/401/);
    await expect(connect(`${url}?access_token=push-only`, [])).rejects.toThrow(/403/);
  });

  it('terminates a client that stops answering pings', async () => {
    const clock = new SimulatedClock();
    const { hub, url } = await startHub({ clock, heartbeatMs: 1_000 });
    const dead = await connect(url);
    const live = await connect(url);
    dead.ws.pause();
    clock.advance(1_000);
    // The live client's pong comes back over real sockets.
    await sleep(100);
    clock.advance(1_000);
    await waitFor('the dead client to go', () => hub.stats().clients === 1);
    dead.ws.resume();
    expect((await dead.closed).code).toBe(1006);
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('closes every client with 1001 on stop, and refuses new ones with 503', async () => {
    const { hub, url } = await startHub();
    const a = await connect(url);
    const b = await connect(url);
    await hub.stop();
    expect(await Promise.all([a.closed, b.closed])).toEqual([
      { code: 1001, reason: 'node stopping' },
      { code: 1001, reason: 'node stopping' },
    ]);
    await expect(connect(url)).rejects.toThrow(/503/);
  });
});
