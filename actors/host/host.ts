/**
 * The host entity (`host/<id>`): one per monitored server, whether polled over SNMP, pushed to, or
 * both. It owns what must survive a crash or a move — reachability, poll statistics and the last
 * reading of every counter series (DeriveState), so a rate after recovery is computed from the last
 * values before it — and turns each poll and push into final samples (derive.ts) that it emits to the
 * `metrics` stream, one record per poll or push, in the same checkpoint as the state change.
 * Reachability transitions are emitted to `host-events` (`host.unreachable`, `host.reachable`,
 * `host.removed`).
 *
 * Pure apart from `ctx.emit`: time comes in the messages (the poll's send time, the points' times).
 */
import { defineEntity, type EntityContext } from '../../runtime/entity.ts';
import { type DeriveState, derive, EMPTY_DERIVE_STATE, pushCounter } from './derive.ts';
import { type HostMessage, type HostPolled, type HostPollFailed, parseHostMessage } from './messages.ts';
import type { PollErrorCode } from './snmp.ts';
import type { PushedPoint, Tags } from './types.ts';

export const HOST_KIND = 'host';
export const METRICS_STREAM = 'metrics';
export const HOST_EVENTS_STREAM = 'host-events';

export type HostStatus = 'new' | 'reachable' | 'unreachable' | 'push-only' | 'removed';

export interface HostState {
  status: HostStatus;
  service: string;
  labels: Tags;
  polls: number;
  failures: number;
  consecutiveFailures: number;
  pushes: number;
  /** Send time and latency of the last poll (ms). */
  lastPollAt?: number;
  lastLatencyMs?: number;
  lastError?: { readonly code: PollErrorCode; readonly message: string; readonly at: number };
  derive: DeriveState;
  /** What a HostObserver keeps for this host (the host part of the alert rules: actors/rule). */
  observed?: unknown;
}

/**
 * Sees every metrics record a host emits — and each failed poll, as `undefined`, so rules can check
 * for missing data — in the same delivery, with its own part of the host's state, and returns that
 * part's next value. What it emits or sends (`ctx`) lands with the host's checkpoint. This is how the
 * host part of the alert rules runs next to the host's shard without a sample crossing a mailbox.
 */
export interface HostObserver {
  /** Extra output streams the observer emits to. */
  readonly streams: readonly string[];
  observe(observed: unknown, record: MetricsRecord | undefined, at: number, ctx: EntityContext): unknown;
}

/** One final sample inside a metrics record. */
export interface RecordSample {
  readonly metric: string;
  readonly tags: Tags;
  readonly ts: number;
  readonly value: number | string;
}

/** What the `metrics` stream carries: the samples of one poll or push of one host. */
export interface MetricsRecord {
  readonly host: string;
  readonly service: string;
  readonly labels: Tags;
  readonly samples: readonly RecordSample[];
}

export interface HostEvent {
  readonly type: 'host.unreachable' | 'host.reachable' | 'host.removed';
  readonly host: string;
  readonly at: number;
  readonly code?: PollErrorCode;
  readonly error?: string;
}

export const initialHostState = (): HostState => ({
  status: 'new',
  service: '',
  labels: {},
  polls: 0,
  failures: 0,
  consecutiveFailures: 0,
  pushes: 0,
  derive: EMPTY_DERIVE_STATE,
});

const emitEvent = (ctx: EntityContext, event: HostEvent): void => ctx.emit(HOST_EVENTS_STREAM, event);

const observe = (
  s: HostState,
  record: MetricsRecord | undefined,
  at: number,
  ctx: EntityContext,
  observer: HostObserver | undefined,
): HostState => {
  if (!observer) return s;
  const observed = observer.observe(s.observed, record, at, ctx);
  if (observed === s.observed) return s;
  if (observed === undefined) {
    const { observed: _, ...rest } = s;
    return rest;
  }
  return { ...s, observed };
};

const applyPolled = (s: HostState, m: HostPolled, ctx: EntityContext, observer?: HostObserver): HostState => {
  const result = derive(s.derive, m.values, m.ts, m.derived);
  if (s.status === 'unreachable') emitEvent(ctx, { type: 'host.reachable', host: ctx.key, at: m.ts });
  if (result.samples.length > 0) {
    const record: MetricsRecord = {
      host: ctx.key,
      service: m.service,
      labels: m.labels,
      samples: result.samples.map((x) => ({ metric: x.metric, tags: x.tags, ts: m.ts, value: x.value })),
    };
    ctx.emit(METRICS_STREAM, record);
    s = observe(s, record, m.ts, ctx, observer);
  }
  const { lastError: _, ...rest } = s;
  return {
    ...rest,
    status: 'reachable',
    service: m.service,
    labels: m.labels,
    polls: s.polls + 1,
    consecutiveFailures: 0,
    lastPollAt: m.ts,
    lastLatencyMs: m.latencyMs,
    derive: result.state,
  };
};

const applyPollFailed = (
  s: HostState,
  m: HostPollFailed,
  ctx: EntityContext,
  observer?: HostObserver,
): HostState => {
  if (s.status !== 'unreachable')
    emitEvent(ctx, { type: 'host.unreachable', host: ctx.key, at: m.ts, code: m.code, error: m.error });
  return {
    ...observe(s, undefined, m.ts, ctx, observer),
    status: 'unreachable',
    service: m.service,
    labels: m.labels,
    polls: s.polls + 1,
    failures: s.failures + 1,
    consecutiveFailures: s.consecutiveFailures + 1,
    lastPollAt: m.ts,
    lastLatencyMs: m.latencyMs,
    lastError: { code: m.code, message: m.error, at: m.ts },
  };
};

const applyPushed = (
  s: HostState,
  points: readonly PushedPoint[],
  ctx: EntityContext,
  observer?: HostObserver,
): HostState => {
  let state = s.derive;
  const samples: RecordSample[] = [];
  for (const p of points) {
    if (p.type === 'counter' && typeof p.value === 'number') {
      const step = pushCounter(state, p.metric, p.tags, p.value, p.ts);
      state = step.state;
      if (step.sample) samples.push({ ...step.sample, ts: p.ts });
    } else {
      samples.push({ metric: p.metric, tags: p.tags, ts: p.ts, value: p.value });
    }
  }
  if (samples.length > 0) {
    const record: MetricsRecord = { host: ctx.key, service: s.service, labels: s.labels, samples };
    ctx.emit(METRICS_STREAM, record);
    s = observe(s, record, samples[samples.length - 1]!.ts, ctx, observer);
  }
  return {
    ...s,
    status: s.status === 'new' || s.status === 'removed' ? 'push-only' : s.status,
    pushes: s.pushes + 1,
    derive: state,
  };
};

export const applyHostMessage = (
  s: HostState,
  m: HostMessage,
  ctx: EntityContext,
  observer?: HostObserver,
): HostState => {
  switch (m.type) {
    case 'host.polled':
      return applyPolled(s, m, ctx, observer);
    case 'host.poll-failed':
      return applyPollFailed(s, m, ctx, observer);
    case 'host.pushed':
      return applyPushed(s, m.points, ctx, observer);
    case 'host.removed': {
      if (s.status !== 'removed') emitEvent(ctx, { type: 'host.removed', host: ctx.key, at: m.ts });
      // The observer lets go of the host (its alerts resolve) through an empty record.
      const observed = observe(
        s,
        { host: ctx.key, service: s.service, labels: s.labels, samples: [] },
        m.ts,
        ctx,
        observer,
      ).observed;
      return { ...initialHostState(), status: 'removed', ...(observed === undefined ? {} : { observed }) };
    }
    default: {
      const never: never = m;
      throw new Error(`unknown host message ${JSON.stringify(never)}`);
    }
  }
};

/** The compact, JSON-safe view the inspector shows (`ask(host, id, 'summary')`). */
export const hostSummary = (s: HostState) => ({
  status: s.status,
  service: s.service,
  labels: s.labels,
  polls: s.polls,
  failures: s.failures,
  consecutiveFailures: s.consecutiveFailures,
  pushes: s.pushes,
  lastPollAt: s.lastPollAt ?? null,
  lastLatencyMs: s.lastLatencyMs ?? null,
  lastError: s.lastError ?? null,
  counters: Object.keys(s.derive.s).length,
});

/** The host kind; with an observer (the alert rules), every record it emits is shown to it first. */
export const hostEntity = (observer?: HostObserver) =>
  defineEntity<HostState, HostMessage>({
    kind: HOST_KIND,
    streams: [METRICS_STREAM, HOST_EVENTS_STREAM, ...(observer?.streams ?? [])],
    initialState: initialHostState,
    parse: parseHostMessage,
    receive: (s, m, ctx) => applyHostMessage(s, m, ctx, observer),
    query: (state, query) => (query === 'summary' ? hostSummary(state) : { state }),
  });

export const host = hostEntity();
