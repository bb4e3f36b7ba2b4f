/**
 * Identity and presentation of alerts: series keys, alert labels, fingerprints, annotation templates,
 * and the `AlertEvent` of a transition.
 *
 * - A **series key** names one series of one rule inside a host's state: `metric{tag="v",…}`, tags
 *   sorted by name, so the same sample always gives the same key whatever the order of its tags. It is
 *   also parsable back (`parseSeriesKey`), so an edited rule can re-check which of its series its new
 *   selector still covers without keeping the tags twice.
 * - **Labels** of an alert: the sample's tags, then `host` and `service` (the entity knows which host
 *   it is better than a pushed tag does), then the rule's labels (rule labels win), then `alertname`
 *   (the rule id) and `severity` (reserved: the schema refuses them as rule labels). Empty values are
 *   left out, as Prometheus does.
 * - The **fingerprint** is a hash of the rule id and those labels: 16 hex characters of SHA-256 over
 *   canonical JSON (sorted), the same in every process, so a firing alert and its resolution pair up
 *   at a receiver whichever node evaluated them. With the transition `seq` it is the idempotency key.
 */
import { createHash } from 'node:crypto';
import type { AlertEvent, AlertStatus, Labels, Rule, SeriesAlert, SeriesStep } from './types.ts';

export type Tags = Readonly<Record<string, string>>;

const NEEDS_ESCAPE_NAME = /[\\"=,{}\n]/;
const NEEDS_ESCAPE_VALUE = /[\\"\n]/;
const escapeName = (s: string) => (NEEDS_ESCAPE_NAME.test(s) ? s.replace(/[\\"=,{}\n]/g, escapeChar) : s);
const escapeValue = (s: string) => (NEEDS_ESCAPE_VALUE.test(s) ? s.replace(/[\\"\n]/g, escapeChar) : s);
const escapeChar = (c: string) => (c === '\n' ? '\\n' : `\\${c}`);

/**
 * The key of a series: `metric` alone without tags, else `metric{a="x",b="y"}` (names sorted). Hot path:
 * no sort when the tags already come sorted, no regex replace unless a character needs escaping.
 */
export const seriesKey = (metric: string, tags: Tags): string => {
  let names: string[] | undefined;
  let sorted = true;
  let last = '';
  for (const name in tags) {
    if (names === undefined) names = [];
    if (names.length > 0 && name < last) sorted = false;
    names.push(name);
    last = name;
  }
  if (names === undefined) return metric;
  if (!sorted) names.sort();
  let key = `${metric}{`;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    key += `${i === 0 ? '' : ','}${escapeName(name)}="${escapeValue(tags[name]!)}"`;
  }
  return `${key}}`;
};

/** The metric and tags a series key was made from (the inverse of `seriesKey`). */
export const parseSeriesKey = (key: string): { metric: string; tags: Record<string, string> } => {
  const open = key.indexOf('{');
  if (open < 0) return { metric: key, tags: {} };
  const tags: Record<string, string> = {};
  let i = open + 1;
  const read = (stop: string): string => {
    let out = '';
    while (i < key.length && key[i] !== stop) {
      if (key[i] === '\\') {
        i++;
        out += key[i] === 'n' ? '\n' : (key[i] ?? '');
      } else out += key[i];
      i++;
    }
    i++; // the stop character
    return out;
  };
  while (i < key.length && key[i] !== '}') {
    const name = read('=');
    i++; // the opening quote
    tags[name] = read('"');
    if (key[i] === ',') i++;
  }
  return { metric: key.slice(0, open), tags };
};

/** What a series' labels are made of. `host` is absent for service-scope series. */
export interface SeriesIdentity {
  readonly host?: string;
  readonly service: string;
  readonly tags: Tags;
}

/** The labels of an alert of `rule` on one series, sorted by name. */
export const alertLabels = (rule: Rule, who: SeriesIdentity): Labels => {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries(who.tags)) merged[k] = v;
  if (who.host !== undefined) merged.host = who.host;
  merged.service = who.service;
  for (const [k, v] of Object.entries(rule.labels)) merged[k] = v;
  merged.alertname = rule.id;
  merged.severity = String(rule.severity);
  return canonicalLabels(merged);
};

/** Labels sorted by name, empty values left out (as Prometheus does): what fingerprints are made of. */
export const canonicalLabels = (merged: Readonly<Record<string, string>>): Labels => {
  const out: Record<string, string> = {};
  for (const k of Object.keys(merged).sort()) if (merged[k] !== '') out[k] = merged[k]!;
  return out;
};

/** 16 hex characters: SHA-256 of the rule id and the labels as canonical (sorted) JSON. */
export const fingerprint = (ruleId: string, labels: Labels): string => {
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash('sha256')
    .update(JSON.stringify([ruleId, pairs]))
    .digest('hex')
    .slice(0, 16);
};

/** A number as people read it: up to 4 decimals, or 4 significant digits below 1; `nodata` for null. */
export const formatValue = (v: number | null): string => {
  if (v === null) return 'nodata';
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const rounded = Math.abs(v) >= 1 ? Number(v.toFixed(4)) : Number(v.toPrecision(4));
  return String(rounded);
};

export interface TemplateVars {
  readonly rule: string;
  readonly host?: string;
  readonly service?: string;
  readonly value: number | null;
  readonly threshold: number;
  readonly labels: Labels;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;

/**
 * Fills `{{host}}`, `{{service}}`, `{{value}}`, `{{rule}}`, `{{threshold}}` and `{{labels.x}}`
 * (whitespace inside the braces is fine). A known placeholder without a value gives ''; an unknown one
 * is left as written, so a typo shows in the notification instead of vanishing.
 */
export const renderTemplate = (text: string, vars: TemplateVars): string =>
  text.includes('{{')
    ? text.replace(PLACEHOLDER, (whole, name: string) => {
        switch (name) {
          case 'host':
            return vars.host ?? '';
          case 'service':
            return vars.service ?? '';
          case 'value':
            return formatValue(vars.value);
          case 'rule':
            return vars.rule;
          case 'threshold':
            return formatValue(vars.threshold);
          default:
            return name.startsWith('labels.') ? (vars.labels[name.slice('labels.'.length)] ?? '') : whole;
        }
      })
    : text;

/** When the alert a transition reports began (AlertEvent.startsAt). */
const startOf = (
  status: AlertStatus,
  prev: SeriesAlert | undefined,
  next: SeriesAlert | undefined,
): number => {
  switch (status) {
    case 'pending':
      return next?.activeSince ?? 0;
    case 'firing':
      return next?.firedAt ?? 0;
    case 'resolved':
      return prev?.firedAt ?? 0;
    case 'inactive':
      return prev?.activeSince ?? 0;
    default: {
      const never: never = status;
      throw new Error(`unknown alert status ${String(never)}`);
    }
  }
};

export interface EventContext {
  /** When the transition happened. */
  readonly at: number;
  readonly host?: string;
  readonly service?: string;
}

/**
 * The event of a step (undefined when the step has no transition). `prev` is the series before the
 * step: a resolution reports when the alert fired, which only the firing state knows.
 */
export const alertEvent = (
  rule: Rule,
  labels: Labels,
  prev: SeriesAlert | undefined,
  step: SeriesStep,
  ctx: EventContext,
): AlertEvent | undefined => {
  const status = step.transition;
  if (status === undefined) return undefined;
  const value = step.next?.value ?? null;
  const vars: TemplateVars = {
    rule: rule.id,
    value,
    threshold: rule.threshold,
    labels,
    ...(ctx.host !== undefined ? { host: ctx.host } : {}),
    ...(ctx.service !== undefined ? { service: ctx.service } : {}),
  };
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(rule.annotations)) annotations[k] = renderTemplate(v, vars);
  if (step.next?.noData || (status === 'resolved' && prev?.noData)) annotations.nodata = 'true';
  return {
    type: '@argus.alert',
    fingerprint: fingerprint(rule.id, labels),
    seq: step.next?.seq ?? (prev?.seq ?? 0) + 1,
    rule: rule.id,
    status,
    severity: rule.severity,
    labels,
    annotations,
    value,
    startsAt: startOf(status, prev, step.next),
    ...(status === 'resolved' ? { endsAt: ctx.at } : {}),
    at: ctx.at,
    ...(ctx.host !== undefined ? { host: ctx.host } : {}),
    ...(ctx.service !== undefined ? { service: ctx.service } : {}),
  };
};
