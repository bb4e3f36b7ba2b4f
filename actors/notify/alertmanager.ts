/**
 * The generic webhook body: exactly Alertmanager's webhook message, version 4
 * (notify/webhook/webhook.go `Message` = template.go `Data` + version, groupKey, truncatedAlerts), so
 * an existing Alertmanager receiver works unchanged. What "exactly" covers, after the Go source:
 *
 * - fields and their order as Go's encoder writes them (the embedded `Data` first): receiver, status,
 *   alerts, groupLabels, commonLabels, commonAnnotations, externalURL, version, groupKey,
 *   truncatedAlerts; per alert: status, labels, annotations, startsAt, endsAt, generatorURL,
 *   fingerprint. Label maps with sorted keys (Go sorts map keys).
 * - `receiver` is the receiver name through `regexp.QuoteMeta` (so `web.hook` is sent as `web\.hook`).
 * - `max_alerts` truncates the sorted alerts (the rest is counted in `truncatedAlerts`); status,
 *   commonLabels and commonAnnotations are computed over the alerts sent, like Alertmanager.
 * - alerts sorted like `types.AlertSlice`: by the `job` label, then `instance`, then label sets
 *   (fewer labels first, then by sorted names and values).
 * - times as Go's `time.Time` marshals them (RFC 3339 with trimmed fractional seconds, UTC here);
 *   a firing alert's endsAt is the zero time `0001-01-01T00:00:00Z`, as Alertmanager hides an end
 *   that has not been reached. The group's status is `firing` if any alert fires.
 * - text as Go's `json.Encoder` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped as \u00XX, and a
 *   trailing newline.
 */
import type { AlertEvent, Labels } from '../rule/types.ts';

/** The exact key sets of a v4 message and of each of its alerts (the webhook test server checks them). */
export const ALERTMANAGER_V4_FIELDS = {
  message: [
    'receiver',
    'status',
    'alerts',
    'groupLabels',
    'commonLabels',
    'commonAnnotations',
    'externalURL',
    'version',
    'groupKey',
    'truncatedAlerts',
  ],
  alert: ['status', 'labels', 'annotations', 'startsAt', 'endsAt', 'generatorURL', 'fingerprint'],
} as const;

/** Go's zero `time.Time`, which Alertmanager sends as the endsAt of firing alerts. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

export type AlertmanagerStatus = 'firing' | 'resolved';

export interface AlertmanagerAlert {
  readonly status: AlertmanagerStatus;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly generatorURL: string;
  readonly fingerprint: string;
}

export interface AlertmanagerMessage {
  readonly receiver: string;
  readonly status: AlertmanagerStatus;
  readonly alerts: readonly AlertmanagerAlert[];
  readonly groupLabels: Labels;
  readonly commonLabels: Labels;
  readonly commonAnnotations: Labels;
  readonly externalURL: string;
  readonly version: '4';
  readonly groupKey: string;
  readonly truncatedAlerts: number;
}

/** What a notification body is built from (webhook and chat alike). */
export interface GroupNotice {
  /** The receiver id. */
  readonly receiver: string;
  readonly groupKey: string;
  readonly groupLabels: Labels;
  /** The alerts to send: firing or resolved events (any order: they are sorted here). */
  readonly alerts: readonly AlertEvent[];
  /** At most this many alerts (0 = all). */
  readonly maxAlerts: number;
  /** Backlink sent as externalURL (Argus' inspector); '' when not configured. */
  readonly externalURL?: string;
  /** The alert's generatorURL; '' by default. */
  readonly generatorURL?: (alert: AlertEvent) => string;
}

/** Go's `time.Time` JSON form (RFC3339Nano) of epoch ms, in UTC: trailing fractional zeros dropped. */
export const rfc3339 = (ms: number): string =>
  new Date(ms).toISOString().replace(/\.(\d*?)0*Z$/, (_, digits: string) => (digits ? `.${digits}Z` : 'Z'));

/** Go's `regexp.QuoteMeta`. */
export const quoteMeta = (s: string): string => s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');

const sortedLabels = (labels: Labels): Labels => {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) out[k] = labels[k]!;
  return out;
};

/** Alertmanager's `LabelSet.Before`: fewer labels first, then the first differing name or value. */
const labelSetBefore = (a: Labels, b: Labels): boolean => {
  const an = Object.keys(a);
  const bn = Object.keys(b);
  if (an.length !== bn.length) return an.length < bn.length;
  for (const name of [...an, ...bn].sort()) {
    const av = a[name];
    if (av === undefined) return true;
    const bv = b[name];
    if (bv === undefined) return false;
    if (av !== bv) return av < bv;
  }
  return false;
};

/** Alertmanager's `AlertSlice.Less`: job, then instance (an alert having one first), then the labels. */
const alertBefore = (a: Labels, b: Labels): boolean => {
  for (const key of ['job', 'instance']) {
    const av = a[key];
    const bv = b[key];
    if (av === undefined && bv === undefined) continue;
    if (av === undefined) return false;
    if (bv === undefined) return true;
    if (av !== bv) return av < bv;
  }
  return labelSetBefore(a, b);
};

/** The alerts in Alertmanager's order (a stable sort, as `sort.Stable`). */
export const sortAlerts = <T extends { readonly labels: Labels }>(alerts: readonly T[]): T[] =>
  [...alerts].sort((x, y) =>
    alertBefore(x.labels, y.labels) ? -1 : alertBefore(y.labels, x.labels) ? 1 : 0,
  );

/** The alerts sent and how many were left out (`max_alerts`; 0 keeps all). */
export const truncate = <T>(
  alerts: readonly T[],
  maxAlerts: number,
): { kept: readonly T[]; truncated: number } =>
  maxAlerts > 0 && alerts.length > maxAlerts
    ? { kept: alerts.slice(0, maxAlerts), truncated: alerts.length - maxAlerts }
    : { kept: alerts, truncated: 0 };

/** The labels (or annotations) every one of the maps has with the same value. */
export const commonOf = (maps: readonly Labels[]): Labels => {
  const [first, ...rest] = maps;
  if (!first) return {};
  const out: Record<string, string> = {};
  for (const k of Object.keys(first).sort()) if (rest.every((m) => m[k] === first[k])) out[k] = first[k]!;
  return out;
};

const statusOf = (a: AlertEvent): AlertmanagerStatus => (a.status === 'firing' ? 'firing' : 'resolved');

const toAlert = (a: AlertEvent, generatorURL: string): AlertmanagerAlert => {
  const status = statusOf(a);
  return {
    status,
    labels: sortedLabels(a.labels),
    annotations: sortedLabels(a.annotations),
    startsAt: rfc3339(a.startsAt),
    endsAt: status === 'firing' ? ZERO_TIME : rfc3339(a.endsAt ?? a.at),
    generatorURL,
    fingerprint: a.fingerprint,
  };
};

/** The v4 message of a group, with keys in Alertmanager's order. */
export const alertmanagerMessage = (n: GroupNotice): AlertmanagerMessage => {
  const { kept, truncated } = truncate(sortAlerts(n.alerts), n.maxAlerts);
  return {
    receiver: quoteMeta(n.receiver),
    status: kept.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts: kept.map((a) => toAlert(a, n.generatorURL?.(a) ?? '')),
    groupLabels: sortedLabels(n.groupLabels),
    commonLabels: commonOf(kept.map((a) => a.labels)),
    commonAnnotations: commonOf(kept.map((a) => a.annotations)),
    externalURL: n.externalURL ?? '',
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: truncated,
  };
};

const GO_ESCAPES: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/**
 * JSON as Go's `json.Encoder` writes it: `JSON.stringify` (same escapes for quotes, backslashes and
 * control characters) plus Go's HTML-safe escapes, and the newline `Encode` appends. The characters
 * escaped only ever occur inside strings, so replacing them over the whole text is exact.
 */
export const encodeGoJSON = (value: unknown): string =>
  `${JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!)}\n`;

/** The request body of a webhook notification. */
export const alertmanagerBody = (n: GroupNotice): string => encodeGoJSON(alertmanagerMessage(n));
