/**
 * The receiver entity driven through its `receive`, with a test double of the Notifier boundary and
 * the mailbox played by the test (results come back as `receiver.result` messages): delivery in order
 * one at a time, retry with backoff then success, max attempts → dead letter with the last error,
 * replay and discard, a hanging receiver holding up only itself, stale results ignored, a missing
 * configuration keeping notifications queued, and the parse errors.
 */
import { describe, expect, it } from 'vitest';
import type { EntityContext } from '../../runtime/entity.ts';
import { SimulatedClock } from '../../test/helpers/clock.ts';
import type { AlertEvent } from '../rule/types.ts';
import { retryDelay } from './backoff.ts';
import { parseReceiverMessage } from './messages.ts';
import { type NotifyEvent, type ReceiverState, receiverEntity } from './receiver.ts';
import { parseReceiver } from './receivers.ts';
import type { DeliveryOutcome, DeliveryRequest, ReceiverConfig, ReceiverMessage } from './types.ts';

const T = 1_777_629_600_000;
const OK: DeliveryOutcome = { ok: true, status: 200 };
const E500: DeliveryOutcome = { ok: false, status: 500, error: 'HTTP 500 Internal Server Error: boom' };
const E503: DeliveryOutcome = { ok: false, status: 503, error: 'HTTP 503 Service Unavailable: down' };

type Outcome = DeliveryOutcome | 'hang';

const receiverDoc = {
  kind: 'webhook',
  url: 'https://x.example/hook',
  timeout: '1s',
  max_attempts: 3,
  backoff: { initial: '1s', max: '10s' },
};

/** Receivers, a scripted notifier (outcomes per receiver, in order) and the mailbox, played by hand. */
const world = (outcomes: Record<string, Outcome[]> = {}) => {
  const configs = new Map<string, ReceiverConfig>();
  for (const id of ['infra', 'slow', 'fast']) configs.set(id, parseReceiver(id, receiverDoc));
  const clock = new SimulatedClock(T);
  const calls: DeliveryRequest[] = [];
  const mailbox: { id: string; message: ReceiverMessage }[] = [];
  const events: NotifyEvent[] = [];
  const def = receiverEntity({
    config: (id) => configs.get(id),
    silences: () => [],
    notifier: () => ({
      deliver: (req) => {
        calls.push(req);
        const o = outcomes[req.receiver.id]?.shift() ?? OK;
        return o === 'hang' ? new Promise<DeliveryOutcome>(() => undefined) : Promise.resolve(o);
      },
    }),
    send: async (id, message) => {
      mailbox.push({ id, message });
    },
  });
  const states = new Map<string, ReceiverState>();
  const ctxFor = (key: string): EntityContext => ({
    kind: 'receiver',
    key,
    offset: 0,
    messageId: 'm',
    clock,
    emit: (stream, value) => {
      expect(stream).toBe('events');
      events.push(value as NotifyEvent);
    },
    send: () => {
      throw new Error('the receiver sends through its mailbox only');
    },
  });
  const deliver = (key: string, payload: unknown) => {
    const state = states.get(key) ?? def.initialState(key);
    const next = def.receive(state, def.parse!(payload), ctxFor(key)) as ReceiverState;
    states.set(key, next);
    return next;
  };
  /** Lets started deliveries settle and applies the results they sent, until the mailbox is empty. */
  const pump = async () => {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const next = mailbox.shift();
      if (!next) return;
      deliver(next.id, next.message);
    }
  };
  return {
    configs,
    clock,
    calls,
    mailbox,
    events,
    def,
    deliver,
    pump,
    state: (key: string) => states.get(key) ?? def.initialState(key),
    ask: (key: string, q: string) => def.query!(states.get(key) ?? def.initialState(key), q, key),
    at: (t: number) => clock.advance(t - clock.now()),
  };
};

const alert = (
  fp: string,
  service: string,
  status: 'firing' | 'resolved' = 'firing',
  seq = 1,
): AlertEvent => ({
  type: '@argus.alert',
  fingerprint: fp,
  seq,
  rule: 'cpu',
  status,
  severity: 4,
  labels: { alertname: 'cpu', service, host: fp },
  annotations: {},
  value: 1,
  startsAt: T,
  at: T,
});

const routed = (a: AlertEvent, at = T, groupWaitMs = 0): ReceiverMessage => ({
  type: 'receiver.alert',
  alert: a,
  routeId: 'root',
  groupKey: `root{service="${a.labels.service}"}`,
  groupLabels: { service: a.labels.service! },
  timing: { groupBy: ['service'], groupWaitMs, groupIntervalMs: 300_000, repeatIntervalMs: 14_400_000 },
  at,
});

const statuses = (events: readonly NotifyEvent[]) => events.map((e) => `${e.status}#${e.attempt}`);

describe('receiver entity', () => {
  it('delivers in order, one at a time, without waiting in receive', async () => {
    const w = world();
    w.deliver('infra', routed(alert('a', 'pay')));
    w.deliver('infra', routed(alert('b', 'web')));
    expect(w.state('infra').queue).toHaveLength(2);
    expect(w.calls.map((c) => c.attempt)).toEqual([1]);
    expect(w.state('infra').inFlight).toMatchObject({ attempt: 1, startedAt: T });
    await w.pump();
    const [first, second] = w.calls;
    expect(JSON.parse(first!.body).groupKey).toBe('root{service="pay"}');
    expect(JSON.parse(second!.body).groupKey).toBe('root{service="web"}');
    expect(statuses(w.events)).toEqual(['delivered#1', 'delivered#1']);
    expect(w.events[0]).toEqual({
      type: '@argus.notify',
      receiver: 'infra',
      notification: first!.notificationId,
      status: 'delivered',
      attempt: 1,
      at: T,
      groupKey: 'root{service="pay"}',
    });
    expect(w.ask('infra', 'summary')).toMatchObject({
      configured: true,
      queue: 0,
      inFlight: null,
      deadLetters: 0,
      counters: { delivered: 2, failed: 0, dead: 0 },
      groups: 2,
      nextDueAt: T + 14_400_000,
    });
  });

  it('retries a failed delivery after its backoff, then delivers', async () => {
    const w = world({ infra: [E500, E500, OK] });
    w.deliver('infra', routed(alert('a', 'pay')));
    await w.pump();
    const id = w.calls[0]!.notificationId;
    const head = w.state('infra').queue[0]!;
    const firstRetry = T + retryDelay({ initialMs: 1000, maxMs: 10_000 }, id, 1);
    expect(head).toMatchObject({
      attempts: 1,
      lastError: 'HTTP 500 Internal Server Error: boom',
      nextAttemptAt: firstRetry,
    });
    expect(w.ask('infra', 'due')).toBe(firstRetry);
    // A tick before the retry is due starts nothing.
    w.deliver('infra', { type: 'receiver.tick', at: firstRetry - 1 });
    expect(w.calls).toHaveLength(1);
    w.at(firstRetry);
    w.deliver('infra', { type: 'receiver.tick', at: firstRetry });
    await w.pump();
    const secondRetry = firstRetry + retryDelay({ initialMs: 1000, maxMs: 10_000 }, id, 2);
    expect(w.state('infra').queue[0]).toMatchObject({ attempts: 2, nextAttemptAt: secondRetry });
    w.at(secondRetry);
    w.deliver('infra', { type: 'receiver.tick', at: secondRetry });
    await w.pump();
    expect(w.calls.map((c) => [c.notificationId, c.attempt])).toEqual([
      [id, 1],
      [id, 2],
      [id, 3],
    ]);
    expect(statuses(w.events)).toEqual(['failed#1', 'failed#2', 'delivered#3']);
    expect(w.state('infra').counters).toEqual({ delivered: 1, failed: 2, dead: 0 });
  });

  it('dead-letters after max attempts with the last error, and goes on with the next', async () => {
    const w = world({ infra: [E500, E500, E503] });
    w.deliver('infra', routed(alert('a', 'pay')));
    w.deliver('infra', routed(alert('b', 'web')));
    await w.pump();
    while (w.state('infra').deadLetters.length === 0) {
      const due = w.state('infra').queue[0]!.nextAttemptAt;
      w.at(Math.max(due, w.clock.now()));
      w.deliver('infra', { type: 'receiver.tick', at: w.clock.now() });
      await w.pump();
    }
    const dead = w.ask('infra', 'deadletters') as {
      id: string;
      attempts: number;
      lastError: string;
      groupKey: string;
    }[];
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      attempts: 3,
      lastError: 'HTTP 503 Service Unavailable: down',
      groupKey: 'root{service="pay"}',
    });
    expect(statuses(w.events)).toEqual(['failed#1', 'failed#2', 'dead-letter#3', 'delivered#1']);
    expect(w.events[2]).toMatchObject({ error: 'HTTP 503 Service Unavailable: down' });
    expect(w.state('infra').queue).toHaveLength(0);
    expect(w.state('infra').counters).toEqual({ delivered: 1, failed: 3, dead: 1 });
  });

  it('dead-letters at once what would fail the same way again (4xx)', async () => {
    const w = world({ infra: [{ ok: false, status: 400, error: 'HTTP 400 Bad Request: no' }] });
    w.deliver('infra', routed(alert('a', 'pay')));
    await w.pump();
    expect(w.state('infra').deadLetters[0]).toMatchObject({
      attempts: 1,
      lastError: 'HTTP 400 Bad Request: no (not retryable)',
    });
    expect(statuses(w.events)).toEqual(['dead-letter#1']);
  });

  it('replays a dead letter (same id, attempts reset) and discards', async () => {
    const w = world({ infra: [E500, E500] });
    w.configs.set('infra', parseReceiver('infra', { ...receiverDoc, max_attempts: 1 }));
    w.deliver('infra', routed(alert('a', 'pay')));
    w.deliver('infra', routed(alert('b', 'web')));
    await w.pump();
    await w.pump();
    const dead = w.state('infra').deadLetters.map((d) => d.id);
    expect(dead).toHaveLength(2);
    w.deliver('infra', { type: 'receiver.discard', id: dead[1], at: T + 1 });
    w.deliver('infra', { type: 'receiver.replay', id: dead[0], at: T + 2 });
    expect(w.state('infra').deadLetters).toHaveLength(0);
    await w.pump();
    expect(w.calls.at(-1)).toMatchObject({ notificationId: dead[0], attempt: 1 });
    expect(statuses(w.events)).toEqual(['dead-letter#1', 'dead-letter#1', 'delivered#1']);
    // Replaying everything, and discarding everything.
    w.deliver('infra', { type: 'receiver.replay', at: T + 3 });
    w.deliver('infra', { type: 'receiver.discard', at: T + 4 });
    expect(w.state('infra').queue).toHaveLength(0);
  });

  it('a hanging receiver holds up only itself; its attempt restarts after 2 × timeout', async () => {
    const w = world({ slow: ['hang'], fast: [OK] });
    w.deliver('slow', routed(alert('a', 'pay')));
    w.deliver('fast', routed(alert('a', 'pay')));
    await w.pump();
    expect(w.state('fast').counters.delivered).toBe(1);
    expect(w.state('slow').inFlight).toMatchObject({ attempt: 1, startedAt: T });
    expect(w.ask('slow', 'due')).toBe(T + 2001);
    w.deliver('slow', { type: 'receiver.tick', at: T + 2000 });
    expect(w.calls.filter((c) => c.receiver.id === 'slow')).toHaveLength(1);
    w.at(T + 2001);
    w.deliver('slow', { type: 'receiver.tick', at: T + 2001 });
    await w.pump();
    expect(w.calls.filter((c) => c.receiver.id === 'slow').map((c) => c.attempt)).toEqual([1, 2]);
    expect(w.events.filter((e) => e.receiver === 'slow').map((e) => [e.status, e.attempt, e.error])).toEqual([
      [
        'failed',
        1,
        'no outcome within 2000 ms of starting attempt 1 (the node that started it may have stopped)',
      ],
      ['delivered', 2, undefined],
    ]);
  });

  it('ignores stale results (another id or attempt)', async () => {
    const w = world({ infra: ['hang'] });
    w.deliver('infra', routed(alert('a', 'pay')));
    const before = w.state('infra');
    const id = before.inFlight!.id;
    expect(w.deliver('infra', { type: 'receiver.result', id, attempt: 2, ok: true, at: T })).toBe(before);
    expect(w.deliver('infra', { type: 'receiver.result', id: 'other', attempt: 1, ok: true, at: T })).toBe(
      before,
    );
  });

  it('keeps notifications queued while its configuration is missing, and says so', async () => {
    const w = world({ infra: ['hang'] });
    w.deliver('infra', routed(alert('a', 'pay')));
    w.configs.delete('infra');
    w.deliver('infra', routed(alert('b', 'web')));
    expect(w.ask('infra', 'summary')).toMatchObject({
      configured: false,
      problem: "receiver 'infra' is not configured: 1 notification(s) wait in its queue",
      queue: 1,
      groups: 2,
      nextDueAt: null,
    });
    w.configs.set('infra', parseReceiver('infra', receiverDoc));
    w.deliver('infra', { type: 'receiver.tick', at: T + 10 });
    expect(w.state('infra').queue).toHaveLength(2);
  });
});

describe('parseReceiverMessage', () => {
  it.each([
    [null, "receiver message must be an object with a 'type', got null"],
    [
      { type: 'receiver.page' },
      "unknown receiver message type 'receiver.page' (expected receiver.alert, receiver.tick, receiver.result, receiver.replay, receiver.discard)",
    ],
    [{ type: 'receiver.tick' }, 'receiver.tick: at: is required'],
    [
      { type: 'receiver.result', id: 'x', attempt: 0, ok: 'yes', at: 1 },
      "receiver.result: attempt: must be a whole number ≥ 1, got 0; ok: must be boolean, got 'yes'",
    ],
    [
      { ...routed(alert('a', 'pay')), alert: { ...alert('a', 'pay'), seq: -1, severity: 9 } },
      'receiver.alert: alert.seq: must be a whole number ≥ 0, got -1; alert.severity: must be 1 to 5, got 9',
    ],
  ])('%j', (payload, error) => {
    expect(() => parseReceiverMessage(payload)).toThrow(error);
  });

  it('returns a valid message as it is (extra alert fields kept)', () => {
    const m = { ...routed(alert('a', 'pay')), alert: { ...alert('a', 'pay'), generatorURL: 'x' } };
    expect(parseReceiverMessage(m)).toBe(m);
  });
});
