/**
 * The JSON push format: what a script or an application sends when it has no Telegraf at hand.
 *
 * ```json
 * { "ts": 1714564800000, "resource": "web-12", "metrics": { "queue.depth": 17, "healthy": true },
 *   "tags": { "queue": "orders" }, "counters": ["jobs.done"] }
 * ```
 *
 * A body is one such item or an array of them. `ts` is ms since the epoch or an ISO 8601 string with
 * a time zone (default: now); `resource` is the host the points belong to; each metric becomes one
 * point (booleans become 1/0, strings stay strings); names listed in `counters` are monotonic
 * counters. Every item is checked on its own and is all or nothing: an item with a bad field is
 * rejected whole with errors that name the field (`[2].metrics.cpu: must be a finite number, boolean
 * or string`), the other items are kept. Unknown fields are errors too: a `timestamp` that should
 * have been `ts` would otherwise be silently replaced by now.
 */
import type { PushedPoint } from '../../actors/host/types.ts';
import type { RoutedPoint } from './line-protocol.ts';

export interface JsonPushError {
  /** Index of the item in the array (0 for a single object). */
  readonly index: number;
  readonly error: string;
}

export interface JsonPushResult {
  readonly points: RoutedPoint[];
  readonly errors: JsonPushError[];
}

const MAX_NAME = 200;
/** InfluxDB's limit for a string field; a push is not a log shipper. */
const MAX_STRING_VALUE = 65_535;
/** Per item: enough to fix a request, not a flood for one with thousands of bad metrics. */
const MAX_ERRORS_PER_ITEM = 20;
const KNOWN_FIELDS = new Set(['ts', 'resource', 'metrics', 'tags', 'counters']);
/** `Date` covers ±8.64e15 ms around the epoch. */
const MAX_TS = 8.64e15;
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const PLAIN_NAME = /^[A-Za-z_][\w.-]*$/;

export const parseJsonPush = (body: unknown, options: { readonly now: number }): JsonPushResult => {
  const points: RoutedPoint[] = [];
  const errors: JsonPushError[] = [];
  const items = Array.isArray(body) ? body : [body];
  const now = Math.floor(options.now);
  for (let index = 0; index < items.length; index++) {
    const problems: string[] = [];
    const itemPoints = parseItem(items[index], `[${index}]`, now, problems);
    if (problems.length === 0) {
      for (const point of itemPoints) points.push(point);
      continue;
    }
    for (const error of problems.slice(0, MAX_ERRORS_PER_ITEM)) errors.push({ index, error });
    if (problems.length > MAX_ERRORS_PER_ITEM)
      errors.push({
        index,
        error: `[${index}]: ${problems.length - MAX_ERRORS_PER_ITEM} more errors not shown`,
      });
  }
  return { points, errors };
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const typeName = (v: unknown): string => {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
};

/** `.cpu` for plain names, `["cpu load"]` for the rest, so a path can be read back unambiguously. */
const member = (name: string): string => (PLAIN_NAME.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`);

/** Why a name (metric, tag key or value, resource) is unusable, or undefined. */
const nameProblem = (name: string): string | undefined => {
  if (name === '') return 'must not be empty';
  if (name.length > MAX_NAME) return `must be at most ${MAX_NAME} characters (got ${name.length})`;
  if (CONTROL.test(name)) return 'must not contain control characters';
  return undefined;
};

/** Reads one item; every problem goes to `problems` (the caller drops the points if there is any). */
const parseItem = (item: unknown, at: string, now: number, problems: string[]): RoutedPoint[] => {
  if (!isObject(item)) {
    problems.push(`${at}: must be an object with resource and metrics, got ${typeName(item)}`);
    return [];
  }
  for (const key of Object.keys(item))
    if (!KNOWN_FIELDS.has(key))
      problems.push(`${at}${member(key)}: unknown field (expected ts, resource, metrics, tags, counters)`);

  const host = item.resource;
  if (typeof host !== 'string' || host === '') problems.push(`${at}.resource: required non-empty string`);
  else {
    const problem = nameProblem(host);
    if (problem !== undefined) problems.push(`${at}.resource: ${problem}`);
  }

  const ts = readTs(item.ts, now, `${at}.ts`, problems);
  const tags = readTags(item.tags, `${at}.tags`, problems);
  const counters = readCounters(item.counters, `${at}.counters`, problems);

  const points: RoutedPoint[] = [];
  const metrics = item.metrics;
  if (!isObject(metrics)) {
    problems.push(
      `${at}.metrics: required object of name → number, boolean or string, got ${typeName(metrics)}`,
    );
    return points;
  }
  const names = Object.keys(metrics);
  if (names.length === 0) problems.push(`${at}.metrics: must hold at least one metric`);
  for (const name of names) {
    const path = `${at}.metrics${member(name)}`;
    const problem = nameProblem(name);
    if (problem !== undefined) problems.push(`${path}: name ${problem}`);
    const raw = metrics[name];
    let value: number | string;
    if (typeof raw === 'number' && Number.isFinite(raw)) value = raw;
    else if (typeof raw === 'boolean') value = raw ? 1 : 0;
    else if (typeof raw === 'string') {
      value = raw;
      if (raw.length > MAX_STRING_VALUE)
        problems.push(`${path}: string longer than ${MAX_STRING_VALUE} characters`);
    } else {
      problems.push(`${path}: must be a finite number, boolean or string, got ${describe(raw)}`);
      continue;
    }
    const point: PushedPoint = counters.has(name)
      ? { metric: name, tags, ts, value, type: 'counter' }
      : { metric: name, tags, ts, value };
    if (typeof host === 'string') points.push({ host, point });
  }
  counters.forEach((position, name) => {
    if (!Object.hasOwn(metrics, name))
      problems.push(`${at}.counters[${position}]: ${JSON.stringify(name)} is not a name in metrics`);
    else if (typeof metrics[name] !== 'number')
      problems.push(`${at}.counters[${position}]: ${JSON.stringify(name)} must name a numeric metric`);
  });
  return points;
};

const describe = (v: unknown): string => (typeof v === 'number' ? String(v) : typeName(v));

const readTs = (raw: unknown, now: number, at: string, problems: string[]): number => {
  if (raw === undefined || raw === null) return now;
  if (typeof raw === 'number') {
    if (Number.isFinite(raw) && Math.abs(raw) <= MAX_TS) return Math.floor(raw);
    problems.push(`${at}: must be ms since the epoch within ±${MAX_TS}, got ${raw}`);
    return now;
  }
  if (typeof raw === 'string') {
    const ms = parseIso(raw);
    if (ms !== undefined) return ms;
    problems.push(
      `${at}: ${JSON.stringify(raw.slice(0, 40))} is not an ISO 8601 time with a time zone (e.g. 2024-05-01T12:00:00Z)`,
    );
    return now;
  }
  problems.push(`${at}: must be a number (ms since the epoch) or an ISO 8601 string, got ${typeName(raw)}`);
  return now;
};

/** ms of an ISO 8601 date-time with a zone, checking the calendar (`Date.parse` takes Feb 30). */
const parseIso = (text: string): number | undefined => {
  const m = ISO_8601.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((v) => Number(v ?? 0)) as number[];
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (
    month! < 1 ||
    month! > 12 ||
    day! < 1 ||
    day! > daysInMonth ||
    hour! > 23 ||
    minute! > 59 ||
    second! > 59
  )
    return undefined;
  const ms = Date.parse(text.replace(/^(.{10}) /, '$1T'));
  return Number.isNaN(ms) ? undefined : ms;
};

const readTags = (raw: unknown, at: string, problems: string[]): Readonly<Record<string, string>> => {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object of name → string, got ${typeName(raw)}`);
    return {};
  }
  const tags: Record<string, string> = {};
  for (const key of Object.keys(raw)) {
    const path = `${at}${member(key)}`;
    const keyProblem = nameProblem(key);
    if (keyProblem !== undefined) problems.push(`${path}: key ${keyProblem}`);
    const value = raw[key];
    if (typeof value !== 'string') {
      problems.push(`${path}: must be a string, got ${typeName(value)}`);
      continue;
    }
    const valueProblem = nameProblem(value);
    if (valueProblem !== undefined) problems.push(`${path}: value ${valueProblem}`);
    Object.defineProperty(tags, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return tags;
};

/** Counter names → their position in the array (for errors). */
const readCounters = (raw: unknown, at: string, problems: string[]): Map<string, number> => {
  const counters = new Map<string, number>();
  if (raw === undefined || raw === null) return counters;
  if (!Array.isArray(raw)) {
    problems.push(`${at}: must be an array of metric names, got ${typeName(raw)}`);
    return counters;
  }
  raw.forEach((name: unknown, position) => {
    if (typeof name !== 'string')
      problems.push(`${at}[${position}]: must be a metric name, got ${typeName(name)}`);
    else if (!counters.has(name)) counters.set(name, position);
  });
  return counters;
};
