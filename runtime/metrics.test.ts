/**
 * Self-metrics (metrics.ts): what the exposition text says after a known sequence of events, outputs
 * and poll latencies — exact counter values, bounded labels — and that stop lets go of everything.
 * The events go through the real EventBus; the runtime's other inputs (outputs, lag) are given here.
 */
import { describe, expect, it } from 'vitest';
import { isArgusError } from './errors.ts';
import { type ArgusEvent, EventBus } from './events.ts';
import { kindOfPath, type MetricsSource, NODE_KIND, NOTIFY_STREAM, selfMetrics } from './metrics.ts';
import type { Output, OutputObserver, ShardLag } from './runtime.ts';

/** The inputs of one runtime, driven by the test. */
const inputs = (lag: () => Promise<ShardLag[]> = async () => []) => {
  const bus = new EventBus();
  const outputs = new Map<string, OutputObserver[]>();
  const latency: ((ms: number) => void)[] = [];
  let lagCalls = 0;
  const source: MetricsSource = {
    nodeId: 'node-a',
    config: { mode: 'embedded' },
    subscribe: (o) => bus.subscribe(o),
    onOutput: (stream, o) => {
      outputs.set(stream, [...(outputs.get(stream) ?? []), o]);
      return () =>
        outputs.set(
          stream,
          (outputs.get(stream) ?? []).filter((x) => x !== o),
        );
    },
    lag: () => {
      lagCalls++;
      return lag();
    },
  };
  return {
    bus,
    source,
    emit: (stream: string, values: unknown[]) => {
      const list: Output[] = values.map((value) => ({ stream, partition: 0, offset: -1, key: 'k', value }));
      for (const o of outputs.get(stream) ?? []) o(list);
    },
    outputObservers: () => [...outputs.values()].flat().length,
    pollLatency: {
      onPollLatency: (o: (ms: number) => void) => {
        latency.push(o);
        return () => latency.splice(latency.indexOf(o), 1);
      },
    },
    poll: (ms: number) => {
      for (const o of latency) o(ms);
    },
    latencyObservers: () => latency.length,
    lagCalls: () => lagCalls,
  };
};

const batch = (kind: string, partition: number, records: number): ArgusEvent => ({
  type: '@argus.batch',
  node: 'node-a',
  kind,
  partition,
  epoch: 0,
  firstOffset: 0,
  lastOffset: records - 1,
  records,
  startedAt: 0,
  checkpointAt: 0,
  committedAt: 0,
});

const lifecycle = (phase: 'restarted' | 'crashed' | 'started', path: string): ArgusEvent => ({
  type: '@argus.lifecycle',
  phase,
  path,
  at: 0,
});

const deadLetter = (kind: string, reason: string): ArgusEvent => ({
  type: '@argus.deadletter',
  kind,
  key: 'k',
  partition: 0,
  offset: 0,
  reason,
  error: 'boom',
  attempts: 3,
  at: 0,
});

const notify = (receiver: string, status: string) => ({
  type: '@argus.notify',
  receiver,
  notification: 'n-1',
  status,
  attempt: 1,
  at: 0,
  groupKey: 'g',
});

/** The sample lines of one metric family (histograms: its _bucket/_sum/_count lines). */
const samples = (text: string, name: string): string[] =>
  text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('kindOfPath', () => {
  it.each([
    ['node/shards/counter-3/c-17', 'counter'],
    ['node/shards/counter-3', 'counter'],
    ['node/shards/my-kind-12/key/with/slashes', 'my-kind'],
    ['node/shards/rule.eval-0/r', 'rule.eval'],
    ['node/shards', NODE_KIND],
    ['node', NODE_KIND],
    ['node/feed/client-3', NODE_KIND],
    ['node/shards/no-partition', NODE_KIND],
  ])('%s → %s', (path, kind) => {
    expect(kindOfPath(path)).toBe(kind);
  });
});

describe('selfMetrics', () => {
  it('counts the records of every checkpoint per kind, and shows 0 for kinds with shards here', async () => {
    const t = inputs(async () => [
      { kind: 'counter', partition: 0, committed: 7, end: 7, lag: 0 },
      { kind: 'idle', partition: 0, committed: 0, end: 0, lag: 0 },
    ]);
    const m = selfMetrics();
    m.register(t.source);
    await m.start(t.source);
    t.bus.publish(batch('counter', 0, 3));
    t.bus.publish(batch('counter', 1, 4));
    t.bus.publish(batch('host', 0, 5));
    const text = await m.metrics();
    expect(samples(text, 'argus_messages_processed_total')).toEqual([
      'argus_messages_processed_total{kind="counter"} 7',
      'argus_messages_processed_total{kind="host"} 5',
      'argus_messages_processed_total{kind="idle"} 0',
    ]);
    t.bus.publish(batch('counter', 0, 1));
    expect(samples(await m.metrics(), 'argus_messages_processed_total')[0]).toBe(
      'argus_messages_processed_total{kind="counter"} 8',
    );
    await m.stop();
  });

  it('counts restarts by the kind of the restarted path, and nothing else of the lifecycle', async () => {
    const t = inputs();
    const m = selfMetrics();
    m.register(t.source);
    await m.start(t.source);
    t.bus.publish(lifecycle('crashed', 'node/shards/counter-3/c-17'));
    t.bus.publish(lifecycle('restarted', 'node/shards/counter-3/c-17'));
    t.bus.publish(lifecycle('restarted', 'node/shards/counter-1/c-2'));
    t.bus.publish(lifecycle('started', 'node/shards/counter-1/c-3'));
    t.bus.publish(lifecycle('restarted', 'node/shards'));
    expect(samples(await m.metrics(), 'argus_restarts_total')).toEqual([
      'argus_restarts_total{kind="counter"} 2',
      `argus_restarts_total{kind="${NODE_KIND}"} 1`,
    ]);
    await m.stop();
  });

  it('counts dead letters by kind and reason', async () => {
    const t = inputs();
    const m = selfMetrics();
    m.register(t.source);
    await m.start(t.source);
    t.bus.publish(deadLetter('counter', 'crashed'));
    t.bus.publish(deadLetter('counter', 'crashed'));
    t.bus.publish(deadLetter('counter', 'invalid-message'));
    t.bus.publish(deadLetter('host', 'undecodable'));
    expect(samples(await m.metrics(), 'argus_dead_letters_total')).toEqual([
      'argus_dead_letters_total{kind="counter",reason="crashed"} 2',
      'argus_dead_letters_total{kind="counter",reason="invalid-message"} 1',
      'argus_dead_letters_total{kind="host",reason="undecodable"} 1',
    ]);
    await m.stop();
  });

  it('counts webhook deliveries per receiver and status from the events stream, ignoring other records', async () => {
    const t = inputs();
    const m = selfMetrics();
    m.register(t.source);
    await m.start(t.source);
    t.emit(NOTIFY_STREAM, [
      notify('ops', 'delivered'),
      notify('ops', 'failed'),
      notify('ops', 'delivered'),
      { type: '@argus.alert', receiver: 'ops', status: 'firing' },
      notify('chat', 'dead-letter'),
      notify('chat', 'exploded'),
      'not an object',
    ]);
    t.emit('metrics', [notify('ops', 'delivered')]);
    expect(samples(await m.metrics(), 'argus_webhook_deliveries_total')).toEqual([
      'argus_webhook_deliveries_total{receiver="ops",status="delivered"} 2',
      'argus_webhook_deliveries_total{receiver="ops",status="failed"} 1',
      'argus_webhook_deliveries_total{receiver="chat",status="dead-letter"} 1',
    ]);
    await m.stop();
  });

  it('asks for the mailbox lag only at scrape, and answers without it when lag() fails or hangs', async () => {
    let lag: () => Promise<ShardLag[]> = async () => [
      { kind: 'counter', partition: 0, committed: 10, end: 13, lag: 3 },
      { kind: 'counter', partition: 1, committed: 4, end: 4, lag: 0 },
    ];
    const t = inputs(() => lag());
    const m = selfMetrics({ lagTimeoutMs: 50 });
    m.register(t.source);
    await m.start(t.source);
    for (let i = 0; i < 100; i++) t.bus.publish(batch('counter', 0, 1));
    expect(t.lagCalls()).toBe(0);
    expect(samples(await m.metrics(), 'argus_mailbox_lag')).toEqual([
      'argus_mailbox_lag{kind="counter",partition="0"} 3',
      'argus_mailbox_lag{kind="counter",partition="1"} 0',
    ]);
    expect(t.lagCalls()).toBe(1);

    lag = () => Promise.reject(new Error('transport down'));
    const failed = await m.metrics();
    expect(samples(failed, 'argus_mailbox_lag')).toEqual([]);
    expect(samples(failed, 'argus_messages_processed_total')).toEqual([
      'argus_messages_processed_total{kind="counter"} 100',
    ]);

    lag = () => new Promise(() => undefined);
    const started = performance.now();
    expect(samples(await m.metrics(), 'argus_mailbox_lag')).toEqual([]);
    expect(performance.now() - started).toBeLessThan(1_000);
    await m.stop();
  });

  it('observes every poll latency into argus_poll_latency_seconds, without labels', async () => {
    const t = inputs();
    const m = selfMetrics({ pollLatency: t.pollLatency });
    m.register(t.source);
    await m.start(t.source);
    for (const ms of [3, 40, 40, 1_500, Number.NaN]) t.poll(ms);
    const text = await m.metrics();
    expect(samples(text, 'argus_poll_latency_seconds_bucket')).toEqual([
      'argus_poll_latency_seconds_bucket{le="0.005"} 1',
      'argus_poll_latency_seconds_bucket{le="0.01"} 1',
      'argus_poll_latency_seconds_bucket{le="0.025"} 1',
      'argus_poll_latency_seconds_bucket{le="0.05"} 3',
      'argus_poll_latency_seconds_bucket{le="0.1"} 3',
      'argus_poll_latency_seconds_bucket{le="0.25"} 3',
      'argus_poll_latency_seconds_bucket{le="0.5"} 3',
      'argus_poll_latency_seconds_bucket{le="1"} 3',
      'argus_poll_latency_seconds_bucket{le="2.5"} 4',
      'argus_poll_latency_seconds_bucket{le="5"} 4',
      'argus_poll_latency_seconds_bucket{le="10"} 4',
      'argus_poll_latency_seconds_bucket{le="+Inf"} 4',
    ]);
    expect(samples(text, 'argus_poll_latency_seconds_sum')).toEqual(['argus_poll_latency_seconds_sum 1.583']);
    expect(samples(text, 'argus_poll_latency_seconds_count')).toEqual(['argus_poll_latency_seconds_count 4']);
    await m.stop();
  });

  it('leaves the poll latency histogram out without a host poller', async () => {
    const t = inputs();
    const m = selfMetrics();
    m.register(t.source);
    await m.start(t.source);
    expect(await m.metrics()).not.toContain('argus_poll_latency_seconds');
    await m.stop();
  });

  it("shows the node's identity, its event-loop delay and the process metrics, all prefixed argus_", async () => {
    const t = inputs();
    const m = selfMetrics();
    m.register(t.source);
    await m.start(t.source);
    expect(samples(await m.metrics(), 'argus_event_loop_lag_seconds')).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    const text = await m.metrics();
    expect(samples(text, 'argus_node_info')).toEqual([
      'argus_node_info{node="node-a",mode="embedded",version="0.1.0"} 1',
    ]);
    const loop = samples(text, 'argus_event_loop_lag_seconds');
    expect(loop.map((l) => l.split(' ')[0])).toEqual([
      'argus_event_loop_lag_seconds{quantile="0.5"}',
      'argus_event_loop_lag_seconds{quantile="0.99"}',
      'argus_event_loop_lag_seconds{quantile="1"}',
    ]);
    for (const l of loop) expect(Number(l.split(' ')[1])).toBeGreaterThanOrEqual(0);
    expect(samples(text, 'argus_nodejs_heap_size_used_bytes')).toHaveLength(1);
    expect(samples(text, 'argus_process_resident_memory_bytes')).toHaveLength(1);
    const names = text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0]);
    expect(names.filter((n) => !n?.startsWith('argus_'))).toEqual([]);
    await m.stop();
  });

  it('lets go of every observer at stop, and counts nothing after', async () => {
    const t = inputs();
    const m = selfMetrics({ pollLatency: t.pollLatency });
    m.register(t.source);
    await m.start(t.source);
    expect([t.bus.listening, t.outputObservers(), t.latencyObservers()]).toEqual([true, 1, 1]);
    t.bus.publish(batch('counter', 0, 2));
    await m.stop();
    expect([t.bus.listening, t.outputObservers(), t.latencyObservers()]).toEqual([false, 0, 0]);
    t.bus.publish(batch('counter', 0, 5));
    expect(samples(await m.metrics(), 'argus_messages_processed_total')).toEqual([
      'argus_messages_processed_total{kind="counter"} 2',
    ]);
    expect(t.lagCalls()).toBe(0);
  });

  it('serves one runtime', () => {
    const m = selfMetrics();
    m.register(inputs().source);
    let error: unknown;
    try {
      m.register(inputs().source);
    } catch (e) {
      error = e;
    }
    expect(isArgusError(error, 'ARGUS_ERR_ALREADY_STARTED')).toBe(true);
  });
});
