/**
 * Log rule results as alerts: one series per rule and group (the GROUP BY values). A group fires at
 * the end of the first closed window it passes HAVING in, and resolves at the end of the first closed
 * window it does not pass in (no record at all counts as not passing). The events are the metric
 * alerts' (`AlertEvent`, actors/rule/types.ts): same fingerprint scheme (rule id + labels), per-series
 * transition `seq`, so routing, grouping, receivers, silences and the firing index treat log alerts and
 * metric alerts alike. Labels: alertname (rule id), severity, stream, the group fields, the rule labels.
 *
 * Pure: (alerts, closed windows) → (alerts, events). A resolved series is kept (inactive, with its seq)
 * so its next alert goes on counting; inactive series unseen for a day are forgotten.
 */
import { canonicalLabels, fingerprint, renderTemplate } from '../rule/fingerprint.ts';
import type { AlertEvent, AlertStatus, Labels, Severity } from '../rule/types.ts';
import type { LogRulePlan } from './sql.ts';
import type { ClosedGroup } from './windows.ts';

export interface LogRuleMeta {
  readonly id: string;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Labels;
}

export interface LogAlert {
  readonly labels: Labels;
  readonly fingerprint: string;
  readonly seq: number;
  readonly firing: boolean;
  /** When it fired (the end of the window it first passed in); 0 while inactive. */
  readonly firedAt: number;
  /** The end of the last window it passed in. */
  readonly lastPassed: number;
  readonly value: number | null;
  readonly host?: string;
}

/** Group key (JSON of the group values in GROUP BY order) → series. */
export type LogAlerts = Record<string, LogAlert>;

/** Inactive series are forgotten after this long without passing. */
export const FORGET_AFTER_MS = 86_400_000;
/** Window ends stepped through at most in one tick when no record opened them (a long outage). */
const MAX_EMPTY_ENDS = 1_000;

export const groupKey = (plan: LogRulePlan, group: Readonly<Record<string, unknown>>): string =>
  JSON.stringify(plan.groupBy.map((f) => (group[f] === undefined ? null : group[f])));

export const logAlertLabels = (
  meta: LogRuleMeta,
  stream: string,
  group: Readonly<Record<string, unknown>>,
): Labels => {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries(group)) merged[k] = v === null || v === undefined ? '' : String(v);
  merged.stream = stream;
  for (const [k, v] of Object.entries(meta.labels)) merged[k] = v;
  merged.alertname = meta.id;
  merged.severity = String(meta.severity);
  return canonicalLabels(merged);
};

const GROUP_PLACEHOLDER = /\{\{\s*(stream|group\.[A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;

const annotate = (
  meta: LogRuleMeta,
  alert: LogAlert,
  stream: string,
  group: Readonly<Record<string, unknown>>,
) => {
  const out: Record<string, string> = {};
  for (const [k, text] of Object.entries(meta.annotations)) {
    const local = text.replace(GROUP_PLACEHOLDER, (_w, name: string) => {
      if (name === 'stream') return stream;
      const v = group[name.slice('group.'.length)];
      return v === null || v === undefined ? '' : String(v);
    });
    out[k] = renderTemplate(local, {
      rule: meta.id,
      value: alert.value,
      threshold: 0,
      labels: alert.labels,
      ...(alert.host !== undefined ? { host: alert.host } : {}),
    });
  }
  return out;
};

const eventOf = (
  meta: LogRuleMeta,
  alert: LogAlert,
  status: AlertStatus,
  at: number,
  stream: string,
  group: Readonly<Record<string, unknown>>,
  startsAt: number,
): AlertEvent => ({
  type: '@argus.alert',
  fingerprint: alert.fingerprint,
  seq: alert.seq,
  rule: meta.id,
  status,
  severity: meta.severity,
  labels: alert.labels,
  annotations: annotate(meta, alert, stream, group),
  value: alert.value,
  startsAt,
  ...(status === 'resolved' ? { endsAt: at } : {}),
  at,
  ...(alert.host !== undefined ? { host: alert.host } : {}),
});

const groupOf = (plan: LogRulePlan, key: string): Record<string, unknown> => {
  const values = JSON.parse(key) as unknown[];
  const group: Record<string, unknown> = {};
  plan.groupBy.forEach((f, i) => {
    group[f] = values[i] ?? null;
  });
  return group;
};

export interface AlertStep {
  readonly alerts: LogAlerts;
  readonly events: AlertEvent[];
  /** The last window end stepped through (null: none). */
  readonly lastEnd: number | null;
}

/**
 * Steps the series through the windows closed now (`groups`, every group with `passed`), in window end
 * order, and through the ends of windows no record opened (from `lastEnd` to `watermark`, while a series
 * is firing), so a group that went quiet resolves.
 */
export const stepAlerts = (
  previous: LogAlerts,
  meta: LogRuleMeta,
  plan: LogRulePlan,
  stream: string,
  groups: readonly ClosedGroup[],
  lastEnd: number | null,
  watermark: number,
): AlertStep => {
  const alerts: LogAlerts = { ...previous };
  const events: AlertEvent[] = [];
  const byEnd = new Map<number, ClosedGroup[]>();
  for (const g of groups) {
    if (!g.passed) continue;
    const list = byEnd.get(g.windowEnd) ?? [];
    list.push(g);
    byEnd.set(g.windowEnd, list);
  }
  const ends = new Set<number>(groups.map((g) => g.windowEnd));
  if (lastEnd !== null && Object.values(alerts).some((a) => a.firing)) {
    let n = 0;
    for (
      let e = lastEnd + plan.window.slideMs;
      e <= watermark && n < MAX_EMPTY_ENDS;
      e += plan.window.slideMs
    ) {
      ends.add(e);
      n++;
    }
  }
  let last = lastEnd;
  for (const end of [...ends].sort((a, b) => a - b)) {
    if (last !== null && end <= last) continue;
    const passing = new Set<string>();
    for (const g of byEnd.get(end) ?? []) {
      const key = groupKey(plan, g.group);
      passing.add(key);
      const before = alerts[key];
      const first = plan.outputs.find((o) => o.source === 'aggregate');
      const value = first && first.source === 'aggregate' ? (g.values[first.alias] ?? null) : null;
      const labels = before?.labels ?? logAlertLabels(meta, stream, g.group);
      const host = typeof g.group.host === 'string' ? g.group.host : undefined;
      if (before?.firing) {
        alerts[key] = { ...before, value, lastPassed: end };
        continue;
      }
      const alert: LogAlert = {
        labels,
        fingerprint: before?.fingerprint ?? fingerprint(meta.id, labels),
        seq: (before?.seq ?? 0) + 1,
        firing: true,
        firedAt: end,
        lastPassed: end,
        value,
        ...(host !== undefined ? { host } : {}),
      };
      alerts[key] = alert;
      events.push(eventOf(meta, alert, 'firing', end, stream, g.group, end));
    }
    for (const [key, a] of Object.entries(alerts)) {
      if (!a.firing || passing.has(key)) continue;
      const resolved: LogAlert = { ...a, seq: a.seq + 1, firing: false };
      alerts[key] = resolved;
      events.push(eventOf(meta, resolved, 'resolved', end, stream, groupOf(plan, key), a.firedAt));
    }
    last = end;
  }
  for (const [key, a] of Object.entries(alerts))
    if (!a.firing && last !== null && last - a.lastPassed > FORGET_AFTER_MS) delete alerts[key];
  return { alerts, events, lastEnd: last };
};

/** A deleted rule: every firing series resolves at `at`. */
export const endAlerts = (
  alerts: LogAlerts,
  meta: LogRuleMeta,
  plan: LogRulePlan,
  stream: string,
  at: number,
): AlertEvent[] => {
  const events: AlertEvent[] = [];
  for (const [key, a] of Object.entries(alerts)) {
    if (!a.firing) continue;
    const resolved: LogAlert = { ...a, seq: a.seq + 1, firing: false };
    events.push(eventOf(meta, resolved, 'resolved', at, stream, groupOf(plan, key), a.firedAt));
  }
  return events;
};
