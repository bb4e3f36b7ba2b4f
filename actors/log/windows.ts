/**
 * Window aggregation for log rules: records are counted into tumbling or hopping windows per group
 * (`accumulate`), windows are closed at a watermark (`closeWindows`; `nextDue` says when the next one
 * is due), and the states sub-streams accumulate over one batch are folded into the stream's
 * (`mergeWindows`). The state is plain JSON data the stream actor owns and snapshots; it is mutated in
 * place, as copying per record would not keep up with ingest.
 *
 * Bounds (WINDOW_LIMITS) hold however records arrive: a window keeps at most `maxGroupsPerWindow`
 * groups and a count(DISTINCT) at most `maxDistinctValues` values per group; what does not fit is
 * dropped and counted in `state.dropped`, as are records (or merged groups) for windows already closed.
 */
import { evaluateExpr, evaluateFilter, lookupField, numeric } from './expr.ts';
import type { AggregateSpec, LogRulePlan } from './sql.ts';

export const WINDOW_LIMITS = {
  /** Groups per open window; records of further groups are dropped and counted in `dropped.groups`. */
  maxGroupsPerWindow: 10_000,
  /** Values one count(DISTINCT) keeps per group and window; beyond, it reports this lower bound. */
  maxDistinctValues: 10_000,
} as const;

/** One aggregate's running state: `n` contributing values, and for count(DISTINCT) the values seen. */
export interface AggregateState {
  n: number;
  sum: number;
  min: number | null;
  max: number | null;
  /** JSON of each distinct value → 1 (an object, not a Set, so snapshots stay JSON/msgpack data). */
  seen?: Record<string, 1>;
  seenCount?: number;
}
export interface GroupState {
  readonly group: Record<string, unknown>;
  readonly aggregates: AggregateState[];
  /**
   * Records counted into this group and window, so a merged group dropped as late or over the group
   * bound is counted as the records it holds. Absent in states snapshotted before it existed (1 then).
   */
  records?: number;
}
/** Plain data, safe for JSON and msgpack snapshots. */
export interface WindowState {
  /** Window start (ms, as a decimal string) → group key (JSON of the group values) → state. */
  windows: Record<string, Record<string, GroupState>>;
  /** Windows ending at or before this are closed; records for them are late and dropped. */
  closedBeforeMs: number | null;
  dropped: { late: number; groups: number; distinct: number };
}
export interface WindowResult {
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly group: Record<string, unknown>;
  /** Visible aggregates by alias; null for sum/avg/min/max with no numeric value. */
  readonly values: Record<string, number | null>;
}
/** A group of a closed window with whether HAVING let it through (`closeWindows(…, { all: true })`). */
export interface ClosedGroup extends WindowResult {
  readonly passed: boolean;
}

export const newWindowState = (): WindowState => ({
  windows: {},
  closedBeforeMs: null,
  dropped: { late: 0, groups: 0, distinct: 0 },
});

/**
 * Groups per window, so a new group does not count the window's groups again (a window may hold
 * 10,000). Kept beside the state, not in it, so the state stays plain data; a state restored from a
 * snapshot is counted once, at its first new group.
 */
const groupCounts = new WeakMap<object, number>();
const groupCount = (groups: Record<string, GroupState>): number => {
  let n = groupCounts.get(groups);
  if (n === undefined) {
    n = Object.keys(groups).length;
    groupCounts.set(groups, n);
  }
  return n;
};

/**
 * Counts one record (if it passes WHERE) into every window containing `timeMs`; returns how many.
 * Mutates `state`, which the stream actor owns — copying per record would not keep up with ingest.
 */
export const accumulate = (
  state: WindowState,
  plan: LogRulePlan,
  record: unknown,
  timeMs: number,
): number => {
  if (!Number.isFinite(timeMs) || !evaluateFilter(plan, record)) return 0;
  const { sizeMs, slideMs } = plan.window;
  const groupBy = plan.groupBy;
  const groupValues: unknown[] = new Array(groupBy.length);
  for (let i = 0; i < groupBy.length; i++) {
    const v = lookupField(record, groupBy[i]!);
    groupValues[i] = v === undefined ? null : v;
  }
  const key = groupBy.length === 0 ? '[]' : JSON.stringify(groupValues);
  const aggregates = plan.aggregates;
  let counted = 0;
  for (let start = Math.floor(timeMs / slideMs) * slideMs; start > timeMs - sizeMs; start -= slideMs) {
    if (state.closedBeforeMs !== null && start + sizeMs <= state.closedBeforeMs) {
      state.dropped.late++;
      continue;
    }
    const at = String(start);
    let groups = state.windows[at];
    if (!groups) {
      groups = {};
      state.windows[at] = groups;
    }
    let g = groups[key];
    if (!g) {
      const count = groupCount(groups);
      if (count >= WINDOW_LIMITS.maxGroupsPerWindow) {
        state.dropped.groups++;
        continue;
      }
      groupCounts.set(groups, count + 1);
      const group: Record<string, unknown> = {};
      plan.groupBy.forEach((p, i) => {
        group[p] = groupValues[i];
      });
      g = {
        group,
        aggregates: plan.aggregates.map(() => ({ n: 0, sum: 0, min: null, max: null })),
        records: 0,
      };
      groups[key] = g;
    }
    g.records = (g.records ?? 0) + 1;
    for (let i = 0; i < aggregates.length; i++) addValue(state, aggregates[i]!, g.aggregates[i]!, record);
    counted++;
  }
  return counted;
};

const addValue = (state: WindowState, spec: AggregateSpec, a: AggregateState, record: unknown): void => {
  if (spec.field === undefined) {
    a.n++;
    return;
  }
  const v = lookupField(record, spec.field);
  if (v === undefined || v === null) return;
  if (spec.fn === 'count') {
    if (!spec.distinct) a.n++;
    else {
      const seen = a.seen ?? {};
      a.seen = seen;
      const k = JSON.stringify(v);
      if (Object.hasOwn(seen, k)) return;
      if ((a.seenCount ?? 0) >= WINDOW_LIMITS.maxDistinctValues) {
        state.dropped.distinct++;
        return;
      }
      seen[k] = 1;
      a.seenCount = (a.seenCount ?? 0) + 1;
    }
    return;
  }
  const n = numeric(v);
  if (n === undefined) return;
  a.n++;
  a.sum += n;
  a.min = a.min === null || n < a.min ? n : a.min;
  a.max = a.max === null || n > a.max ? n : a.max;
};

const resultOf = (spec: AggregateSpec, a: AggregateState): number | null => {
  switch (spec.fn) {
    case 'count':
      return spec.distinct ? (a.seenCount ?? 0) : a.n;
    case 'sum':
      return a.n === 0 ? null : a.sum;
    case 'avg':
      return a.n === 0 ? null : a.sum / a.n;
    case 'min':
      return a.min;
    case 'max':
      return a.max;
    default: {
      const never: never = spec.fn;
      return never;
    }
  }
};

/**
 * Closes every window ending at or before `watermarkMs`, oldest first, groups in key order, and
 * returns the results HAVING lets through — or, with `{ all: true }`, every group with `passed`, so the
 * caller can report each group and resolve what stopped passing. Later records for closed windows are
 * dropped as late.
 */
export function closeWindows(state: WindowState, plan: LogRulePlan, watermarkMs: number): WindowResult[];
export function closeWindows(
  state: WindowState,
  plan: LogRulePlan,
  watermarkMs: number,
  options: { readonly all: true },
): ClosedGroup[];
export function closeWindows(
  state: WindowState,
  plan: LogRulePlan,
  watermarkMs: number,
  options?: { readonly all?: boolean },
): WindowResult[] | ClosedGroup[];
export function closeWindows(
  state: WindowState,
  plan: LogRulePlan,
  watermarkMs: number,
  options: { readonly all?: boolean } = {},
): WindowResult[] | ClosedGroup[] {
  if (!Number.isFinite(watermarkMs)) return [];
  const { sizeMs } = plan.window;
  const starts = Object.keys(state.windows)
    .map(Number)
    .filter((s) => s + sizeMs <= watermarkMs)
    .sort((a, b) => a - b);
  const results: WindowResult[] = [];
  for (const start of starts) {
    const groups = state.windows[String(start)]!;
    for (const key of Object.keys(groups).sort()) {
      const g = groups[key]!;
      const all: Record<string, number | null> = {};
      plan.aggregates.forEach((spec, i) => {
        all[spec.alias] = resultOf(spec, g.aggregates[i]!);
      });
      const passed = plan.having === null || evaluateExpr(plan.having, g.group, all) === true;
      if (!passed && !options.all) continue;
      const values: Record<string, number | null> = {};
      for (const spec of plan.aggregates) if (!spec.hidden) values[spec.alias] = all[spec.alias]!;
      const result = { windowStart: start, windowEnd: start + sizeMs, group: g.group, values };
      const closed: ClosedGroup = { ...result, passed };
      results.push(options.all ? closed : result);
    }
    delete state.windows[String(start)];
  }
  if (state.closedBeforeMs === null || watermarkMs > state.closedBeforeMs) state.closedBeforeMs = watermarkMs;
  return results;
}

/** The earliest end of an open window (when `closeWindows` next has something to close); null when none. */
export const nextDue = (state: WindowState, plan: LogRulePlan): number | null => {
  let due: number | null = null;
  for (const start of Object.keys(state.windows)) {
    const end = Number(start) + plan.window.sizeMs;
    if (due === null || end < due) due = end;
  }
  return due;
};

/**
 * Folds `delta` — a state a sub-stream accumulated over one batch (`newWindowState()` + `accumulate`)
 * with the same plan — into `state`, as if its records had been accumulated there: per window and
 * group n, sum, min, max and the distinct values are combined, under the same bounds. Groups of windows
 * `state` has already closed are dropped and counted as late (by the records they hold); so are new
 * groups past `maxGroupsPerWindow` (in `dropped.groups`) and distinct values past `maxDistinctValues`
 * (in `dropped.distinct`, one per value). `delta.dropped` is added to `state.dropped`. Returns how many
 * group-windows were merged. `delta` is not changed, and `state` shares nothing with it afterwards.
 */
export const mergeWindows = (state: WindowState, plan: LogRulePlan, delta: WindowState): number => {
  const { sizeMs } = plan.window;
  state.dropped.late += delta.dropped.late;
  state.dropped.groups += delta.dropped.groups;
  state.dropped.distinct += delta.dropped.distinct;
  let merged = 0;
  for (const [start, deltaGroups] of Object.entries(delta.windows)) {
    const late = state.closedBeforeMs !== null && Number(start) + sizeMs <= state.closedBeforeMs;
    if (late) {
      for (const g of Object.values(deltaGroups)) state.dropped.late += g.records ?? 1;
      continue;
    }
    let groups = state.windows[start];
    if (!groups) {
      groups = {};
      state.windows[start] = groups;
    }
    let count = groupCount(groups);
    for (const [key, from] of Object.entries(deltaGroups)) {
      let into = groups[key];
      if (!into) {
        if (count >= WINDOW_LIMITS.maxGroupsPerWindow) {
          state.dropped.groups += from.records ?? 1;
          continue;
        }
        count++;
        into = {
          group: structuredClone(from.group),
          aggregates: plan.aggregates.map(() => ({ n: 0, sum: 0, min: null, max: null })),
          records: 0,
        };
        groups[key] = into;
      }
      into.records = (into.records ?? 0) + (from.records ?? 1);
      plan.aggregates.forEach((spec, i) => {
        const a = from.aggregates[i];
        if (a) mergeAggregate(state, spec, into.aggregates[i]!, a);
      });
      merged++;
    }
    groupCounts.set(groups, count);
    if (count === 0) delete state.windows[start];
  }
  return merged;
};

const mergeAggregate = (
  state: WindowState,
  spec: AggregateSpec,
  into: AggregateState,
  from: AggregateState,
): void => {
  into.n += from.n;
  into.sum += from.sum;
  if (from.min !== null && (into.min === null || from.min < into.min)) into.min = from.min;
  if (from.max !== null && (into.max === null || from.max > into.max)) into.max = from.max;
  if (!spec.distinct || from.seen === undefined) return;
  const seen = into.seen ?? {};
  into.seen = seen;
  for (const k of Object.keys(from.seen)) {
    if (Object.hasOwn(seen, k)) continue;
    if ((into.seenCount ?? 0) >= WINDOW_LIMITS.maxDistinctValues) {
      state.dropped.distinct++;
      continue;
    }
    seen[k] = 1;
    into.seenCount = (into.seenCount ?? 0) + 1;
  }
};
