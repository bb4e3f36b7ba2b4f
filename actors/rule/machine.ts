/**
 * The alert state machine of one series: pure, so a replay decides the same and tests pin time.
 * Prometheus's lifecycle (`for`, `keep_firing_for`) with hysteresis (`clear`) and Zabbix's no-data.
 *
 *            holds                    holds for `for`
 *   inactive ───────▶ pending ─────────────────────────▶ firing
 *      ▲   └──────────────────(for = 0)────────────────────▲│
 *      │  stops holding (transition 'inactive')            ││ stops holding for `keep_firing_for`
 *      └───────────────────────────────────────────────────┘└▶ (transition 'resolved') ─▶ inactive
 *
 * - "Holds": `value op threshold` to start; once pending or firing, `value op clear` (the same operator
 *   against the clear level), so a value wandering between clear and threshold keeps its state instead
 *   of flapping. Without `clear` the two are the same condition.
 * - `for = 0` fires at the first sample that holds, with one transition ('firing'), no 'pending'.
 * - No-data (`noData.policy = 'alert'`): a check (`value: null`) finding no sample for `after` ×
 *   interval fires the series directly — `after` is its wait, `for` is not added — with value null and
 *   `noData` set. The first sample after that resolves it at once (data back is the recovery, so
 *   `keep_firing_for` does not apply), unless that sample meets the condition itself: then the series
 *   goes on firing for the value. A series already firing for its value when data stops goes on firing,
 *   now as no-data. With policy `ignore` a check changes nothing (a firing series stays firing until a
 *   sample ends it, as a Zabbix trigger does).
 * - `seq` counts the transitions of the series and never goes back: a series that resolves or goes
 *   inactive after a transition is kept as an `inactive` SeriesAlert carrying its seq, so its next
 *   alert continues the count and (fingerprint, seq) stays unique. Only a series that never had a
 *   transition, of a rule without no-data alerting, is forgotten (`next: undefined`); the caller drops
 *   inactive series it has not seen for a long time (evaluate.ts, `FORGET_INACTIVE_AFTER_MS`).
 * - A sample older than the last one seen is ignored (at-least-once delivery can repeat, not reorder,
 *   but pushes can come late).
 *
 * Edits (`seriesAfterEdit`), kept simple: a series the edited rule still covers keeps its state and is
 * re-evaluated by the new rule at its next sample — a firing series whose value no longer meets the new
 * condition resolves then, not at the edit. A pending series is dropped (transition 'inactive') only if
 * the operator changed: time under `> 90` does not count towards `< 10`. A series whose labels would
 * change (severity or rule labels edited) is a different alert: the old one ends at the edit, the new one
 * starts from its next sample. So does a series the new selector, scope or services no longer cover,
 * and a no-data alert of a rule that no longer alerts on no-data. A deleted rule ends every series
 * (`endSeries`).
 */
import type { Operator, Rule, SeriesAlert, SeriesStep } from './types.ts';

export interface SeriesInput {
  readonly at: number;
  /** null: a no-data check at `at`. */
  readonly value: number | null;
}

/** `value op limit`. NaN never holds. */
export const compare = (op: Operator, value: number, limit: number): boolean => {
  switch (op) {
    case '>':
      return value > limit;
    case '>=':
      return value >= limit;
    case '<':
      return value < limit;
    case '<=':
      return value <= limit;
    case '==':
      return value === limit;
    case '!=':
      return value !== limit && !Number.isNaN(value);
    default: {
      const never: never = op;
      throw new Error(`unknown operator ${String(never)}`);
    }
  }
};

const NOTHING: SeriesStep = { next: undefined };

const inactive = (
  seq: number,
  from: SeriesAlert | undefined,
  at: number,
  value: number | null,
): SeriesAlert => ({
  phase: 'inactive',
  seq,
  activeSince: 0,
  firedAt: 0,
  lastActiveAt: from?.lastActiveAt ?? 0,
  lastSeenAt: at,
  value,
  noData: false,
});

const firing = (seq: number, at: number, activeSince: number, value: number): SeriesAlert => ({
  phase: 'firing',
  seq,
  activeSince,
  firedAt: at,
  lastActiveAt: at,
  lastSeenAt: at,
  value,
  noData: false,
});

/** The no-data side: `at` is the check's time. */
const checkNoData = (rule: Rule, prev: SeriesAlert | undefined, at: number): SeriesStep => {
  if (rule.noData.policy !== 'alert' || prev === undefined) return { next: prev };
  if (at - prev.lastSeenAt < rule.noData.after * rule.intervalMs) return { next: prev };
  if (prev.phase === 'firing')
    return prev.noData ? { next: prev } : { next: { ...prev, noData: true, value: null, lastActiveAt: at } };
  return {
    next: {
      phase: 'firing',
      seq: prev.seq + 1,
      activeSince: at,
      firedAt: at,
      lastActiveAt: at,
      lastSeenAt: prev.lastSeenAt,
      value: null,
      noData: true,
    },
    transition: 'firing',
  };
};

/** One evaluation of one series: a sample (`value` a number) or a no-data check (`value` null). */
export const stepSeries = (rule: Rule, prev: SeriesAlert | undefined, input: SeriesInput): SeriesStep => {
  const { at, value } = input;
  if (value === null) return checkNoData(rule, prev, at);
  if (prev !== undefined && at < prev.lastSeenAt) return { next: prev };
  const phase = prev?.phase ?? 'inactive';
  switch (phase) {
    case 'inactive': {
      if (!compare(rule.op, value, rule.threshold)) {
        if (prev !== undefined) return { next: { ...prev, lastSeenAt: at, value } };
        return rule.noData.policy === 'alert' ? { next: inactive(0, undefined, at, value) } : NOTHING;
      }
      const seq = (prev?.seq ?? 0) + 1;
      if (rule.forMs <= 0) return { next: firing(seq, at, at, value), transition: 'firing' };
      return {
        next: {
          phase: 'pending',
          seq,
          activeSince: at,
          firedAt: 0,
          lastActiveAt: at,
          lastSeenAt: at,
          value,
          noData: false,
        },
        transition: 'pending',
      };
    }
    case 'pending': {
      const p = prev!;
      if (!compare(rule.op, value, rule.clear))
        return { next: inactive(p.seq + 1, p, at, value), transition: 'inactive' };
      if (at - p.activeSince >= rule.forMs)
        return { next: firing(p.seq + 1, at, p.activeSince, value), transition: 'firing' };
      return { next: { ...p, lastActiveAt: at, lastSeenAt: at, value } };
    }
    case 'firing': {
      const f = prev!;
      // A no-data alert is judged by the entry condition: it was not firing for a value.
      if (compare(rule.op, value, f.noData ? rule.threshold : rule.clear))
        return { next: { ...f, lastActiveAt: at, lastSeenAt: at, value, noData: false } };
      if (f.noData || at - f.lastActiveAt >= rule.keepFiringForMs)
        return { next: inactive(f.seq + 1, f, at, value), transition: 'resolved' };
      return { next: { ...f, lastSeenAt: at, value } };
    }
    default: {
      const never: never = phase;
      throw new Error(`unknown alert phase ${String(never)}`);
    }
  }
};

/** Ends a series now (its rule was deleted, or no longer covers it): firing resolves, pending goes inactive. */
export const endSeries = (s: SeriesAlert): SeriesStep => {
  switch (s.phase) {
    case 'firing':
      return { next: inactive(s.seq + 1, s, s.lastSeenAt, s.value), transition: 'resolved' };
    case 'pending':
      return { next: inactive(s.seq + 1, s, s.lastSeenAt, s.value), transition: 'inactive' };
    case 'inactive':
      return { next: s };
    default: {
      const never: never = s.phase;
      throw new Error(`unknown alert phase ${String(never)}`);
    }
  }
};

const sameLabels = (a: Rule['labels'], b: Rule['labels']): boolean => {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
};

/** Whether an edit changes the labels (so the fingerprints) of the rule's alerts. */
export const identityChanged = (before: Rule, after: Rule): boolean =>
  before.id !== after.id || before.severity !== after.severity || !sameLabels(before.labels, after.labels);

/**
 * What becomes of a series when its rule is edited from `before` to `after` (see the module doc).
 * `covered`: whether the new rule still selects the series (selector, scope and services).
 */
export const seriesAfterEdit = (before: Rule, after: Rule, s: SeriesAlert, covered: boolean): SeriesStep => {
  if (!covered || identityChanged(before, after)) return endSeries(s);
  if (s.phase === 'pending' && before.op !== after.op) return endSeries(s);
  if (s.phase === 'firing' && s.noData && after.noData.policy !== 'alert') return endSeries(s);
  return { next: s };
};
