/**
 * InfluxDB line protocol, as Telegraf's `influxdb` and `influxdb_v2` outputs send it, parsed into
 * `PushedPoint`s routed to their host (the value of the `host` tag).
 *
 * `measurement[,tagk=tagv...] fieldk=fieldv[,...] [timestamp]`, one point a line. The rules follow
 * InfluxDB 1.x (`models/points.go`) and the line protocol reference:
 *
 * - a backslash escapes `,` and space in a measurement, `,` `=` and space in tag keys, tag values and
 *   field keys, `"` and `\` in string field values; any other backslash is a literal backslash (so
 *   `\\server\share` stays as written, as InfluxDB stores it). A backslash that ends a line is
 *   rejected: InfluxDB 1.x would silently glue the next line on;
 * - a string field value may hold raw newlines (Telegraf sends them as they are): the point then
 *   spans lines, and the next point's line number counts them;
 * - each line is all or nothing, as in InfluxDB: one bad field rejects the whole line, the other
 *   lines are kept. Errors name what is wrong and where (`field 'usage': invalid number '12x'`);
 * - the host tag's value names an entity, so it must be a valid entity key (at most 512 characters, no
 *   control characters); a line whose host is not is rejected, not left to fail in its shard;
 * - ns timestamps are past 2^53, so only their ms digits are turned into a number (no precision lost).
 *
 * The scanner walks char codes once, slices only the strings it keeps and shares a line's tags
 * between its points: a push endpoint sees batches of thousands of lines, and this is its hot path.
 */
import type { PushedPoint, Tags } from '../../actors/host/types.ts';

/** Timestamp precision of a write: InfluxDB's `precision` query parameter, normalised. */
export type Precision = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

/** A point and the host it belongs to (the entity whose mailbox receives it). */
export interface RoutedPoint {
  readonly host: string;
  readonly point: PushedPoint;
}

export interface LineError {
  /** 1-based line number in the body. */
  readonly line: number;
  readonly error: string;
  /** The line as sent, cut to ~200 characters. */
  readonly text: string;
}

export interface LineProtocolOptions {
  readonly precision: Precision;
  /** Wall-clock ms, for lines without a timestamp. */
  readonly now: number;
  /** The tag that names the host (default `host`); it is not kept among the point's tags. */
  readonly hostTag?: string;
}

export interface LineProtocolResult {
  readonly points: RoutedPoint[];
  readonly errors: LineError[];
}

// µ is U+00B5 (micro sign), μ is U+03BC (Greek mu): both are typed for "micro".
const V1_PRECISIONS: Readonly<Record<string, Precision>> = {
  n: 'ns',
  ns: 'ns',
  u: 'us',
  us: 'us',
  µ: 'us',
  μ: 'us',
  ms: 'ms',
  s: 's',
  m: 'm',
  h: 'h',
};
const V2_PRECISIONS: Readonly<Record<string, Precision>> = { ns: 'ns', us: 'us', ms: 'ms', s: 's' };

/** The `precision` query parameter of a v1 (`/write`) or v2 (`/api/v2/write`) write; absent or '' is ns. */
export const parsePrecision = (
  value: string | null,
  api: 'v1' | 'v2',
): { readonly ok: true; readonly precision: Precision } | { readonly ok: false; readonly error: string } => {
  if (value === null || value === '') return { ok: true, precision: 'ns' };
  const table = api === 'v1' ? V1_PRECISIONS : V2_PRECISIONS;
  const precision = Object.hasOwn(table, value) ? table[value] : undefined;
  if (precision !== undefined) return { ok: true, precision };
  const accepted = api === 'v1' ? 'n, ns, u, us, µ, ms, s, m, h' : 'ns, us, ms, s';
  return {
    ok: false,
    error: `precision: ${JSON.stringify(value)} is not one of ${accepted} (the ${api} write API)`,
  };
};

export const parseLineProtocol = (body: string, options: LineProtocolOptions): LineProtocolResult => {
  const parser = new LineParser(body, options.precision, Math.floor(options.now), options.hostTag ?? 'host');
  parser.run();
  return { points: parser.points, errors: parser.errors };
};

// Char codes.
const [BACKSLASH, COMMA, SPACE, TAB, NUL, EQUALS, QUOTE, NEWLINE, CR, HASH] = [
  92, 44, 32, 9, 0, 61, 34, 10, 13, 35,
];
const [MINUS, PLUS, DOT, ZERO, NINE, LOWER_E, UPPER_E, LOWER_I, LOWER_U] = [
  45, 43, 46, 48, 57, 101, 69, 105, 117,
];

/** `scanKey`'s modes: a measurement ends at `,` or space; tag keys and values and field keys also at `=`. */
const MEASUREMENT = true;
const KEY = false;

/** InfluxDB keeps series keys (measurement and tags) under 64 KiB. */
const MAX_KEY_LENGTH = 65_535;
const MAX_TEXT = 200;
const INT64_MAX = '9223372036854775807';
const INT64_MIN_ABS = '9223372036854775808';
const UINT64_MAX = '18446744073709551615';
/** InfluxDB's time range: int64 ns but the two values at each end (MinNanoTime, MaxNanoTime); in ms. */
const TS_MAX = '9223372036854775806';
const MAX_MS = 9_223_372_036_854;
const NAN_OR_INF = /^[+-]?(nan|inf|infinity)$/i;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
/** Timestamp digits to drop to get ms (ns, us) or the factor to multiply by (s, m, h). */
const DROP_DIGITS: Readonly<Record<Precision, number>> = { ns: 6, us: 3, ms: 0, s: 0, m: 0, h: 0 };
const TO_MS: Readonly<Record<Precision, number>> = { ns: 1, us: 1, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const NO_TAGS: Tags = Object.freeze({});

/**
 * The host names an entity (its key): the runtime refuses keys over 512 characters at send time, and
 * the shard supervisor cannot start a child whose id holds a control character (supervisors/spec.ts),
 * which would leave the message retried forever at the head of its shard. Such a line is rejected here.
 */
const MAX_HOST_LENGTH = 512;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds.
const CONTROL = /[\u0000-\u001f]/;
const hostProblem = (host: string): string | undefined => {
  if (host.length > MAX_HOST_LENGTH)
    return `longer than ${MAX_HOST_LENGTH} characters (a host name is an entity key)`;
  if (CONTROL.test(host)) return 'control characters are not allowed in a host name';
  return undefined;
};

const isDigit = (c: number): boolean => c >= ZERO && c <= NINE;
const isBlank = (c: number): boolean => c === SPACE || c === TAB || c === NUL;

/** Drops the backslash of each escape (`escapes` says which characters it escapes); others stay. */
const dropEscapes = (b: string, start: number, end: number, escapes: (next: number) => boolean): string => {
  let out = '';
  let from = start;
  for (let i = start; i < end - 1; i++) {
    if (b.charCodeAt(i) !== BACKSLASH || !escapes(b.charCodeAt(i + 1))) continue;
    out += b.slice(from, i);
    from = i + 1;
    i++;
  }
  return out + b.slice(from, end);
};
const inMeasurement = (c: number): boolean => c === COMMA || c === SPACE;
const inKey = (c: number): boolean => c === COMMA || c === SPACE || c === EQUALS;
const inString = (c: number): boolean => c === QUOTE || c === BACKSLASH;

/** Sets a tag without `__proto__` turning into a prototype change. */
const setTag = (tags: Record<string, string>, key: string, value: string): void => {
  if (key === '__proto__')
    Object.defineProperty(tags, key, { value, enumerable: true, writable: true, configurable: true });
  else tags[key] = value;
};

/** Equal-length digit strings compare like numbers. */
const digitsAbove = (digits: string, max: string): boolean =>
  digits.length > max.length || (digits.length === max.length && digits > max);

class LineParser {
  readonly points: RoutedPoint[] = [];
  readonly errors: LineError[] = [];
  /** End of the current point (exclusive, CR trimmed) and the newline after it (or body.length). */
  private end = 0;
  private newline = 0;
  /** Newlines inside string fields of the current point: the next point's line number skips them. */
  private spannedLines = 0;
  /** Where the current error was found: the line is skipped from there (strings stay whole). */
  private errorAt = 0;
  private detail = '';
  private escaped = false;
  // Reused per line: the fields seen so far, and the tag keys (for duplicates).
  private readonly fieldKeys: string[] = [];
  private readonly fieldValues: (number | string)[] = [];
  private readonly tagKeys: string[] = [];

  constructor(
    private readonly b: string,
    private readonly precision: Precision,
    private readonly now: number,
    private readonly hostTag: string,
  ) {}

  run(): void {
    const b = this.b;
    const n = b.length;
    let pos = 0;
    let line = 1;
    while (pos < n) {
      let newline = b.indexOf('\n', pos);
      if (newline < 0) newline = n;
      let start = pos;
      while (start < newline && isBlank(b.charCodeAt(start))) start++;
      this.setEnd(newline);
      this.spannedLines = 0;
      if (start < this.end && b.charCodeAt(start) !== HASH) {
        const error = this.parsePoint(start);
        if (error !== undefined) {
          this.skipFrom(this.errorAt);
          const text = b.slice(start, Math.min(this.end, start + MAX_TEXT + 1));
          this.errors.push({
            line,
            error,
            text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text,
          });
        }
      }
      line += 1 + this.spannedLines;
      pos = this.newline + 1;
    }
  }

  private setEnd(newline: number): void {
    this.newline = newline;
    this.end = newline > 0 && this.b.charCodeAt(newline - 1) === CR ? newline - 1 : newline;
  }

  private fail(at: number, error: string): string {
    this.errorAt = at;
    return error;
  }

  /** Index of the quote closing the string opened at `open`, or -1; may lie on a later line. */
  private closingQuote(open: number): number {
    const b = this.b;
    this.escaped = false;
    for (let i = open + 1; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (c === QUOTE) return i;
      if (c === BACKSLASH) {
        const next = b.charCodeAt(i + 1);
        if (next === QUOTE || next === BACKSLASH) {
          this.escaped = true;
          i++;
        }
      }
    }
    return -1;
  }

  /** Moves the end of the point past a string that runs onto later lines. */
  private extendTo(close: number): void {
    const b = this.b;
    for (let i = this.newline; i < close; i++) if (b.charCodeAt(i) === NEWLINE) this.spannedLines++;
    const newline = b.indexOf('\n', close);
    this.setEnd(newline < 0 ? b.length : newline);
  }

  /** After an error: the rest of the line is skipped, but a string that spans lines is skipped whole. */
  private skipFrom(at: number): void {
    const b = this.b;
    for (let i = at; i < this.end; i++) {
      if (b.charCodeAt(i) !== QUOTE || i === 0 || b.charCodeAt(i - 1) !== EQUALS) continue;
      const close = this.closingQuote(i);
      if (close < 0) return;
      if (close >= this.end) this.extendTo(close);
      i = close;
    }
  }

  /**
   * Scans a measurement (up to an unescaped `,` or space) or a tag key, tag value or field key (also
   * `=`); sets `escaped` when an escape needs removing. Returns where it stopped.
   */
  private scanKey(i: number, measurement: boolean): number {
    const b = this.b;
    const end = this.end;
    this.escaped = false;
    for (; i < end; i++) {
      const c = b.charCodeAt(i);
      if (c === COMMA || c === SPACE || (c === EQUALS && !measurement)) return i;
      if (c === BACKSLASH && i + 1 < end && (measurement ? inMeasurement : inKey)(b.charCodeAt(i + 1))) {
        this.escaped = true;
        i++;
      }
    }
    return i;
  }

  private key(start: number, end: number, measurement: boolean): string {
    if (!this.escaped) return this.b.slice(start, end);
    return dropEscapes(this.b, start, end, measurement ? inMeasurement : inKey);
  }

  /** The error for a key that ran into the end of the line. */
  private endOfLine(at: number, what: string): string {
    return this.b.charCodeAt(at - 1) === BACKSLASH
      ? this.fail(at - 1, `unescaped trailing backslash in ${what}`)
      : this.fail(at, `missing fields: the line ends in ${what}`);
  }

  /** Parses the point starting at `s`; returns an error, or undefined once its points are pushed. */
  private parsePoint(s: number): string | undefined {
    const b = this.b;
    if (b.charCodeAt(s) === COMMA) return this.fail(s, 'missing measurement');
    let i = this.scanKey(s, MEASUREMENT);
    if (i >= this.end) return this.endOfLine(i, 'the measurement');
    const measurement = this.key(s, i, MEASUREMENT);

    let host: string | undefined;
    let tags: Tags = NO_TAGS;
    let tagCount = 0;
    while (b.charCodeAt(i) === COMMA) {
      const keyStart = ++i;
      const first = i < this.end ? b.charCodeAt(i) : SPACE;
      if (first === COMMA || first === SPACE || first === EQUALS) return this.fail(i, 'missing tag key');
      i = this.scanKey(i, KEY);
      const key = this.key(keyStart, i, KEY);
      if (i >= this.end && b.charCodeAt(i - 1) === BACKSLASH) return this.endOfLine(i, `tag key '${key}'`);
      if (b.charCodeAt(i) !== EQUALS || i >= this.end)
        return this.fail(i, `tag '${key}': missing '=' and value`);
      const valueStart = ++i;
      i = this.scanKey(i, KEY);
      if (i >= this.end && i > valueStart) return this.endOfLine(i, `tag '${key}'`);
      if (i < this.end && b.charCodeAt(i) === EQUALS)
        return this.fail(i, `tag '${key}': unescaped '=' in the value`);
      if (i === valueStart) return this.fail(i, `tag '${key}': missing value`);
      const value = this.key(valueStart, i, KEY);
      if (key === this.hostTag) {
        if (host !== undefined) return this.fail(i, `duplicate tag '${key}'`);
        const problem = hostProblem(value);
        if (problem !== undefined) return this.fail(valueStart, `tag '${key}': ${problem}`);
        host = value;
        continue;
      }
      for (let t = 0; t < tagCount; t++)
        if (this.tagKeys[t] === key) return this.fail(i, `duplicate tag '${key}'`);
      this.tagKeys[tagCount++] = key;
      if (tags === NO_TAGS) tags = {};
      setTag(tags as Record<string, string>, key, value);
    }
    if (i - s > MAX_KEY_LENGTH) return this.fail(s, `series key longer than ${MAX_KEY_LENGTH} characters`);

    while (i < this.end && isBlank(b.charCodeAt(i))) i++;
    if (i >= this.end) return this.fail(i, 'missing fields');
    let fields = 0;
    for (;;) {
      const keyStart = i;
      i = this.scanKey(i, KEY);
      if (i === keyStart) {
        const after = fields > 0 ? ` after field '${this.fieldKeys[fields - 1]}'` : '';
        return this.fail(i, `missing field key${after}`);
      }
      const key = this.key(keyStart, i, KEY);
      if (i >= this.end && b.charCodeAt(i - 1) === BACKSLASH) return this.endOfLine(i, `field key '${key}'`);
      if (i >= this.end || b.charCodeAt(i) !== EQUALS)
        return this.fail(i, `field '${key}': missing '=' and value`);
      for (let f = 0; f < fields; f++)
        if (this.fieldKeys[f] === key) return this.fail(i, `duplicate field '${key}'`);
      const valueStart = ++i;
      const first = i < this.end ? b.charCodeAt(i) : SPACE;
      let value: number | string;
      if (first === QUOTE) {
        const close = this.closingQuote(i);
        if (close < 0) return this.fail(i, `field '${key}': unterminated string`);
        value = this.escaped ? dropEscapes(b, i + 1, close, inString) : b.slice(i + 1, close);
        if (close >= this.end) this.extendTo(close);
        i = close + 1;
        if (i < this.end && b.charCodeAt(i) !== COMMA && b.charCodeAt(i) !== SPACE)
          return this.fail(i, `field '${key}': unexpected '${b[i]}' after the closing quote`);
      } else {
        if (first === COMMA || first === SPACE) return this.fail(i, `field '${key}': missing value`);
        for (; i < this.end; i++) {
          const c = b.charCodeAt(i);
          if (c === COMMA || c === SPACE) break;
        }
        value = this.scalar(valueStart, i);
        if (Number.isNaN(value)) return this.fail(valueStart, `field '${key}': ${this.detail}`);
      }
      this.fieldKeys[fields] = key;
      this.fieldValues[fields++] = value;
      if (i >= this.end || b.charCodeAt(i) === SPACE) break;
      i++; // the comma
    }

    let ts = this.now;
    while (i < this.end && isBlank(b.charCodeAt(i))) i++;
    if (i < this.end) {
      const tsStart = i;
      while (i < this.end && !isBlank(b.charCodeAt(i))) i++;
      ts = this.timestamp(tsStart, i);
      if (Number.isNaN(ts)) return this.fail(tsStart, this.detail);
      while (i < this.end && isBlank(b.charCodeAt(i))) i++;
      if (i < this.end) return this.fail(i, `unexpected text after the timestamp: '${b.slice(i, i + 20)}'`);
    }
    if (host === undefined)
      return this.fail(s, `no '${this.hostTag}' tag: cannot tell which host the point belongs to`);

    for (let f = 0; f < fields; f++) {
      const metric = `${measurement}.${this.fieldKeys[f]}`;
      this.points.push({ host, point: { metric, tags, ts, value: this.fieldValues[f]! } });
    }
    return undefined;
  }

  /** A number or boolean field value (booleans → 1/0); NaN with `detail` set when it is neither. */
  private scalar(s: number, e: number): number {
    const b = this.b;
    const c = b.charCodeAt(s);
    if (e - s === 1 && (c === 116 || c === 84)) return 1; // t T
    if (e - s === 1 && (c === 102 || c === 70)) return 0; // f F
    if (isDigit(c) || c === DOT) return this.number(s, e);
    const text = b.slice(s, e);
    if (text === 'true' || text === 'True' || text === 'TRUE') return 1;
    if (text === 'false' || text === 'False' || text === 'FALSE') return 0;
    if (NAN_OR_INF.test(text))
      return this.invalid(`unsupported value '${text}' (InfluxDB rejects NaN and Inf)`);
    if (c === MINUS || c === PLUS) return this.number(s, e);
    if (c === 116 || c === 84 || c === 102 || c === 70) return this.invalid(`invalid boolean '${text}'`);
    return this.invalid(`invalid value '${text}' (strings must be double-quoted)`);
  }

  private invalid(detail: string): number {
    this.detail = detail;
    return Number.NaN;
  }

  private number(s: number, e: number): number {
    const b = this.b;
    const text = (): string => b.slice(s, e);
    let i = s;
    const negative = b.charCodeAt(i) === MINUS;
    if (negative) i++;
    const last = b.charCodeAt(e - 1);
    if (last === LOWER_I || last === LOWER_U) {
      const unsigned = last === LOWER_U;
      const what = unsigned ? 'unsigned integer' : 'integer';
      if (i >= e - 1) return this.invalid(`invalid ${what} '${text()}'`);
      for (let k = i; k < e - 1; k++)
        if (!isDigit(b.charCodeAt(k))) return this.invalid(`invalid ${what} '${text()}'`);
      if (unsigned && negative) return this.invalid(`unsigned integer '${text()}' is negative`);
      while (i < e - 2 && b.charCodeAt(i) === ZERO) i++;
      if (e - 1 - i > 15) {
        const digits = b.slice(i, e - 1);
        const max = unsigned ? UINT64_MAX : negative ? INT64_MIN_ABS : INT64_MAX;
        if (digitsAbove(digits, max))
          return this.invalid(`${what} '${text()}' out of range (${unsigned ? 'uint64' : 'int64'})`);
        return negative ? -Number(digits) : Number(digits);
      }
      let v = 0;
      for (let k = i; k < e - 1; k++) v = v * 10 + (b.charCodeAt(k) - ZERO);
      return negative && v !== 0 ? -v : v;
    }
    // A float: digits [. digits] [e|E [+|-] digits], at least one mantissa digit.
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    let dot = false;
    for (; i < e; i++) {
      const c = b.charCodeAt(i);
      if (isDigit(c)) {
        mantissa = mantissa * 10 + (c - ZERO);
        digits++;
        if (dot) fraction++;
      } else if (c === DOT && !dot) dot = true;
      else break;
    }
    if (digits === 0) return this.invalid(`invalid number '${text()}'`);
    if (i === e && digits <= 15) {
      const v = fraction === 0 ? mantissa : mantissa / POW10[fraction]!;
      return negative ? -v : v;
    }
    if (i < e) {
      const c = b.charCodeAt(i);
      if (c !== LOWER_E && c !== UPPER_E) return this.invalid(`invalid number '${text()}'`);
      i++;
      if (i < e && (b.charCodeAt(i) === PLUS || b.charCodeAt(i) === MINUS)) i++;
      if (i >= e) return this.invalid(`invalid number '${text()}'`);
      for (; i < e; i++) if (!isDigit(b.charCodeAt(i))) return this.invalid(`invalid number '${text()}'`);
    }
    const v = Number(b.slice(s, e));
    return Number.isFinite(v) ? v : this.invalid(`float '${text()}' out of range`);
  }

  /** An integer timestamp in the write's precision, as floored ms; NaN with `detail` set if invalid. */
  private timestamp(s: number, e: number): number {
    const b = this.b;
    const text = b.slice(s, e);
    let i = s;
    const negative = b.charCodeAt(i) === MINUS;
    if (negative) i++;
    if (i >= e) return this.invalid(`invalid timestamp '${text}': must be an integer`);
    for (let k = i; k < e; k++)
      if (!isDigit(b.charCodeAt(k))) return this.invalid(`invalid timestamp '${text}': must be an integer`);
    while (i < e - 1 && b.charCodeAt(i) === ZERO) i++;
    const outOfRange = `timestamp '${text}' out of range (${this.precision} precision; InfluxDB stores years 1677 to 2262)`;
    if (digitsAbove(b.slice(i, e), TS_MAX)) return this.invalid(outOfRange);
    // Only the ms digits become a number: an ns value past 2^53 would lose them.
    const cut = Math.max(i, e - DROP_DIGITS[this.precision]);
    let ms = 0;
    for (let k = i; k < cut; k++) ms = ms * 10 + (b.charCodeAt(k) - ZERO);
    let remainder = false;
    for (let k = cut; k < e; k++) if (b.charCodeAt(k) !== ZERO) remainder = true;
    ms *= TO_MS[this.precision];
    // ns and us always fit (int64 was checked); coarser units must stay within int64 nanoseconds.
    if (ms > MAX_MS && DROP_DIGITS[this.precision] === 0) return this.invalid(outOfRange);
    if (!negative) return ms;
    return ms === 0 && !remainder ? 0 : -ms - (remainder ? 1 : 0);
  }
}
