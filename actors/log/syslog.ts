/**
 * Syslog messages, RFC 5424 and RFC 3164 (BSD), parsed into one record shape. Pure: no sockets, no
 * clock (the year of a 3164 timestamp comes from `options.now`).
 *
 * - The format is told by what follows PRI: `<PRI>1 ` (a VERSION and a space) is RFC 5424, anything
 *   else is RFC 3164. 5424 is parsed strictly (errors name the field: `RFC 5424: the header ends
 *   after HOSTNAME: APP-NAME missing`); 3164 tolerantly, as rsyslog does, because "anything is a
 *   valid 3164 message": `<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, the day space-padded or not, the
 *   host left out (util-linux `logger` to a local socket), an RFC 3339 timestamp in its place
 *   (rsyslog's `RSYSLOG_ForwardFormat`), or no timestamp at all (the rest is the message).
 * - A 3164 timestamp has no year and no zone: the year is the one of `now` (the previous year when
 *   that would put the message more than a month ahead, for a December message read in January) and
 *   the zone is `utcOffsetMinutes` (default UTC).
 * - Bytes that are not UTF-8 are decoded with U+FFFD and flagged (`invalidUtf8`), never rejected: a
 *   log line with one bad byte is still worth keeping. A UTF-8 BOM before a 5424 MSG is dropped.
 * - A trailing LF, CRLF or NUL (UDP senders add them) is not part of the message.
 * - Never throws: bad input is `{ ok: false, error }`.
 */
import { isUtf8 } from 'node:buffer';

export type SyslogFormat = '5424' | '3164';

export interface SyslogRecord {
  /** 0–23 (`kern` … `local7`), PRI / 8. */
  readonly facility: number;
  /** 0–7 (`emerg` … `debug`), PRI % 8. */
  readonly severity: number;
  /** Epoch ms; null for a 5424 NILVALUE or a 3164 message without a timestamp (use arrival time). */
  readonly timestamp: number | null;
  readonly host: string | null;
  /** 5424 APP-NAME, or the 3164 TAG without its `[pid]`. */
  readonly app: string | null;
  readonly procid: string | null;
  readonly msgid: string | null;
  /** SD-ID → PARAM-NAME → value (escapes removed). A repeated PARAM-NAME keeps its last value. */
  readonly structuredData: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly message: string;
  readonly format: SyslogFormat;
  /** The input held bytes that are not UTF-8; they were decoded as U+FFFD. */
  readonly invalidUtf8: boolean;
}

export type SyslogResult =
  | { readonly ok: true; readonly record: SyslogRecord }
  | { readonly ok: false; readonly error: string };

export interface SyslogOptions {
  /** Wall-clock ms: the year of a 3164 timestamp. Default 0 (1970), so pass it. */
  readonly now?: number;
  /** The zone 3164 timestamps are read in, minutes east of UTC (default 0). */
  readonly utcOffsetMinutes?: number;
}

export const FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'authpriv',
  'ftp',
  'ntp',
  'security',
  'console',
  'solaris-cron',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
] as const;
export const SEVERITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

const MAX_PRI = 191;
/** RFC 5424 section 6 field limits. */
const MAX_LENGTH = { HOSTNAME: 255, 'APP-NAME': 48, PROCID: 128, MSGID: 32 } as const;
const MAX_SD_NAME = 32;
const NIL = '-';
const BOM = '\uFEFF';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH_MS = 31 * 24 * 3_600_000;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|([+-])(\d{2}):(\d{2}))$/;
/** `Mmm dd hh:mm:ss`, the day space-padded (`Dec  2`) or not (`Dec 2`, as some senders write). */
const BSD_TIME = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?= |$)/;
/** A 3164 TAG with an optional `[pid]`, then `:`; rsyslog accepts more than the RFC's 32 alphanumerics. */
const BSD_TAG = /^([^\s:[\]]{1,48})(?:\[([^\s\]]{1,128})\])?:(?: |$)/;
/** `tag[pid]` without the `:`, as rsyslog's traditional forward format writes a 5424 message's APP-NAME. */
const BSD_TAG_NO_COLON = /^([^\s:[\]]{1,48})\[([^\s\]]{1,128})\](?: |$)/;

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
const fail = (error: string): { readonly ok: false; readonly error: string } => ({ ok: false, error });

export const parseSyslog = (line: Buffer | string, options: SyslogOptions = {}): SyslogResult => {
  let text: string;
  let invalidUtf8 = false;
  if (typeof line === 'string') text = line;
  else {
    invalidUtf8 = !isUtf8(line);
    text = line.toString('utf8');
  }
  text = withoutTrailer(text);
  const pri = parsePri(text);
  if (!pri.ok) return pri;
  const { value: priValue, end } = pri.value;
  const base = { facility: priValue >> 3, severity: priValue & 7, invalidUtf8 };
  const version = /^([1-9]\d{0,2}) /.exec(text.slice(end, end + 4));
  if (version !== null) {
    if (version[1] !== '1') return fail(`RFC 5424: unsupported VERSION ${version[1]} (only 1 is defined)`);
    return parse5424(text, end + version[0].length, base);
  }
  if (/^[1-9]\d{0,2}$/.test(text.slice(end)))
    return fail('RFC 5424: the header ends after VERSION: TIMESTAMP missing');
  return parse3164(text, end, base, options);
};

type Base = Pick<SyslogRecord, 'facility' | 'severity' | 'invalidUtf8'>;

const withoutTrailer = (text: string): string => {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0) end--;
  if (end > 0 && text.charCodeAt(end - 1) === 10) end--;
  if (end > 0 && text.charCodeAt(end - 1) === 13) end--;
  return end === text.length ? text : text.slice(0, end);
};

const parsePri = (text: string): Parsed<{ value: number; end: number }> => {
  if (text.length === 0) return fail('empty message');
  if (text[0] !== '<') return fail(`PRI: the message must start with '<', not ${quote(text.slice(0, 20))}`);
  const close = text.indexOf('>', 1);
  const digits = close < 0 ? text.slice(1, 5) : text.slice(1, close);
  if (close < 0 && /^\d{0,3}$/.test(digits)) return fail("PRI: the message ends before the closing '>'");
  if (!/^\d{1,3}$/.test(digits)) return fail(`PRI: ${quote(`<${digits}`)} is not '<' 1–3 digits '>'`);
  const value = Number(digits);
  if (value > MAX_PRI)
    return fail(`PRI: ${value} is out of range (0–${MAX_PRI}: facility 0–23 × 8 + severity)`);
  return { ok: true, value: { value, end: close + 1 } };
};

const quote = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);

// ---- RFC 5424 ------------------------------------------------------------------------------------

type HeaderField = keyof typeof MAX_LENGTH;
const HEADER_ORDER = ['VERSION', 'TIMESTAMP', 'HOSTNAME', 'APP-NAME', 'PROCID', 'MSGID', 'STRUCTURED-DATA'];

/** Reads one space-terminated header field `name` at `pos` (errors name the field before it). */
const headerToken = (text: string, pos: number, name: string): Parsed<{ token: string; end: number }> => {
  const previous = HEADER_ORDER[HEADER_ORDER.indexOf(name) - 1];
  if (pos >= text.length) return fail(`RFC 5424: the header ends after ${previous}: ${name} missing`);
  let end = text.indexOf(' ', pos);
  if (end < 0) end = text.length;
  if (end === pos) return fail(`RFC 5424: ${name} is empty (two spaces after ${previous})`);
  return { ok: true, value: { token: text.slice(pos, end), end } };
};

const printableProblem = (token: string): string | undefined => {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 33 || c > 126) return `character U+${c.toString(16).toUpperCase().padStart(4, '0')} at ${i}`;
  }
  return undefined;
};

const parse5424 = (text: string, start: number, base: Base): SyslogResult => {
  const ts = headerToken(text, start, 'TIMESTAMP');
  if (!ts.ok) return ts;
  const timestamp = ts.value.token === NIL ? null : parseRfc3339(ts.value.token);
  if (timestamp !== null && !timestamp.ok) return fail(`RFC 5424: TIMESTAMP ${timestamp.error}`);
  const fields: Partial<Record<HeaderField, string | null>> = {};
  let pos = ts.value.end + 1;
  for (const name of ['HOSTNAME', 'APP-NAME', 'PROCID', 'MSGID'] as const) {
    const field = headerToken(text, pos, name);
    if (!field.ok) return field;
    const { token } = field.value;
    if (token.length > MAX_LENGTH[name])
      return fail(`RFC 5424: ${name} is longer than ${MAX_LENGTH[name]} characters`);
    const problem = printableProblem(token);
    if (problem !== undefined) return fail(`RFC 5424: ${name}: ${problem} is not printable ASCII`);
    fields[name] = token === NIL ? null : token;
    pos = field.value.end + 1;
  }
  if (pos >= text.length) return fail('RFC 5424: the header ends after MSGID: STRUCTURED-DATA missing');
  const sd = parseStructuredData(text, pos);
  if (!sd.ok) return sd;
  pos = sd.value.end;
  let message = '';
  if (pos < text.length) {
    if (text[pos] !== ' ')
      return fail(`RFC 5424: STRUCTURED-DATA must be followed by a space, not ${quote(text.slice(pos))}`);
    message = text.slice(pos + 1);
    if (message.startsWith(BOM)) message = message.slice(1);
  }
  return {
    ok: true,
    // The base fields written out: spreading `base` here cost more than the rest of the record.
    record: {
      facility: base.facility,
      severity: base.severity,
      timestamp: timestamp === null ? null : timestamp.value,
      host: fields.HOSTNAME ?? null,
      app: fields['APP-NAME'] ?? null,
      procid: fields.PROCID ?? null,
      msgid: fields.MSGID ?? null,
      structuredData: sd.value.data,
      message,
      format: '5424',
      invalidUtf8: base.invalidUtf8,
    },
  };
};

const daysIn = (year: number, month: number): number => new Date(Date.UTC(year, month, 0)).getUTCDate();

/** Whether year-month-day (month 1-12) is a day of the calendar. */
export const isCalendarDate = (year: number, month: number, day: number): boolean =>
  month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month);

/** Epoch ms of a UTC calendar time minus `offsetMs` (the zone east of UTC); years below 100 as written. */
export const utcMs = (
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms: number,
  offsetMs: number,
): number => {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // years below 100 too (Date.UTC maps them to 19xx)
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime() - offsetMs;
};

/** RFC 3339 as RFC 5424 restricts it: `T` and `Z` upper case, at most 6 fraction digits, no leap second. */
const parseRfc3339 = (token: string): Parsed<number> => {
  const m = RFC3339.exec(token);
  if (m === null) return fail(`${quote(token)} is not RFC 3339 (YYYY-MM-DDThh:mm:ss[.ffffff](Z|±hh:mm))`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!isCalendarDate(year, month, day)) return fail(`${quote(token)}: no such date`);
  if (hour > 23 || minute > 59 || second > 59) return fail(`${quote(token)}: no such time of day`);
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  let offset = 0;
  if (m[8] !== 'Z') {
    const [offHours, offMinutes] = [Number(m[10]), Number(m[11])];
    if (offHours > 23 || offMinutes > 59) return fail(`${quote(token)}: no such UTC offset`);
    offset = (m[9] === '-' ? -1 : 1) * (offHours * 60 + offMinutes) * 60_000;
  }
  return { ok: true, value: utcMs(year, month, day, hour, minute, second, ms, offset) };
};

type Sd = Record<string, Record<string, string>>;

/** Sets a key without `__proto__` turning into a prototype change. */
const setOwn = <T>(target: Record<string, T>, key: string, value: T): void => {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
};

/** `-` or one or more `[SD-ID *(SP PARAM-NAME="value")]`; values escape `"`, `\` and `]` with `\`. */
const parseStructuredData = (text: string, start: number): Parsed<{ data: Sd; end: number }> => {
  const data: Sd = {};
  if (text[start] === NIL) {
    if (start + 1 < text.length && text[start + 1] !== ' ')
      return fail(`RFC 5424: STRUCTURED-DATA must be '-' or start with '[', not ${quote(text.slice(start))}`);
    return { ok: true, value: { data, end: start + 1 } };
  }
  let pos = start;
  if (text[pos] !== '[')
    return fail(`RFC 5424: STRUCTURED-DATA must be '-' or start with '[', not ${quote(text.slice(pos))}`);
  while (text[pos] === '[') {
    const id = sdName(text, pos + 1, 'SD-ID');
    if (!id.ok) return id;
    const sdId = id.value.name;
    if (Object.hasOwn(data, sdId)) return fail(`RFC 5424: STRUCTURED-DATA: SD-ID '${sdId}' appears twice`);
    const params: Record<string, string> = {};
    pos = id.value.end;
    while (text[pos] === ' ') {
      const name = sdName(text, pos + 1, `PARAM-NAME in [${sdId}]`);
      if (!name.ok) return name;
      const param = name.value.name;
      pos = name.value.end;
      if (text[pos] !== '=' || text[pos + 1] !== '"') {
        const what = pos >= text.length ? 'the message ends' : `found ${quote(text.slice(pos, pos + 10))}`;
        return fail(`RFC 5424: STRUCTURED-DATA [${sdId}] ${param}: expected '="' (${what})`);
      }
      const value = sdValue(text, pos + 2);
      if (value === undefined)
        return fail(`RFC 5424: STRUCTURED-DATA [${sdId}] ${param}: the value has no closing '"'`);
      setOwn(params, param, value.value);
      pos = value.end;
    }
    if (pos >= text.length) return fail(`RFC 5424: STRUCTURED-DATA [${sdId}: the element has no closing ']'`);
    if (text[pos] !== ']')
      return fail(
        `RFC 5424: STRUCTURED-DATA [${sdId}: expected ' ' or ']', found ${quote(text.slice(pos, pos + 10))}`,
      );
    setOwn(data, sdId, params);
    pos++;
  }
  return { ok: true, value: { data, end: pos } };
};

/** An SD-NAME: 1–32 printable ASCII characters except `=`, space, `]` and `"`. */
const sdName = (text: string, start: number, what: string): Parsed<{ name: string; end: number }> => {
  let end = start;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    if (c < 33 || c > 126 || c === 61 || c === 93 || c === 34) break;
    end++;
  }
  if (end === start) {
    const found = start >= text.length ? 'the message ends' : `found ${quote(text.slice(start, start + 10))}`;
    return fail(`RFC 5424: STRUCTURED-DATA: ${what} missing (${found})`);
  }
  if (end - start > MAX_SD_NAME)
    return fail(
      `RFC 5424: STRUCTURED-DATA: ${what} ${quote(text.slice(start, end))} is longer than ${MAX_SD_NAME}`,
    );
  return { ok: true, value: { name: text.slice(start, end), end } };
};

/** A PARAM-VALUE from after its opening quote; a backslash before anything but `"`, `\`, `]` stays. */
const sdValue = (text: string, start: number): { value: string; end: number } | undefined => {
  let out = '';
  let from = start;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) return { value: out + text.slice(from, i), end: i + 1 };
    if (c === 92) {
      const next = text.charCodeAt(i + 1);
      if (next === 34 || next === 92 || next === 93) {
        out += text.slice(from, i);
        from = i + 1;
        i++;
      }
    }
  }
  return undefined;
};

// ---- RFC 3164 ------------------------------------------------------------------------------------

const parse3164 = (text: string, start: number, base: Base, options: SyslogOptions): SyslogResult => {
  const rest = text.slice(start);
  if (rest.length === 0) return fail('RFC 3164: the message ends after PRI: TIMESTAMP and MSG missing');
  const time = bsdTimestamp(rest, options);
  if (!time.ok) return time;
  const { timestamp, length } = time.value;
  if (timestamp === null) return { ok: true, record: bsdRecord(base, null, null, rest) };
  if (length >= rest.length)
    return fail('RFC 3164: the message ends after TIMESTAMP: HOSTNAME and MSG missing');
  let body = rest.slice(length + 1);
  // `host tag: msg`, or `tag: msg` with no host (logger and syslog(3) to a local socket): a first word
  // that is itself a tag (ends in `:` or `[pid]:`) is not a host name.
  let host: string | null = null;
  const space = body.indexOf(' ');
  const first = space < 0 ? body : body.slice(0, space);
  if (!BSD_TAG.test(`${first} `) && first.length > 0 && printableProblem(first) === undefined) {
    if (first.length > MAX_LENGTH.HOSTNAME)
      return fail(`RFC 3164: HOSTNAME is longer than ${MAX_LENGTH.HOSTNAME} characters`);
    host = first;
    body = space < 0 ? '' : body.slice(space + 1);
  }
  return { ok: true, record: bsdRecord(base, timestamp, host, body) };
};

const bsdRecord = (base: Base, timestamp: number | null, host: string | null, body: string): SyslogRecord => {
  const tag = BSD_TAG.exec(body) ?? BSD_TAG_NO_COLON.exec(body);
  return {
    facility: base.facility,
    severity: base.severity,
    timestamp,
    host,
    app: tag?.[1] ?? null,
    procid: tag?.[2] ?? null,
    msgid: null,
    structuredData: {},
    message: tag === null ? body : body.slice(tag[0].length),
    format: '3164',
    invalidUtf8: base.invalidUtf8,
  };
};

/** The timestamp at the start of a 3164 message and its length; null when there is none. */
const bsdTimestamp = (
  rest: string,
  options: SyslogOptions,
): Parsed<{ timestamp: number | null; length: number }> => {
  if (/^\d{4}-\d{2}-\d{2}T/.test(rest)) {
    const space = rest.indexOf(' ');
    const token = space < 0 ? rest : rest.slice(0, space);
    const parsed = parseRfc3339(token);
    if (!parsed.ok) return fail(`RFC 3164: TIMESTAMP ${parsed.error}`);
    return { ok: true, value: { timestamp: parsed.value, length: token.length } };
  }
  const month = MONTHS.indexOf(rest.slice(0, 3));
  // Only what starts like a timestamp (`Mmm d`) and breaks off is an error; other text is the message.
  if (month < 0 || !/^ {1,2}\d/.test(rest.slice(3, 6)))
    return { ok: true, value: { timestamp: null, length: 0 } };
  const m = BSD_TIME.exec(rest);
  if (m === null) {
    const shown = rest.slice(0, 15);
    return fail(
      `RFC 3164: TIMESTAMP ${quote(shown)} is not 'Mmm dd hh:mm:ss'${rest.length < 15 ? ' (truncated)' : ''}`,
    );
  }
  const [day, hour, minute, second] = m.slice(2, 6).map(Number) as [number, number, number, number];
  if (hour > 23 || minute > 59 || second > 60)
    return fail(`RFC 3164: TIMESTAMP ${quote(m[0])}: no such time of day`);
  const offset = (options.utcOffsetMinutes ?? 0) * 60_000;
  const now = options.now ?? 0;
  const at = (year: number): number | undefined =>
    day < 1 || day > daysIn(year, month + 1)
      ? undefined
      : Date.UTC(year, month, day, hour, minute, Math.min(second, 59)) - offset;
  const year = new Date(now + offset).getUTCFullYear();
  let timestamp = at(year);
  if (timestamp === undefined || timestamp > now + MONTH_MS) timestamp = at(year - 1);
  if (timestamp === undefined) return fail(`RFC 3164: TIMESTAMP ${quote(m[0])}: no such date around ${year}`);
  return { ok: true, value: { timestamp, length: m[0].length } };
};
