/**
 * The host part of the rules: evaluated inside the host entity, in the delivery that brought the
 * samples, against the host's own slice of alert state (HostRuleState, in the host's snapshot). Pure:
 * (index, state, input, now) → (state, events, partials); the host entity emits the events and sends
 * the partials to `rule/<id>` in the same checkpoint.
 *
 * - Host-scope rules: every sample a rule selects is one series (key: metric + tags, fingerprint.ts),
 *   stepped through machine.ts.
 * - Service-scope rules: the host contributes its partial aggregate (sum, count, min, max of its
 *   selected samples at one timestamp); service.ts combines the hosts of a service.
 * - No record (a failed poll, a tick) — or a record without samples — is a no-data check of every
 *   series of this host (rules with `no_data: { policy: alert }`), and the moment inactive series not
 *   seen for `FORGET_INACTIVE_AFTER_MS` are forgotten.
 * - The host and service the series are labelled with are remembered in the state (`@host`,
 *   host-state.ts), so a check without a record labels its alerts the same. A record naming another
 *   service (the inventory moved the host) ends every alert under the old labels first: the labels,
 *   so the fingerprints, change.
 * - When the series of no-data rules were last seen is kept once per host (`@seen`), not per rule: a
 *   never-transitioned series of a no-data rule has no entry of its own until something happens.
 * - Every call first reconciles the state with the index: the series of a deleted rule end (firing →
 *   'resolved', pending → 'inactive'), an edited rule's series follow machine.ts's edit policy
 *   (`seriesAfterEdit`), judged with the version they were evaluated with (`RuleIndex.versions`). A
 *   version no longer known (the process restarted between an edit and this host's next evaluation)
 *   is taken to be the current rule; the series of a deleted rule whose last version is unknown are
 *   dropped without events (nothing left to say which labels they had).
 *
 * Speed: a sample touches only the rules of its metric that apply to the host's service (the index
 * keeps that list per service); a series key is built only for series that have state or change; the
 * state is copied on write, once per touched rule per call; nothing is serialized in the hot path.
 * Every object a sample puts in the state lives until the host's next record — long enough for V8 to
 * promote it — so the hot path avoids keeping new objects per sample wherever it can (`@seen`).
 */

export { HOST_IDENTITY, SEEN } from './host-state.ts';

import { alertEvent, alertLabels, parseSeriesKey, seriesKey, type Tags } from './fingerprint.ts';
import { HOST_IDENTITY, isEmpty, own, SEEN, seenMark, Working } from './host-state.ts';
import { compare, endSeries, seriesAfterEdit, stepSeries } from './machine.ts';
import { matchesSelector, matchesTags } from './selector.ts';
import type { AlertEvent, HostRuleState, Rule, SeriesAlert, SeriesStep, ServicePartial } from './types.ts';

/** Inactive series (kept for their seq) are forgotten once not seen for this long. */
export const FORGET_INACTIVE_AFTER_MS = 7 * 86_400_000;
/** Retired (edited or deleted) rule versions an index keeps, oldest dropped first. */
export const MAX_RETIRED_VERSIONS = 10_000;

export interface RuleIndex {
  readonly rules: readonly Rule[];
  readonly byId: ReadonlyMap<string, Rule>;
  /** Every version known: the current ones and retired ones (what older state was evaluated with). */
  readonly versions: ReadonlyMap<string, Rule>;
  /** Host-scope rules that alert on no-data. */
  readonly noDataRules: readonly Rule[];
  /** metric → the rules of that metric that apply to hosts of `service` (cached per service). */
  forService(service: string): ReadonlyMap<string, readonly CompiledRule[]>;
}

/**
 * A rule as the hot path reads it: the fields one sample needs, flat, in one object shape for every
 * rule (Rule objects come in several shapes, and `rule.noData.policy` is two loads).
 */
export class CompiledRule {
  readonly id: string;
  readonly version: string;
  readonly selector: Rule['selector'];
  readonly service: boolean;
  readonly watchesNoData: boolean;
  readonly op: Rule['op'];
  readonly threshold: number;
  constructor(readonly rule: Rule) {
    this.id = rule.id;
    this.version = rule.version;
    this.selector = rule.selector;
    this.service = rule.scope === 'service';
    this.watchesNoData = rule.noData.policy === 'alert';
    this.op = rule.op;
    this.threshold = rule.threshold;
  }
}

const appliesTo = (rule: Rule, service: string) =>
  rule.services.length === 0 || rule.services.includes(service);

/** Indexes rules by metric. Pass the previous index to keep the versions it knew (edit policy). */
export const buildRuleIndex = (rules: readonly Rule[], previous?: RuleIndex): RuleIndex => {
  const byId = new Map(rules.map((r) => [r.id, r]));
  const versions = new Map<string, Rule>();
  const current = new Set(rules.map((r) => r.version));
  const retired = previous ? [...previous.versions.values()].filter((r) => !current.has(r.version)) : [];
  for (const r of retired.slice(Math.max(0, retired.length - MAX_RETIRED_VERSIONS)))
    versions.set(r.version, r);
  for (const r of rules) versions.set(r.version, r);
  const compiled = rules.map((r) => new CompiledRule(r));
  const cache = new Map<string, ReadonlyMap<string, readonly CompiledRule[]>>();
  return {
    rules,
    byId,
    versions,
    noDataRules: rules.filter((r) => r.scope === 'host' && r.noData.policy === 'alert'),
    forService(service) {
      let m = cache.get(service);
      if (m === undefined) {
        const built = new Map<string, CompiledRule[]>();
        for (const c of compiled) {
          if (!appliesTo(c.rule, service)) continue;
          const list = built.get(c.selector.metric);
          if (list) list.push(c);
          else built.set(c.selector.metric, [c]);
        }
        m = built;
        cache.set(service, m);
      }
      return m;
    },
  };
};

export const EMPTY_RULE_INDEX: RuleIndex = buildRuleIndex([]);

/** One sample as a MetricsRecord carries it (string values are ignored). */
export interface HostSample {
  readonly metric: string;
  readonly tags: Tags;
  readonly ts: number;
  readonly value: number | string;
}

/** What the host evaluates: a record of samples (a MetricsRecord fits); without samples, a no-data check. */
export interface HostInput {
  readonly host: string;
  readonly service: string;
  /** The host's own labels (the inventory's): part of every alert label set, below the sample tags. */
  readonly labels?: Tags;
  readonly samples?: readonly HostSample[];
}

export interface HostRuleResult {
  readonly state: HostRuleState | undefined;
  readonly events: AlertEvent[];
  readonly partials: { readonly rule: string; readonly partial: ServicePartial }[];
}

interface Identity {
  readonly host: string;
  readonly service: string;
  readonly labels: Tags;
}

interface Emit {
  readonly input: Identity;
  readonly events: AlertEvent[];
}

const emit = (
  out: Emit,
  rule: Rule,
  tags: Tags,
  prev: SeriesAlert | undefined,
  step: SeriesStep,
  at: number,
): void => {
  if (step.transition === undefined) return;
  const { host, service, labels: own } = out.input;
  const merged = isEmpty(own) ? tags : { ...own, ...tags };
  const labels = alertLabels(rule, { host, service, tags: merged });
  const event = alertEvent(rule, labels, prev, step, { at, host, service });
  if (event) out.events.push(event);
};

/** Deleted and edited rules: see the module doc. */
const reconcile = (index: RuleIndex, w: Working, out: Emit, now: number): void => {
  for (const id of w.ruleIds()) {
    const seriesMap = w.series(id);
    const version = w.version(id);
    const current = index.byId.get(id);
    if (seriesMap === undefined || version === undefined || current?.version === version) continue;
    const before = index.versions.get(version) ?? current;
    if (before === undefined) {
      w.drop(id);
      continue;
    }
    const hostRule =
      current !== undefined && current.scope === 'host' && appliesTo(current, out.input.service);
    for (const key of Object.keys(seriesMap)) {
      const s = seriesMap[key]!;
      const { metric, tags } = parseSeriesKey(key);
      const covered = hostRule && matchesSelector(current.selector, metric, tags);
      const step = current ? seriesAfterEdit(before, current, s, covered) : endSeries(s);
      emit(out, before, tags, s, step, now);
      if (hostRule) w.put(id, current.version, key, step.next);
    }
    if (!hostRule) w.drop(id);
  }
};

interface Acc {
  ts: number;
  sum: number;
  count: number;
  min: number;
  max: number;
}

const evaluateSamples = (
  index: RuleIndex,
  w: Working,
  out: Emit,
  samples: readonly HostSample[],
  partials: HostRuleResult['partials'],
): void => {
  const { host, service } = out.input;
  const byMetric = index.forService(service);
  let accs: Map<string, Acc> | undefined;
  const flush = (ruleId: string, a: Acc) =>
    partials.push({
      rule: ruleId,
      partial: { host, service, ts: a.ts, sum: a.sum, count: a.count, min: a.min, max: a.max },
    });
  for (let i = 0; i < samples.length; i++) {
    const sample = samples[i]!;
    const value = sample.value;
    if (typeof value !== 'number' || Number.isNaN(value)) continue;
    const rules = byMetric.get(sample.metric);
    if (rules === undefined) continue;
    let key: string | undefined;
    for (let j = 0; j < rules.length; j++) {
      const c = rules[j]!;
      if (!matchesTags(c.selector, sample.tags)) continue;
      if (c.service) {
        accs ??= new Map();
        const a = accs.get(c.id);
        if (a !== undefined && a.ts === sample.ts) {
          a.sum += value;
          a.count += 1;
          if (value < a.min) a.min = value;
          if (value > a.max) a.max = value;
        } else {
          if (a !== undefined) flush(c.id, a);
          accs.set(c.id, { ts: sample.ts, sum: value, count: 1, min: value, max: value });
        }
        continue;
      }
      const seriesMap = w.series(c.id);
      let prev: SeriesAlert | undefined;
      if (seriesMap !== undefined) {
        key ??= seriesKey(sample.metric, sample.tags);
        prev = own(seriesMap, key);
      }
      // The common case, decided without a call: nothing known, nothing to track, condition false
      // (what stepSeries would answer with `{ next: undefined }`).
      if (prev === undefined && !c.watchesNoData && !compare(c.op, value, c.threshold)) continue;
      const step = stepSeries(c.rule, prev, { at: sample.ts, value });
      let next = step.next;
      if (c.watchesNoData) {
        key ??= seriesKey(sample.metric, sample.tags);
        w.markSeen(key, sample.ts);
        if (untouched(next)) next = undefined;
      }
      if (next !== prev) {
        key ??= seriesKey(sample.metric, sample.tags);
        w.put(c.id, c.version, key, next);
      }
      if (step.transition !== undefined) emit(out, c.rule, sample.tags, prev, step, sample.ts);
    }
  }
  if (accs) for (const [id, a] of accs) flush(id, a);
};

/** A series that never had a transition: `@seen` stands for it. */
const untouched = (s: SeriesAlert | undefined): boolean =>
  s !== undefined && s.phase === 'inactive' && s.seq === 0;

const checkNoData = (index: RuleIndex, w: Working, out: Emit, now: number): void => {
  const seenKeys = Object.keys(w.series(SEEN) ?? {}).map((key) => ({ key, ...parseSeriesKey(key) }));
  for (const rule of index.noDataRules) {
    if (!appliesTo(rule, out.input.service)) continue;
    const seriesMap = w.series(rule.id);
    const keys = new Set(Object.keys(seriesMap ?? {}));
    for (const s of seenKeys) if (matchesSelector(rule.selector, s.metric, s.tags)) keys.add(s.key);
    for (const key of keys) {
      const stored = own(seriesMap, key);
      const seenAt = w.seenAt(key);
      const prev =
        stored === undefined
          ? seenAt === undefined
            ? undefined
            : seenMark(seenAt)
          : seenAt !== undefined && seenAt > stored.lastSeenAt
            ? { ...stored, lastSeenAt: seenAt }
            : stored;
      const step = stepSeries(rule, prev, { at: now, value: null });
      if (step.next !== prev && !untouched(step.next)) w.put(rule.id, rule.version, key, step.next);
      if (step.transition !== undefined) emit(out, rule, parseSeriesKey(key).tags, prev, step, now);
    }
  }
};

/** Forgets inactive series not seen for the horizon (longer for a rule still waiting on no-data). */
const forgetInactive = (index: RuleIndex, w: Working, now: number): void => {
  const waitOf = (rule: Rule) =>
    rule.noData.policy === 'alert' ? (rule.noData.after + 1) * rule.intervalMs : 0;
  for (const id of w.ruleIds()) {
    const rule = index.byId.get(id);
    const seriesMap = w.series(id);
    if (rule === undefined || seriesMap === undefined) continue;
    const horizon = Math.max(FORGET_INACTIVE_AFTER_MS, waitOf(rule));
    for (const key of Object.keys(seriesMap)) {
      const s = seriesMap[key]!;
      if (s.phase === 'inactive' && now - s.lastSeenAt >= horizon) w.put(id, rule.version, key, undefined);
    }
  }
  const seen = w.series(SEEN);
  if (seen === undefined) return;
  const horizon = Math.max(FORGET_INACTIVE_AFTER_MS, ...index.noDataRules.map(waitOf));
  for (const key of Object.keys(seen))
    if (now - seen[key]!.lastSeenAt >= horizon) w.put(SEEN, '', key, undefined);
};

const identityOf = (encoded: string | undefined): Identity | undefined => {
  if (encoded === undefined) return undefined;
  const [host, service, labels] = JSON.parse(encoded) as [string, string, [string, string][] | undefined];
  return { host, service, labels: Object.fromEntries(labels ?? []) };
};

/** A record naming another host or service than the series were labelled with: end them all. */
const endAllFor = (index: RuleIndex, w: Working, who: Identity, now: number): AlertEvent[] => {
  const out: Emit = { input: who, events: [] };
  for (const id of w.ruleIds()) {
    const seriesMap = w.series(id)!;
    const rule = index.versions.get(w.version(id) ?? '') ?? index.byId.get(id);
    if (rule !== undefined)
      for (const key of Object.keys(seriesMap)) {
        const s = seriesMap[key]!;
        emit(out, rule, parseSeriesKey(key).tags, s, endSeries(s), now);
      }
    w.drop(id);
  }
  return out.events;
};

/**
 * Evaluates one record of a host against the rules in force; no record (or one without samples) is a
 * no-data check. `now` times what the samples do not: edits, deletions, no-data checks.
 */
export const evaluateHostRules = (
  index: RuleIndex,
  state: HostRuleState | undefined,
  record: HostInput | undefined,
  now: number,
): HostRuleResult => {
  const w = new Working(state);
  const partials: HostRuleResult['partials'] = [];
  const stored = w.version(HOST_IDENTITY);
  const events: AlertEvent[] = [];
  let who: Identity;
  if (record !== undefined) {
    const labels = record.labels ?? {};
    who = { host: record.host, service: record.service, labels };
    // Labels change the alerts' label sets: a host relabelled ends its alerts like one moved to another service.
    const identity = isEmpty(labels)
      ? JSON.stringify([record.host, record.service])
      : JSON.stringify([
          record.host,
          record.service,
          Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)),
        ]);
    if (stored !== undefined && stored !== identity)
      events.push(...endAllFor(index, w, identityOf(stored)!, now));
    w.setIdentity(identity);
  } else {
    const known = identityOf(stored);
    if (known === undefined) return { state, events, partials };
    who = known;
  }
  const out: Emit = { input: who, events };
  reconcile(index, w, out, now);
  if (record?.samples !== undefined && record.samples.length > 0)
    evaluateSamples(index, w, out, record.samples, partials);
  else {
    checkNoData(index, w, out, now);
    forgetInactive(index, w, now);
  }
  return { state: w.result(), events, partials };
};

/**
 * Ends every alert of a host (the host left the inventory): firing series resolve, pending ones go
 * inactive; the host's rule state is gone after (undefined). Pass the index in force, not an empty one:
 * the rules (current or retired versions) give the labels the alerts fired with.
 */
export const endHostRules = (
  index: RuleIndex,
  state: HostRuleState | undefined,
  now: number,
): AlertEvent[] => {
  const w = new Working(state);
  const who = identityOf(w.version(HOST_IDENTITY));
  return who === undefined ? [] : endAllFor(index, w, who, now);
};
