/**
 * The live event feed on a real embedded runtime and a real HTTP endpoint (startHttp), with the real
 * `ws` client: alert-shaped events emitted by an entity to the `events` stream reach exactly the
 * clients whose filter they match; replay; a client that stops reading is dropped with 4008 while
 * another receives every event; tokens are checked before the handshake; bad frames get an error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { hashToken } from '../../runtime/auth.ts';
import { defineEntity } from '../../runtime/entity.ts';
import { type EventFeed, type EventFeedOptions, eventFeed } from '../../runtime/feed/feed.ts';
import { FEED_PROTOCOL } from '../../runtime/feed/protocol.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { createRuntime, type EntityClient, type Runtime } from '../../runtime/runtime.ts';
import { waitFor } from '../helpers/wait.ts';
import { refusal } from './support.ts';

const READ_TOKEN = 'feed-read-token';
const ADMIN_TOKEN = 'feed-admin-token';
const NO_SCOPE_TOKEN = 'feed-suspended-token';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

interface TestEvent {
  readonly type: string;
  readonly n: number;
  readonly severity?: number;
  readonly host?: string;
  readonly service?: string;
  readonly rule?: string;
  readonly labels?: Record<string, string>;
  readonly pad?: string;
}

type EmitMessage =
  | { type: 'emit'; events: TestEvent[] }
  | { type: 'burst'; from: number; count: number; pad: number };

/** Emits the events it is told to (or a burst of padded alerts) to the `events` stream. */
const alerter = defineEntity<{ emitted: number }, EmitMessage>({
  kind: 'alerter',
  shards: 2,
  streams: ['events'],
  initialState: () => ({ emitted: 0 }),
  receive: (s, m, ctx) => {
    const events =
      m.type === 'emit'
        ? m.events
        : Array.from({ length: m.count }, (_, i) => ({
            type: '@argus.alert',
            n: m.from + i,
            severity: 3,
            pad: 'x'.repeat(m.pad),
          }));
    for (const e of events) ctx.emit('events', e);
    return { emitted: s.emitted + events.length };
  },
});

interface Node {
  readonly rt: Runtime;
  readonly feed: EventFeed;
  readonly alerts: EntityClient<{ emitted: number }, EmitMessage>;
  readonly url: string;
}

const startNode = async (
  options: EventFeedOptions = {},
  config: Record<string, unknown> = {},
): Promise<Node> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-feed-'));
  dirs.push(dir);
  const rt = createRuntime({
    nodeId: 'feed-1',
    dataDir: dir,
    http: false,
    auth: {
      tokens: [
        { name: 'viewer', sha256: hashToken(READ_TOKEN) },
        { name: 'ops', sha256: hashToken(ADMIN_TOKEN), scopes: ['admin'] },
        { name: 'suspended', sha256: hashToken(NO_SCOPE_TOKEN), scopes: [] },
      ],
    },
    feed: { replayMax: 100 },
    ...config,
  });
  const alerts = rt.register(alerter);
  const feed = eventFeed(options);
  rt.use(feed);
  await rt.start();
  cleanups.push(() => rt.stop());
  const http: HttpServer = await startHttp(rt, '127.0.0.1', 0);
  cleanups.push(() => http.close());
  return { rt, feed, alerts, url: `${http.url.replace(/^http:/, 'ws:')}/api/v1/events/stream` };
};

interface Frame {
  readonly type: string;
  readonly event?: TestEvent;
  readonly [k: string]: unknown;
}

interface Client {
  readonly ws: WebSocket;
  readonly frames: Frame[];
  readonly closed: Promise<{ code: number; reason: string }>;
  send(value: unknown): void;
  /** Subscribes and waits for the answer. */
  subscribe(filter?: unknown, replay?: number): Promise<Frame>;
  /** The `n` of every event received, in order. */
  numbers(type?: string): number[];
}

const connect = async (url: string, protocols: string[] = [FEED_PROTOCOL, `bearer.${READ_TOKEN}`]) => {
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
  const client: Client = {
    ws,
    frames,
    closed,
    send: (v) => ws.send(JSON.stringify(v)),
    subscribe: async (filter, replay) => {
      const before = frames.filter((f) => f.type === 'subscribed').length;
      client.send({ type: 'subscribe', ...(filter ? { filter } : {}), ...(replay ? { replay } : {}) });
      return waitFor('subscribed', () => frames.filter((f) => f.type === 'subscribed')[before]);
    },
    numbers: (type) =>
      frames
        .filter((f) => f.type === 'event' && (type === undefined || f.event?.type === type))
        .map((f) => f.event!.n),
  };
  return client;
};

const alert = (n: number, over: Partial<TestEvent> = {}): TestEvent => ({
  type: '@argus.alert',
  n,
  severity: 3,
  rule: 'cpu-high',
  host: 'web-1',
  labels: { alertname: 'cpu-high', host: 'web-1', service: 'pay' },
  ...over,
});

describe('live event feed (embedded)', () => {
  it('sends each client exactly the events its filter matches', async () => {
    const node = await startNode();
    const byTypeSeverityHost = await connect(node.url);
    const byService = await connect(node.url, [`bearer.${ADMIN_TOKEN}`]);
    const byRule = await connect(`${node.url}?access_token=${READ_TOKEN}`, []);
    const everything = await connect(node.url);
    const lifecycle = await connect(node.url);
    expect(byTypeSeverityHost.frames[0]).toEqual({ type: 'hello', node: 'feed-1' });
    expect(byTypeSeverityHost.ws.protocol).toBe(FEED_PROTOCOL);
    const filter = { types: ['@argus.alert'], minSeverity: 3, host: 'web-1' };
    expect(await byTypeSeverityHost.subscribe(filter)).toEqual({ type: 'subscribed', filter, replayed: 0 });
    await byService.subscribe({ service: 'pay' });
    await byRule.subscribe({ types: ['@argus.*'], rule: 'disk-full' });
    await everything.subscribe();
    await lifecycle.subscribe({ types: ['@argus.lifecycle'] });

    const events: TestEvent[] = [
      alert(1),
      alert(2, { severity: 2 }),
      alert(3, { host: 'web-2', labels: { host: 'web-2', service: 'pay' } }),
      alert(4, { host: undefined, labels: { host: 'web-1', service: 'shop' } }),
      alert(5, { rule: 'disk-full', severity: 5, labels: { service: 'shop' } }),
      { type: '@argus.notify', n: 6, service: 'pay', rule: 'disk-full' },
      alert(7, { severity: undefined }),
      { type: 'other.thing', n: 8, rule: 'disk-full' },
    ];
    await node.alerts.send('a-1', { type: 'emit', events });
    // A last event every filter but the lifecycle one takes: once it is in, nothing earlier is missing.
    const last = alert(99, { rule: 'disk-full', labels: { host: 'web-1', service: 'pay' } });
    await node.alerts.send('a-1', { type: 'emit', events: [last] });
    for (const c of [byTypeSeverityHost, byService, byRule, everything])
      await waitFor('the last event', () => c.numbers().includes(99));

    expect(byTypeSeverityHost.numbers()).toEqual([1, 4, 5, 99]);
    expect(byService.numbers()).toEqual([1, 2, 3, 6, 7, 99]);
    expect(byRule.numbers()).toEqual([5, 6, 99]);
    expect(everything.numbers('@argus.alert')).toEqual([1, 2, 3, 4, 5, 7, 99]);
    expect(everything.frames.find((f) => f.event?.type === 'other.thing')?.event).toEqual(events[7]);
    // Bus events come too (the entity's start), but never the per-checkpoint batch events.
    await waitFor('a lifecycle event', () =>
      lifecycle.frames.find(
        (f) => f.type === 'event' && (f.event as { path?: string }).path?.includes('a-1'),
      ),
    );
    expect(lifecycle.frames.every((f) => f.type !== 'event' || f.event?.type === '@argus.lifecycle')).toBe(
      true,
    );
    expect(everything.frames.some((f) => f.event?.type === '@argus.batch')).toBe(false);
  });

  it('replays the last N matching events, oldest first, then streams live ones', async () => {
    const node = await startNode();
    await node.alerts.send('a-2', {
      type: 'emit',
      events: Array.from({ length: 10 }, (_, i) => alert(i + 1, { severity: i % 2 === 0 ? 4 : 1 })),
    });
    await waitFor('the events in the ring', () => node.feed.stats().published >= 10);
    const c = await connect(node.url);
    const subscribed = await c.subscribe({ types: ['@argus.alert'], minSeverity: 4 }, 3);
    expect(subscribed).toMatchObject({ type: 'subscribed', replayed: 3 });
    expect(c.numbers()).toEqual([5, 7, 9]);
    const index = c.frames.indexOf(subscribed);
    expect(c.frames.slice(1, index).map((f) => f.type)).toEqual(['event', 'event', 'event']);
    await node.alerts.send('a-2', { type: 'emit', events: [alert(11, { severity: 5 })] });
    await waitFor('the live event', () => c.numbers().includes(11));
    expect(c.numbers()).toEqual([5, 7, 9, 11]);

    // Resubscribing changes the filter; a replay larger than what matches gives what there is.
    const again = await c.subscribe({ types: ['@argus.alert'], minSeverity: 1 }, 500);
    expect(again).toMatchObject({ replayed: 11 });
    expect(c.numbers()).toEqual([5, 7, 9, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('drops a client that stops reading with 4008, while another client gets every event', async () => {
    const node = await startNode();
    const slow = await connect(node.url);
    const fast = await connect(node.url);
    await slow.subscribe({ types: ['@argus.alert'] });
    await fast.subscribe({ types: ['@argus.alert'] });
    slow.ws.pause();
    // 16 KiB events in bursts of 20: past the kernel's socket buffers and then 1 MiB of the feed's.
    const BURST = 20;
    let sent = 0;
    for (let round = 0; round < 200 && node.feed.stats().dropped === 0; round++) {
      await node.alerts.send('a-3', { type: 'burst', from: sent + 1, count: BURST, pad: 16 * 1024 });
      sent += BURST;
      await waitFor('the fast client', () => fast.numbers().length === sent, 15_000);
    }
    expect(node.feed.stats().dropped).toBe(1);
    await node.alerts.send('a-3', { type: 'burst', from: sent + 1, count: BURST, pad: 10 });
    sent += BURST;
    await waitFor('the fast client', () => fast.numbers().length === sent, 15_000);
    expect(fast.numbers()).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);

    slow.ws.resume();
    expect(await slow.closed).toEqual({
      code: 4008,
      reason: 'slow consumer: more than 1048576 bytes buffered',
    });
    // What the slow client did get before it was dropped is a prefix, in order.
    const got = slow.numbers();
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1));
    expect(got.length).toBeLessThan(sent);
    expect(node.feed.stats().clients).toBe(1);
  }, 120_000);

  it('refuses a client without a token (401) and a token without read scope (403) before upgrading', async () => {
    const node = await startNode();
    expect(await refusal(node.url, {})).toEqual([
      401,
      {
        error:
          'a bearer token is required: Authorization: Bearer <token>, a Sec-WebSocket-Protocol entry bearer.<token>, or ?access_token=<token>',
      },
    ]);
    expect(await refusal(node.url, { authorization: 'Bearer not-a-token' })).toEqual([
      401,
      { error: 'the bearer token is not valid' },
    ]);
    expect(await refusal(node.url, { authorization: `Bearer ${NO_SCOPE_TOKEN}` })).toEqual([
      403,
      { error: "token 'suspended' does not have the 'read' scope" },
    ]);
    await expect(connect(node.url, [])).rejects.toThrow(/Unexpected server response: 401/);
    await expect(connect(node.url, [`bearer.${NO_SCOPE_TOKEN}`])).rejects.toThrow(
      /Unexpected server response: 403/,
    );
    expect(node.feed.stats().clients).toBe(0);
  });

  it('refuses everyone when no tokens are configured, unless the feed is given its own', async () => {
    const none = await startNode({}, { auth: { tokens: [] } });
    expect(await refusal(none.url, { authorization: `Bearer ${READ_TOKEN}` })).toEqual([
      401,
      { error: 'no tokens are configured (auth.tokens): every client is refused until one is' },
    ]);
    await none.rt.stop();
    const own = await startNode(
      { tokens: [{ name: 'embedded', sha256: hashToken('generated'), scopes: ['read'] }] },
      { auth: { tokens: [] } },
    );
    const c = await connect(own.url, [FEED_PROTOCOL, 'bearer.generated']);
    expect(c.frames[0]).toEqual({ type: 'hello', node: 'feed-1' });
  });

  it('answers bad frames with an error naming what is wrong and keeps the connection', async () => {
    const node = await startNode();
    const c = await connect(node.url);
    c.ws.send('{"type":"subscribe",');
    c.send({ type: 'subscribe', filter: { minSeverity: 9 } });
    c.send({ type: 'subscribe', filter: { types: '@argus.alert' } });
    c.send({ type: 'unsubscribe' });
    c.ws.send(Buffer.from('{"type":"subscribe"}'), { binary: true });
    await waitFor('five errors', () => c.frames.filter((f) => f.type === 'error').length === 5);
    expect(c.frames.filter((f) => f.type === 'error').map((f) => f.error)).toEqual([
      expect.stringMatching(/^frame is not JSON: /),
      'filter.minSeverity: must be an integer from 1 to 5 (5 most severe), got number 9',
      'filter.types: must be an array of event types, got "@argus.alert"',
      "type: must be 'subscribe', 'tail' or 'untail', got 'unsubscribe'",
      'frames must be JSON text, got a binary frame',
    ]);
    await c.subscribe({ types: ['@argus.alert'] });
    await node.alerts.send('a-4', { type: 'emit', events: [alert(1)] });
    await waitFor('the event', () => c.numbers().includes(1));
    c.ws.send(JSON.stringify({ type: 'subscribe', pad: 'x'.repeat(65 * 1024) }));
    expect((await c.closed).code).toBe(1009);
  });

  it('closes its clients with 1001 when the runtime stops', async () => {
    const node = await startNode();
    const c = await connect(node.url);
    await node.rt.stop();
    expect(await c.closed).toEqual({ code: 1001, reason: 'node stopping' });
    expect(await refusal(node.url, { authorization: `Bearer ${READ_TOKEN}` })).toEqual([
      503,
      { error: 'the live event feed is not running' },
    ]);
  });
});
