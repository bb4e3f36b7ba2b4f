/**
 * The log stream entity (`log/<stream>`), and its sub-streams (`log/<stream>#<n>`).
 *
 * - Records (`log.records`) reach the stream entity — or, when a stream is split into sub-streams by a
 *   hash of the source host, one of its sub-stream entities. A sub-stream folds the records of one
 *   message into one delta per rule (windows.ts, `accumulate` on a fresh state) and sends it to the
 *   stream entity (`log.delta`, `ctx.send`: in the same checkpoint as the sub-stream's own progress, so a
 *   delta is sent exactly once per applied message). The stream entity keeps the rules' window state in
 *   its snapshot: a crash or failover replays from the snapshot's offset, never counting twice.
 * - Windows close on `log.tick { at }` (sent by the node owning the stream's shard when something is
 *   due, through the mailbox like any message): every window ending at or before `at - graceMs`.
 *   Each group of a closed window becomes a point of the metric `log_rule.<id>` (sent to the host entity
 *   of the group's `host`, else of the stream), and each group that passed HAVING an alert: firing when
 *   it first passes, resolved at the first closed window it does not pass (log.alerts.ts).
 * - A changed rule applies from the next window: windows open when the change is seen finish with the
 *   version they started with; records from the end of the newest of them on count in the new version.
 *   A deleted rule ends its alerts at the next tick.
 *
 * Pure apart from `ctx`: the rules in force come from `options.rules`, and time only from messages.
 */
import type { AnyEntityDefinition, EntityContext } from '../../runtime/entity.ts';
import { defineEntity } from '../../runtime/entity.ts';
import type { HostPushed } from '../host/messages.ts';
import type { AlertEvent } from '../rule/types.ts';
import { endAlerts, type LogAlerts, type LogRuleMeta, stepAlerts } from './log-alerts.ts';
import type { LogRulePlan } from './sql.ts';
import { isStreamName, type StoredLog } from './types.ts';
import {
  accumulate,
  type ClosedGroup,
  closeWindows,
  mergeWindows,
  newWindowState,
  nextDue,
  type WindowState,
} from './windows.ts';

export const LOG_KIND = 'log';

/** What the entity needs of a log rule (rules.ts `LogRule`). */
export interface LogRuleInForce extends LogRuleMeta {
  readonly version: string;
  readonly plan: LogRulePlan;
}

/** One version of a rule with its open windows. */
export interface RuleRun {
  readonly version: string;
  readonly plan: LogRulePlan;
  readonly meta: LogRuleMeta;
  readonly windows: WindowState;
}

export interface LogRuleState {
  current: RuleRun;
  /** A changed rule, counting records from `fromMs` on; it takes over once `current` closed its windows. */
  next?: RuleRun & { readonly fromMs: number };
  alerts: LogAlerts;
  /** The end of the last window closed (alerts of groups absent from later windows resolve). */
  lastEnd: number | null;
}

export interface LogStreamState {
  /** Records applied (by this entity: a sub-stream counts its own). */
  records: number;
  /** Event time of the newest record applied; null before any. */
  newest: number | null;
  /** Rule id → window and alert state (the stream entity only). */
  rules: Record<string, LogRuleState>;
  /** Deltas of a rule version no longer known whose windows did not match (dropped, counted). */
  droppedDeltas: number;
}

export type LogMessage =
  | { readonly type: 'log.records'; readonly records: readonly StoredLog[] }
  | {
      readonly type: 'log.delta';
      readonly rules: Readonly<Record<string, { readonly version: string; readonly windows: WindowState }>>;
    }
  | { readonly type: 'log.tick'; readonly at: number };

/** The entity key records of `host` go to: the stream itself, or one of its sub-streams. */
export const subStreamKey = (stream: string, host: string, subStreams: number): string =>
  subStreams <= 1 ? stream : `${stream}#${hostHash(host) % subStreams}`;

/** The stream of an entity key (`payments.nginx#3` → `payments.nginx`). */
export const streamOfKey = (key: string): string => {
  const i = key.indexOf('#');
  return i < 0 ? key : key.slice(0, i);
};

/** FNV-1a over the host's UTF-16 code units: stable across processes. */
const hostHash = (host: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < host.length; i++) {
    h ^= host.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export const parseLogMessage = (payload: unknown): LogMessage => {
  if (!isObject(payload)) throw new Error('log message must be an object');
  switch (payload.type) {
    case 'log.records': {
      const records = payload.records;
      if (!Array.isArray(records)) throw new Error('log.records needs an array `records`');
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as { time?: unknown; fields?: unknown };
        if (!isObject(r) || typeof r.time !== 'number' || !Number.isFinite(r.time) || !isObject(r.fields))
          throw new Error(`log.records: records[${i}] needs a finite number 'time' and an object 'fields'`);
      }
      return payload as LogMessage;
    }
    case 'log.delta':
      if (!isObject(payload.rules)) throw new Error('log.delta needs an object `rules`');
      for (const [id, d] of Object.entries(payload.rules)) {
        if (
          !isObject(d) ||
          typeof d.version !== 'string' ||
          !isObject(d.windows) ||
          !isObject(d.windows.windows)
        )
          throw new Error(`log.delta: rules.${id} needs a string 'version' and a window state 'windows'`);
      }
      return payload as LogMessage;
    case 'log.tick':
      if (typeof payload.at !== 'number' || !Number.isFinite(payload.at))
        throw new Error('log.tick needs a finite number `at`');
      return payload as LogMessage;
    default:
      throw new Error(
        `log message type must be log.records, log.delta or log.tick, got ${JSON.stringify(payload.type)}`,
      );
  }
};

export interface LogEntityOptions {
  /** The rules in force on a stream. */
  readonly rules: (stream: string) => readonly LogRuleInForce[];
  /** A window closes this long after its end. */
  readonly graceMs: number;
  /** Where alert transitions go (publish.ts's publishAlerts with the route tree, or just the events stream). */
  readonly publish: (ctx: EntityContext, events: readonly AlertEvent[]) => void;
  /** The host kind to send `log_rule.<id>` points to; undefined: no metrics (host metrics not running). */
  readonly metricsKind: () => string | undefined;
  /** Output streams the publisher emits to. */
  readonly streams: readonly string[];
  /** Embedded journal: mailbox records kept per shard for search. */
  readonly retainRecords?: number;
  readonly shards?: number;
}

export const initialLogState = (): LogStreamState => ({
  records: 0,
  newest: null,
  rules: {},
  droppedDeltas: 0,
});

const runOf = (rule: LogRuleInForce): RuleRun => ({
  version: rule.version,
  plan: rule.plan,
  meta: { id: rule.id, severity: rule.severity, labels: rule.labels, annotations: rule.annotations },
  windows: newWindowState(),
});

const newestEnd = (run: RuleRun): number | null => {
  let end: number | null = null;
  for (const start of Object.keys(run.windows.windows)) {
    const e = Number(start) + run.plan.window.sizeMs;
    if (end === null || e > end) end = e;
  }
  return end;
};

/** Brings the state's rules to the rules in force: new ones start, changed ones switch at the next window. */
const reconcile = (state: LogStreamState, rules: readonly LogRuleInForce[]): void => {
  for (const rule of rules) {
    const s = state.rules[rule.id];
    if (!s) {
      state.rules[rule.id] = { current: runOf(rule), alerts: {}, lastEnd: null };
      continue;
    }
    if (s.current.version === rule.version || s.next?.version === rule.version) continue;
    const end = newestEnd(s.current);
    if (end === null) {
      // Nothing open: the new version applies from now on.
      s.current = {
        ...runOf(rule),
        windows: { ...newWindowState(), closedBeforeMs: s.current.windows.closedBeforeMs },
      };
      delete s.next;
    } else s.next = { ...runOf(rule), fromMs: end };
  }
};

/** The run a record at `time` counts in. */
const runFor = (s: LogRuleState, time: number): RuleRun =>
  s.next && time >= s.next.fromMs ? s.next : s.current;

const applyRecords = (
  state: LogStreamState,
  records: readonly StoredLog[],
  stream: string,
  key: string,
  options: LogEntityOptions,
  ctx: EntityContext,
): LogStreamState => {
  const rules = options.rules(stream);
  for (const r of records) if (state.newest === null || r.time > state.newest) state.newest = r.time;
  state.records += records.length;
  if (rules.length === 0) return state;
  if (key === stream) {
    reconcile(state, rules);
    for (const rule of rules) {
      const s = state.rules[rule.id]!;
      for (const r of records) {
        const run = runFor(s, r.time);
        accumulate(run.windows, run.plan, r.fields, r.time);
      }
    }
    return state;
  }
  // A sub-stream: one delta per rule for the stream entity.
  const deltas: Record<string, { version: string; windows: WindowState }> = {};
  for (const rule of rules) {
    const windows = newWindowState();
    let counted = 0;
    for (const r of records) counted += accumulate(windows, rule.plan, r.fields, r.time);
    if (counted > 0) deltas[rule.id] = { version: rule.version, windows };
  }
  if (Object.keys(deltas).length > 0) {
    const delta: LogMessage = { type: 'log.delta', rules: deltas };
    ctx.send(LOG_KIND, stream, delta);
  }
  return state;
};

const applyDelta = (
  state: LogStreamState,
  deltas: Readonly<Record<string, { readonly version: string; readonly windows: WindowState }>>,
  stream: string,
  options: LogEntityOptions,
): LogStreamState => {
  reconcile(state, options.rules(stream));
  for (const [id, d] of Object.entries(deltas)) {
    const s = state.rules[id];
    // A delta counted with a version this state no longer runs (the rule changed while it was in
    // flight) still counts in the current run when no change is pending; else it is dropped.
    const run =
      s === undefined
        ? undefined
        : s.next?.version === d.version
          ? s.next
          : s.current.version === d.version || !s.next
            ? s.current
            : undefined;
    if (!run) {
      state.droppedDeltas++;
      continue;
    }
    mergeWindows(run.windows, run.plan, d.windows);
  }
  return state;
};

interface Closed {
  readonly run: RuleRun;
  readonly groups: ClosedGroup[];
}

const tick = (
  state: LogStreamState,
  at: number,
  stream: string,
  options: LogEntityOptions,
  ctx: EntityContext,
): LogStreamState => {
  const rules = options.rules(stream);
  reconcile(state, rules);
  const live = new Set(rules.map((r) => r.id));
  const watermark = at - options.graceMs;
  const events: AlertEvent[] = [];
  const points = new Map<
    string,
    { metric: string; tags: Record<string, string>; ts: number; value: number }[]
  >();
  for (const [id, s] of Object.entries(state.rules)) {
    if (!live.has(id)) {
      // Deleted: its alerts end now, its windows are dropped.
      events.push(...endAlerts(s.alerts, s.current.meta, s.current.plan, stream, at));
      delete state.rules[id];
      continue;
    }
    const closed: Closed[] = [
      { run: s.current, groups: closeWindows(s.current.windows, s.current.plan, watermark, { all: true }) },
    ];
    if (s.next && watermark >= s.next.fromMs && nextDue(s.current.windows, s.current.plan) === null) {
      s.current = { version: s.next.version, plan: s.next.plan, meta: s.next.meta, windows: s.next.windows };
      delete s.next;
      closed.push({
        run: s.current,
        groups: closeWindows(s.current.windows, s.current.plan, watermark, { all: true }),
      });
    } else if (s.next) {
      closed.push({
        run: s.next,
        groups: closeWindows(s.next.windows, s.next.plan, watermark, { all: true }),
      });
    }
    for (const c of closed) {
      const step = stepAlerts(s.alerts, c.run.meta, c.run.plan, stream, c.groups, s.lastEnd, watermark);
      events.push(...step.events);
      s.alerts = step.alerts;
      if (step.lastEnd !== null) s.lastEnd = step.lastEnd;
      collectPoints(points, c.run, stream, c.groups);
    }
  }
  if (events.length > 0) options.publish(ctx, events);
  const kind = options.metricsKind();
  if (kind !== undefined)
    for (const [host, list] of points) {
      const pushed: HostPushed = { type: 'host.pushed', points: list };
      ctx.send(kind, host, pushed);
    }
  return state;
};

/** `log_rule.<id>` = the first visible aggregate of each group, on the group's host (else the stream's). */
const collectPoints = (
  points: Map<string, { metric: string; tags: Record<string, string>; ts: number; value: number }[]>,
  run: RuleRun,
  stream: string,
  groups: readonly ClosedGroup[],
): void => {
  const first = run.plan.outputs.find((o) => o.source === 'aggregate');
  if (first?.source !== 'aggregate') return;
  for (const g of groups) {
    const value = g.values[first.alias];
    if (value === null || value === undefined || !Number.isFinite(value)) continue;
    // On the group's host entity when `host` names one; else on the stream's, with `host` as a tag.
    const onHost = typeof g.group.host === 'string' && isStreamName(g.group.host);
    const host = onHost ? (g.group.host as string) : stream;
    const tags: Record<string, string> = { stream };
    for (const [k, v] of Object.entries(g.group))
      if (!(onHost && k === 'host')) tags[k] = v === null ? '' : String(v);
    const list = points.get(host) ?? [];
    list.push({ metric: `log_rule.${run.meta.id}`, tags, ts: g.windowEnd, value });
    points.set(host, list);
  }
};

/** When the stream entity next has something to do for a tick (ms), or null. */
export const dueAt = (state: LogStreamState, stream: string, options: LogEntityOptions): number | null => {
  const versions = new Map(options.rules(stream).map((r) => [r.id, r.version]));
  let due: number | null = null;
  const consider = (t: number | null) => {
    if (t !== null && (due === null || t < due)) due = t;
  };
  for (const [id, s] of Object.entries(state.rules)) {
    const version = versions.get(id);
    // A deleted rule's alerts end, and a changed rule with nothing open switches, at the next tick.
    if (version === undefined) return 0;
    if (version !== s.current.version && !s.next && newestEnd(s.current) === null) return 0;
    for (const run of s.next ? [s.current, s.next] : [s.current]) {
      const end = nextDue(run.windows, run.plan);
      consider(end === null ? null : end + options.graceMs);
    }
    // Firing alerts resolve at the next window end even when no record opened that window.
    if (Object.values(s.alerts).some((a) => a.firing) && s.lastEnd !== null)
      consider(s.lastEnd + s.current.plan.window.slideMs + options.graceMs);
  }
  return due;
};

/** What the inspector and `GET /api/v1/logs/<stream>` show of a stream entity. */
export const summaryOf = (state: LogStreamState) => ({
  records: state.records,
  newest: state.newest,
  rules: Object.fromEntries(
    Object.entries(state.rules).map(([id, s]) => [
      id,
      {
        version: s.current.version,
        openWindows: Object.keys(s.current.windows.windows).length,
        late: s.current.windows.dropped.late,
        firing: Object.values(s.alerts).filter((a) => a.firing).length,
      },
    ]),
  ),
});

export const logEntity = (options: LogEntityOptions): AnyEntityDefinition =>
  defineEntity<LogStreamState, LogMessage>({
    kind: LOG_KIND,
    ...(options.shards !== undefined ? { shards: options.shards } : {}),
    streams: options.streams,
    ...(options.retainRecords !== undefined ? { retainRecords: options.retainRecords } : {}),
    initialState: initialLogState,
    parse: parseLogMessage,
    receive: (state, message, ctx) => {
      const stream = streamOfKey(ctx.key);
      switch (message.type) {
        case 'log.records':
          return applyRecords(state, message.records, stream, ctx.key, options, ctx);
        case 'log.delta':
          return ctx.key === stream ? applyDelta(state, message.rules, stream, options) : state;
        case 'log.tick':
          return ctx.key === stream ? tick(state, message.at, stream, options, ctx) : state;
        default: {
          const never: never = message;
          throw new Error(`unknown log message ${JSON.stringify(never)}`);
        }
      }
    },
    query: (state, query, key) => {
      if (query === 'due') return dueAt(state, streamOfKey(key), options);
      if (query === 'summary') return summaryOf(state);
      return { state };
    },
    summary: (state) => summaryOf(state),
  });
