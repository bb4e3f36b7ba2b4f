/**
 * What a feed client asks to see: a filter, validated at the edge (each problem names its field) and
 * matched as a pure function. Every field is optional; an empty filter matches everything. Fields
 * combine with AND:
 * - `types`: the event's `type` equals one of them, or starts with one ending in `*` (`@argus.*`);
 * - `minSeverity` (1-5, 5 most severe): the event's numeric `severity` is at least this; events
 *   without a severity are left out when it is set;
 * - `host`, `service`, `rule`: the event's field of that name, or its `labels.<name>`, equals it.
 */

/** An event as the feed carries it: any object with a string `type`. */
export interface FeedEvent {
  readonly type: string;
  readonly [field: string]: unknown;
}

export interface FeedFilter {
  readonly types?: readonly string[];
  readonly minSeverity?: number;
  readonly host?: string;
  readonly service?: string;
  readonly rule?: string;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

const LABEL_FIELDS = ['host', 'service', 'rule'] as const;
const FIELDS = new Set(['types', 'minSeverity', ...LABEL_FIELDS]);
const MAX_TYPES = 100;
const MAX_TEXT = 256;

const shown = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? JSON.stringify(v) : typeof v;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const typesProblem = (types: unknown, at: string): string | undefined => {
  if (!Array.isArray(types)) return `${at}: must be an array of event types, got ${shown(types)}`;
  if (types.length > MAX_TYPES) return `${at}: at most ${MAX_TYPES} types, got ${types.length}`;
  for (let i = 0; i < types.length; i++) {
    const t: unknown = types[i];
    if (typeof t !== 'string' || t === '' || t.length > MAX_TEXT)
      return `${at}[${i}]: must be a non-empty string of at most ${MAX_TEXT} characters, got ${shown(t)}`;
    if (t.indexOf('*') !== -1 && t.indexOf('*') !== t.length - 1)
      return `${at}[${i}]: '*' may only end a type (a prefix match such as '@argus.*'), got ${JSON.stringify(t)}`;
  }
  return undefined;
};

/** Validates a client's filter (`at` names it in errors, e.g. `filter`). */
export const parseFilter = (raw: unknown, at = 'filter'): Parsed<FeedFilter> => {
  if (raw === undefined || raw === null) return { ok: true, value: {} };
  if (!isObject(raw)) return { ok: false, error: `${at}: must be an object, got ${shown(raw)}` };
  const unknown = Object.keys(raw).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0)
    return {
      ok: false,
      error: `${at}.${unknown[0]}: unknown field (known: ${[...FIELDS].join(', ')})`,
    };
  const filter: { -readonly [K in keyof FeedFilter]: FeedFilter[K] } = {};
  if (raw.types !== undefined) {
    const problem = typesProblem(raw.types, `${at}.types`);
    if (problem) return { ok: false, error: problem };
    filter.types = [...(raw.types as string[])];
  }
  if (raw.minSeverity !== undefined) {
    const s = raw.minSeverity;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 5)
      return {
        ok: false,
        error: `${at}.minSeverity: must be an integer from 1 to 5 (5 most severe), got ${shown(s)}${typeof s === 'number' ? ` ${s}` : ''}`,
      };
    filter.minSeverity = s;
  }
  for (const field of LABEL_FIELDS) {
    const v = raw[field];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '' || v.length > MAX_TEXT)
      return {
        ok: false,
        error: `${at}.${field}: must be a non-empty string of at most ${MAX_TEXT} characters, got ${shown(v)}`,
      };
    filter[field] = v;
  }
  return { ok: true, value: filter };
};

const typeMatches = (patterns: readonly string[], type: string): boolean =>
  patterns.some((p) => (p.endsWith('*') ? type.startsWith(p.slice(0, -1)) : p === type));

const fieldMatches = (event: FeedEvent, field: string, wanted: string): boolean => {
  if (event[field] === wanted) return true;
  const labels = event.labels;
  return isObject(labels) && labels[field] === wanted;
};

/** Whether `event` passes `filter`. */
export const matches = (filter: FeedFilter, event: FeedEvent): boolean => {
  if (filter.types && !typeMatches(filter.types, event.type)) return false;
  if (filter.minSeverity !== undefined) {
    const severity = event.severity;
    if (typeof severity !== 'number' || severity < filter.minSeverity) return false;
  }
  for (const field of LABEL_FIELDS) {
    const wanted = filter[field];
    if (wanted !== undefined && !fieldMatches(event, field, wanted)) return false;
  }
  return true;
};

/** The value as a feed event when it is one (an object with a non-empty string `type`). */
export const asFeedEvent = (value: unknown): FeedEvent | undefined =>
  isObject(value) && typeof value.type === 'string' && value.type !== '' ? (value as FeedEvent) : undefined;
