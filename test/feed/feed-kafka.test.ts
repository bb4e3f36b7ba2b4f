/**
 * The live feed in cluster mode, against the real Kafka and etcd: entities on every node write the
 * `events` stream's topic inside their shard's transaction, and each node's feed tails the topic, so a
 * client on node A sees, exactly once, an event emitted by an entity that node B owns (and the other way
 * round). The tail waits for a topic that does not exist yet, reads back its end for the replay buffer,
 * then follows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { hashToken } from '../../runtime/auth.ts';
import { realClock } from '../../runtime/clock.ts';
import { defineEntity } from '../../runtime/entity.ts';
import { type EventFeed, eventFeed } from '../../runtime/feed/feed.ts';
import type { FeedEvent } from '../../runtime/feed/filter.ts';
import { FEED_PROTOCOL } from '../../runtime/feed/protocol.ts';
import { kafkaTail } from '../../runtime/feed/tail.ts';
import { startHttp } from '../../runtime/http.ts';
import { streamTopic } from '../../runtime/kafka/topics.ts';
import { createRuntime, type EntityClient, type Runtime } from '../../runtime/runtime.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'cluster-feed-token';
const SHARDS = 4;

let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

interface Alert extends FeedEvent {
  readonly n: number;
  readonly by: string;
}

/** Emits an `@argus.alert` carrying `n` and the node that applied the message. */
const alerter = defineEntity<{ emitted: number }, { type: 'fire'; n: number }>({
  kind: 'alerter',
  shards: SHARDS,
  streams: ['events'],
  initialState: () => ({ emitted: 0 }),
  receive: (s, m, ctx) => {
    ctx.emit('events', {
      type: '@argus.alert',
      n: m.n,
      severity: 4,
      rule: 'r',
      key: ctx.key,
      by: ownerOf(ctx.key),
    });
    return { emitted: s.emitted + 1 };
  },
});
/** Which node runs the key now (the test's own nodes, in this process). */
let ownerOf: (key: string) => string = () => '?';

interface Node {
  readonly rt: Runtime;
  readonly feed: EventFeed;
  readonly alerts: EntityClient<{ emitted: number }, { type: 'fire'; n: number }>;
  readonly url: string;
}

const startNode = async (nodeId: string, prefix: string): Promise<Node> => {
  const rt = createRuntime({
    nodeId,
    mode: 'kafka',
    shards: SHARDS,
    passivation: { idleMs: 0 },
    kafka: { brokers: kafkaBrokers(), topicPrefix: prefix },
    cluster: { etcd: { endpoints: etcdEndpoints() }, settleMs: 100 },
    http: false,
    auth: { tokens: [{ name: 'viewer', sha256: hashToken(TOKEN) }] },
  });
  const alerts = rt.register(alerter);
  const feed = eventFeed();
  rt.use(feed);
  await rt.start();
  cleanups.push(() => rt.stop());
  const http = await startHttp(rt, '127.0.0.1', 0);
  cleanups.push(() => http.close());
  return { rt, feed, alerts, url: `${http.url.replace(/^http:/, 'ws:')}/api/v1/events/stream` };
};

const subscribe = async (url: string) => {
  const ws = new WebSocket(url, [FEED_PROTOCOL, `bearer.${TOKEN}`]);
  const alerts: Alert[] = [];
  let subscribed = false;
  ws.on('message', (d) => {
    const frame = JSON.parse(d.toString());
    if (frame.type === 'subscribed') subscribed = true;
    if (frame.type === 'event') alerts.push(frame.event);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanups.push(() => ws.terminate());
  ws.send(JSON.stringify({ type: 'subscribe', filter: { types: ['@argus.alert'] } }));
  await waitFor('subscribed', () => subscribed);
  return alerts;
};

describe('live event feed (cluster)', () => {
  it('shows a client on one node the events of entities another node owns, once each', async () => {
    const prefix = uniquePrefix('feed-cluster');
    const a = await startNode('feed-a', prefix);
    const b = await startNode('feed-b', prefix);
    const nodes = [a, b];
    await waitFor(
      'both nodes to run shards of every partition between them',
      () =>
        nodes.every((n) => n.rt.runningShards('alerter').length > 0) &&
        nodes.reduce((k, n) => k + n.rt.runningShards('alerter').length, 0) === SHARDS,
      60_000,
      50,
    );
    ownerOf = (key) =>
      nodes.find((n) => n.rt.runningShards('alerter').includes(n.rt.shardOf('alerter', key)))?.rt.nodeId ??
      '?';
    const keyOn = (node: Node) => {
      for (let i = 0; ; i++) if (ownerOf(`k-${i}`) === node.rt.nodeId) return `k-${i}`;
    };
    const onA = await subscribe(a.url);
    const onB = await subscribe(b.url);

    await a.alerts.send(keyOn(b), { type: 'fire', n: 1 });
    await b.alerts.send(keyOn(a), { type: 'fire', n: 2 });
    await a.alerts.send(keyOn(b), { type: 'fire', n: 3 });
    for (const seen of [onA, onB]) await waitFor('the three alerts', () => seen.length >= 3, 30_000, 20);
    // A little longer, so that a duplicate (the tail and onOutput both) would show.
    await new Promise((r) => setTimeout(r, 500));
    const summary = (seen: Alert[]) =>
      seen.map((e) => [e.n, e.by]).sort((x, y) => Number(x[0]) - Number(y[0]));
    const expected = [
      [1, 'feed-b'],
      [2, 'feed-a'],
      [3, 'feed-b'],
    ];
    expect(summary(onA)).toEqual(expected);
    expect(summary(onB)).toEqual(expected);
  }, 120_000);

  it('waits for a missing topic, then reads back its end and follows it', async () => {
    const prefix = uniquePrefix('feed-tail');
    const warnings: string[] = [];
    const seen: FeedEvent[] = [];
    const tail = kafkaTail({
      brokers: kafkaBrokers(),
      clientId: 'feed-tail-test',
      topic: streamTopic(prefix, 'events'),
      groupPrefix: `${prefix}.feed.test`,
      prefill: 2,
      retryMs: 200,
      clock: realClock,
      warn: (m) => warnings.push(m),
    });
    cleanups.push(() => tail.stop());
    await tail.start((events) => seen.push(...events));
    await waitFor('the missing-topic warning', () => warnings.length > 0, 20_000, 20);
    expect(warnings[0]).toMatch(/topic '.*\.stream\.events' does not exist yet/);

    // A node (one alone in Kafka mode) creates the topic at start; its first events land before the
    // tail looks again, so they come from the read-back (the last 2 of each partition), the rest live.
    const rt = createRuntime({
      nodeId: 'feed-tail-node',
      mode: 'kafka',
      shards: SHARDS,
      kafka: { brokers: kafkaBrokers(), topicPrefix: prefix },
      http: false,
    });
    const alerts = rt.register({ ...alerter, shards: 1 });
    ownerOf = () => 'feed-tail-node';
    await rt.start();
    cleanups.push(() => rt.stop());
    await Promise.all([1, 2, 3].map((n) => alerts.send('k', { type: 'fire', n })));
    await waitFor('the tail to catch up', () => seen.length >= 2, 30_000, 20);
    await alerts.send('k', { type: 'fire', n: 4 });
    await waitFor('the live event', () => seen.some((e) => e.n === 4), 30_000, 20);
    const numbers = seen.map((e) => e.n as number);
    // Every event once, in order; the read-back held at most the last 2 that had landed by then.
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers.at(-1)).toBe(4);
    expect(numbers.filter((n) => n < 4).length).toBeGreaterThanOrEqual(2);
    expect(warnings.some((w) => /exists now/.test(w))).toBe(true);
  }, 120_000);
});
