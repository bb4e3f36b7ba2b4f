/**
 * The host entity as a table of messages → state, samples and events (pure, with a recording
 * context): polls derive and emit one metrics record, reachability transitions emit one event each,
 * pushed counters become rates, a removed host drops its state. `parseHostMessage` refuses bad
 * payloads with the field named.
 */
import { describe, expect, it } from 'vitest';
import { realClock } from '../../runtime/clock.ts';
import type { EntityContext } from '../../runtime/entity.ts';
import { applyHostMessage, type HostState, initialHostState } from './host.ts';
import { type HostMessage, parseHostMessage } from './messages.ts';

const recording = () => {
  const emitted: { stream: string; value: unknown }[] = [];
  const ctx: EntityContext = {
    kind: 'host',
    key: 'web-1',
    offset: 0,
    messageId: 'm',
    clock: realClock,
    emit: (stream, value) => emitted.push({ stream, value }),
    send: () => {
      throw new Error('the host entity sends nothing');
    },
  };
  return { ctx, emitted };
};

const polled = (ts: number, octets: number, extra: Partial<HostMessage> = {}): HostMessage =>
  ({
    type: 'host.polled',
    ts,
    latencyMs: 4,
    missing: 0,
    derived: [],
    service: 'web',
    labels: { team: 'a' },
    values: [
      { metric: 'if.in_octets', tags: { ifName: 'eth0' }, type: 'counter', width: 64, value: octets },
      { metric: 'load.1', tags: {}, type: 'gauge', value: 0.5 },
    ],
    ...extra,
  }) as HostMessage;

const failed = (ts: number): HostMessage => ({
  type: 'host.poll-failed',
  ts,
  latencyMs: 300,
  code: 'timeout',
  error: 'no answer from web-1 at 10.0.0.1:161 within 300 ms',
  service: 'web',
  labels: { team: 'a' },
});

const run = (messages: readonly HostMessage[], from: HostState = initialHostState()) => {
  const { ctx, emitted } = recording();
  let s = from;
  for (const m of messages) s = applyHostMessage(s, m, ctx);
  return { state: s, emitted };
};

describe('host entity', () => {
  it('derives a poll into one metrics record: gauges as they are, counters as rates from the second poll', () => {
    const { state, emitted } = run([polled(1_000, 5_000), polled(11_000, 25_000)]);
    expect(emitted.map((e) => e.stream)).toEqual(['metrics', 'metrics']);
    const [first, second] = emitted.map(
      (e) => e.value as { host: string; service: string; labels: object; samples: { metric: string }[] },
    );
    expect(first).toEqual({
      host: 'web-1',
      service: 'web',
      labels: { team: 'a' },
      samples: [{ metric: 'load.1', tags: {}, ts: 1_000, value: 0.5 }],
    });
    expect({
      ...second!,
      samples: [...second!.samples].sort((a, b) => a.metric.localeCompare(b.metric)),
    }).toEqual({
      host: 'web-1',
      service: 'web',
      labels: { team: 'a' },
      samples: [
        { metric: 'if.in_octets.rate', tags: { ifName: 'eth0' }, ts: 11_000, value: 2_000 },
        { metric: 'load.1', tags: {}, ts: 11_000, value: 0.5 },
      ],
    });
    expect(state).toMatchObject({
      status: 'reachable',
      polls: 2,
      failures: 0,
      lastPollAt: 11_000,
      lastLatencyMs: 4,
    });
  });

  it('emits host.unreachable once on the first failure and host.reachable once on recovery', () => {
    const { state, emitted } = run([polled(1_000, 1), failed(2_000), failed(3_000), polled(4_000, 2)]);
    const events = emitted.filter((e) => e.stream === 'host-events').map((e) => e.value);
    expect(events).toEqual([
      {
        type: 'host.unreachable',
        host: 'web-1',
        at: 2_000,
        code: 'timeout',
        error: 'no answer from web-1 at 10.0.0.1:161 within 300 ms',
      },
      { type: 'host.reachable', host: 'web-1', at: 4_000 },
    ]);
    expect(state).toMatchObject({ status: 'reachable', polls: 4, failures: 2, consecutiveFailures: 0 });
    expect(state.lastError).toBeUndefined();
    const down = run([failed(2_000), failed(3_000)]).state;
    expect(down).toMatchObject({
      status: 'unreachable',
      consecutiveFailures: 2,
      lastError: { code: 'timeout', at: 3_000 },
    });
  });

  it('keeps counter readings across polls that fail, so the rate after recovery is right', () => {
    const { emitted } = run([polled(0, 1_000), failed(10_000), polled(20_000, 41_000)]);
    const last = emitted.filter((e) => e.stream === 'metrics').at(-1)!.value as {
      samples: { metric: string; value: number }[];
    };
    expect(last.samples.find((s) => s.metric === 'if.in_octets.rate')?.value).toBe(2_000);
  });

  it('turns pushes into samples: gauges and strings as they are, counters as rates', () => {
    const push = (ts: number, v: number): HostMessage => ({
      type: 'host.pushed',
      points: [
        { metric: 'app.requests', tags: { route: '/' }, ts, value: v, type: 'counter' },
        { metric: 'app.version', tags: {}, ts, value: '1.2.3' },
        { metric: 'app.queue', tags: {}, ts, value: 3 },
      ],
    });
    const { state, emitted } = run([push(0, 100), push(2_000, 300)]);
    const samples = emitted.map(
      (e) => (e.value as { samples: { metric: string; value: unknown; ts: number }[] }).samples,
    );
    expect(samples[0]).toEqual([
      { metric: 'app.version', tags: {}, ts: 0, value: '1.2.3' },
      { metric: 'app.queue', tags: {}, ts: 0, value: 3 },
    ]);
    expect(samples[1]).toEqual([
      { metric: 'app.requests.rate', tags: { route: '/' }, ts: 2_000, value: 100 },
      { metric: 'app.version', tags: {}, ts: 2_000, value: '1.2.3' },
      { metric: 'app.queue', tags: {}, ts: 2_000, value: 3 },
    ]);
    expect(state).toMatchObject({ status: 'push-only', pushes: 2 });
  });

  it('drops the state of a removed host and says so once', () => {
    const { state, emitted } = run([
      polled(0, 1),
      { type: 'host.removed', ts: 5 },
      { type: 'host.removed', ts: 6 },
    ]);
    expect(state).toEqual({ ...initialHostState(), status: 'removed' });
    expect(emitted.filter((e) => e.stream === 'host-events').map((e) => e.value)).toEqual([
      { type: 'host.removed', host: 'web-1', at: 5 },
    ]);
  });
});

describe('parseHostMessage', () => {
  it.each([
    [null, 'host message must be an object'],
    [
      { type: 'host.nope' },
      'host message type must be host.polled, host.poll-failed, host.pushed or host.removed, got "host.nope"',
    ],
    [{ type: 'host.pushed', points: [] }, 'points must be a non-empty array'],
    [
      { type: 'host.pushed', points: [{ metric: 'm', tags: {}, ts: 1, value: null }] },
      'points[0].value must be a finite number',
    ],
    [
      { type: 'host.pushed', points: [{ metric: 'm', tags: { a: 1 }, ts: 1, value: 1 }] },
      'points[0].tags.a must be a string',
    ],
    [
      { ...polled(1, 1), values: [{ metric: 'm', tags: {}, type: 'rate', value: 1 }] },
      "values[0].type must be 'gauge' or 'counter'",
    ],
    [
      { ...polled(1, 1), values: [{ metric: 'm', tags: {}, type: 'counter', width: 16, value: 1 }] },
      'values[0].width must be 32 or 64',
    ],
    [{ ...failed(1), code: 'weird' }, 'code must be one of timeout, auth, unreachable, protocol'],
    [{ type: 'host.removed' }, 'ts must be a finite number'],
  ])('refuses %j: %s', (payload, message) => {
    expect(() => parseHostMessage(payload)).toThrow(message);
  });

  it('accepts what the poller and ingest send', () => {
    expect(parseHostMessage(polled(1, 2))).toEqual(polled(1, 2));
    expect(parseHostMessage(failed(1))).toEqual(failed(1));
  });
});
