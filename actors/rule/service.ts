/**
 * The service level of a `service`-scope rule, as the rule entity `rule/<id>` keeps it: per service,
 * the latest partial of every host (evaluate.ts sends them) and the alert state of the service series.
 * Pure: (rule, state, partial | time) → (state, events).
 *
 * - `combine`: the rule's aggregate over the hosts whose partial is fresh — no older than 2 × the
 *   rule's interval at `now` — so a host that stopped reporting ages out instead of freezing the value.
 *   avg = Σsum / Σcount, sum, min, max, count = Σcount (the number of series, as PromQL's `count`).
 *   null when no host is fresh.
 * - `applyPartial` stores the partial and steps the service series with the new aggregate at the
 *   partial's time (never before the series' last evaluation: hosts report a little out of order).
 *   Each step sees the latest value of every fresh host — the value PromQL's `avg(…)` would give at
 *   that instant — except in the first interval of a service (`since`), while not every host has
 *   reported yet: one early host is not the service, so the series is not stepped before then.
 * - `checkServices` (every interval) ages hosts out and, for a service with no fresh host left, runs the
 *   no-data check (machine.ts: fires after `no_data.after` intervals if the rule alerts on no-data).
 * - Edits follow machine.ts's policy (`seriesAfterEdit`); `endServices` ends every alert of a deleted
 *   rule. Labels of a service series: alertname, severity, service and the rule labels — no host.
 */
import { alertEvent, alertLabels } from './fingerprint.ts';
import { seenMark } from './host-state.ts';
import { endSeries, seriesAfterEdit, stepSeries } from './machine.ts';
import type { AlertEvent, Rule, SeriesAlert, ServicePartial } from './types.ts';

export interface ServiceState {
  /** The latest partial of each host of the service. */
  readonly hosts: Readonly<Record<string, ServicePartial>>;
  readonly series?: SeriesAlert;
  /** The first partial's time: the series is stepped from one interval after it (warm-up). */
  readonly since?: number;
}

export interface ServiceRuleState {
  /** The rule version the series were evaluated with. */
  readonly version: string;
  readonly services: Readonly<Record<string, ServiceState>>;
}

export interface ServiceResult {
  readonly state: ServiceRuleState;
  readonly events: AlertEvent[];
}

const fresh = (rule: Rule, p: ServicePartial, now: number) =>
  now - p.ts <= 2 * rule.intervalMs && p.count > 0;

/** The aggregate over the fresh hosts' partials at `now`; null when none is fresh. */
export const combine = (
  rule: Rule,
  partials: Readonly<Record<string, ServicePartial>> | Iterable<ServicePartial>,
  now: number,
): number | null => {
  const list: Iterable<ServicePartial> =
    Symbol.iterator in partials ? (partials as Iterable<ServicePartial>) : Object.values(partials);
  let sum = 0;
  let count = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const p of list) {
    if (!fresh(rule, p, now)) continue;
    sum += p.sum;
    count += p.count;
    if (p.min < min) min = p.min;
    if (p.max > max) max = p.max;
  }
  if (count === 0) return null;
  const aggregate = rule.aggregate ?? 'avg';
  switch (aggregate) {
    case 'avg':
      return sum / count;
    case 'sum':
      return sum;
    case 'min':
      return min;
    case 'max':
      return max;
    case 'count':
      return count;
    default: {
      const never: never = aggregate;
      throw new Error(`unknown aggregate ${String(never)}`);
    }
  }
};

const appliesTo = (rule: Rule, service: string) =>
  rule.scope === 'service' && (rule.services.length === 0 || rule.services.includes(service));

const labelsOf = (rule: Rule, service: string) => alertLabels(rule, { service, tags: {} });

const withSeries = (s: ServiceState, series: SeriesAlert | undefined): ServiceState => ({
  hosts: s.hosts,
  ...(series !== undefined ? { series } : {}),
  ...(s.since !== undefined ? { since: s.since } : {}),
});

/** What no-data counts from for a service whose series was never stepped: when its hosts last reported. */
const lastSeen = (s: ServiceState): SeriesAlert | undefined => {
  let at = Number.NEGATIVE_INFINITY;
  for (const p of Object.values(s.hosts)) if (p.ts > at) at = p.ts;
  return at === Number.NEGATIVE_INFINITY ? undefined : seenMark(at);
};

/** Steps one service series and records its event. */
const step = (
  rule: Rule,
  service: string,
  s: ServiceState,
  value: number | null,
  at: number,
  events: AlertEvent[],
): ServiceState => {
  const result = stepSeries(rule, s.series, { at, value });
  const event = alertEvent(rule, labelsOf(rule, service), s.series, result, { at, service });
  if (event) events.push(event);
  return result.next === s.series ? s : withSeries(s, result.next);
};

/**
 * Brings a state evaluated with another version to `rule` (machine.ts's edit policy). `before` is the
 * version the state was evaluated with, when the caller still knows it; else the rule itself is assumed.
 */
export const reconcileServices = (
  rule: Rule,
  state: ServiceRuleState | undefined,
  now: number,
  before?: Rule,
): ServiceResult => {
  if (state === undefined) return { state: { version: rule.version, services: {} }, events: [] };
  if (state.version === rule.version) return { state, events: [] };
  const old = before ?? rule;
  const events: AlertEvent[] = [];
  const services: Record<string, ServiceState> = {};
  for (const [service, s] of Object.entries(state.services)) {
    if (s.series === undefined) {
      services[service] = s;
      continue;
    }
    const result = seriesAfterEdit(old, rule, s.series, appliesTo(rule, service));
    const event = alertEvent(old, labelsOf(old, service), s.series, result, { at: now, service });
    if (event) events.push(event);
    services[service] = withSeries(s, result.next);
  }
  return { state: { version: rule.version, services }, events };
};

/** A host's partial arrived: store it (unless older than that host's last) and step the service series. */
export const applyPartial = (
  rule: Rule,
  state: ServiceRuleState | undefined,
  partial: ServicePartial,
  before?: Rule,
): ServiceResult => {
  const base = reconcileServices(rule, state, partial.ts, before);
  if (!appliesTo(rule, partial.service)) return base;
  const current = base.state.services[partial.service] ?? { hosts: {} };
  const last = current.hosts[partial.host];
  if (last !== undefined && last.ts > partial.ts) return base;
  const hosts = { ...current.hosts, [partial.host]: partial };
  const since = current.since ?? partial.ts;
  const at = Math.max(partial.ts, current.series?.lastSeenAt ?? 0);
  const events = [...base.events];
  const stored: ServiceState = { ...current, hosts, since };
  const next =
    at - since < rule.intervalMs
      ? stored
      : step(rule, partial.service, stored, combine(rule, hosts, at), at, events);
  return {
    state: { version: rule.version, services: { ...base.state.services, [partial.service]: next } },
    events,
  };
};

/**
 * The interval check: hosts older than 2 intervals leave the aggregate (and the state); a service with
 * no fresh host is checked for no-data. A service with neither hosts nor series is forgotten.
 */
export const checkServices = (
  rule: Rule,
  state: ServiceRuleState | undefined,
  now: number,
  before?: Rule,
): ServiceResult => {
  const base = reconcileServices(rule, state, now, before);
  const events = [...base.events];
  const services: Record<string, ServiceState> = {};
  for (const [service, s] of Object.entries(base.state.services)) {
    const hosts: Record<string, ServicePartial> = {};
    for (const [host, p] of Object.entries(s.hosts)) if (fresh(rule, p, now)) hosts[host] = p;
    let next: ServiceState = withSeries({ ...s, hosts }, s.series);
    // Fresh hosts already stepped the series with their partials; only missing data is news here.
    if (Object.keys(hosts).length === 0 && rule.noData.policy === 'alert') {
      const prev = s.series ?? lastSeen(s);
      next = step(rule, service, withSeries(next, prev), null, now, events);
    }
    if (next.series !== undefined || Object.keys(next.hosts).length > 0) services[service] = next;
  }
  return { state: { version: rule.version, services }, events };
};

/** A deleted rule: every firing service alert resolves, pending ones go inactive. */
export const endServices = (rule: Rule, state: ServiceRuleState | undefined, now: number): AlertEvent[] => {
  const events: AlertEvent[] = [];
  for (const [service, s] of Object.entries(state?.services ?? {})) {
    if (s.series === undefined) continue;
    const event = alertEvent(rule, labelsOf(rule, service), s.series, endSeries(s.series), {
      at: now,
      service,
    });
    if (event) events.push(event);
  }
  return events;
};
