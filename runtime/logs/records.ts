/**
 * Parsed inputs as `IncomingLog`s: the one place that decides what a record's fields, time, host and
 * stream are, for each source. Pure (the arrival time and the peer address are passed in).
 *
 * - Syslog: the parsed header and message are the fields (absent ones left out, structured data only
 *   when there is some, `invalidUtf8: true` only when the bytes were not UTF-8); the stream is the
 *   APP-NAME / TAG made a stream name, else the configured default.
 * - Forward: the record map is the fields; the stream is the tag made a stream name, else `forward`.
 * - NDJSON: the object is the fields; the stream is the request's. Its time is the first of `time`,
 *   `timestamp`, `@timestamp`, `ts` that reads as one (ISO 8601 text, or epoch seconds / ms).
 *
 * The host is what the record says (syslog HOSTNAME, a `host` or `hostname` field), else the peer's
 * address: sub-streams are split by it, so it is never left empty when the peer is known.
 */

import type { ForwardEntry } from '../../actors/log/forward.ts';
import { isCalendarDate, type SyslogRecord, utcMs } from '../../actors/log/syslog.ts';
import { type IncomingLog, streamNameFrom } from '../../actors/log/types.ts';

/** A record and the stream it goes to. */
export interface RoutedLog {
  readonly stream: string;
  readonly log: IncomingLog;
}

/** The stream of forward entries whose tag makes no stream name. */
export const FORWARD_FALLBACK_STREAM = 'forward';

/** An IPv4 peer as Node reports it on a dual-stack socket (`::ffff:10.0.0.1`) without the prefix. */
export const peerAddress = (address: string | undefined): string =>
  address === undefined ? '' : address.startsWith('::ffff:') ? address.slice(7) : address;

export const fromSyslog = (
  record: SyslogRecord,
  context: { readonly peer: string; readonly now: number; readonly defaultStream: string },
): RoutedLog => {
  const fields: Record<string, unknown> = { facility: record.facility, severity: record.severity };
  if (record.host !== null) fields.host = record.host;
  if (record.app !== null) fields.app = record.app;
  if (record.procid !== null) fields.procid = record.procid;
  if (record.msgid !== null) fields.msgid = record.msgid;
  fields.message = record.message;
  if (Object.keys(record.structuredData).length > 0) fields.structuredData = record.structuredData;
  fields.format = record.format;
  if (record.invalidUtf8) fields.invalidUtf8 = true;
  return {
    stream: streamNameFrom(record.app, context.defaultStream),
    log: { time: record.timestamp ?? context.now, host: record.host ?? context.peer, fields },
  };
};

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export const fromForward = (tag: string, entry: ForwardEntry, peer: string): RoutedLog => ({
  stream: streamNameFrom(tag, FORWARD_FALLBACK_STREAM),
  log: {
    time: entry.time,
    host: text(entry.record.host) ?? text(entry.record.hostname) ?? peer,
    fields: entry.record,
  },
});

/** Fields read as the event time of an NDJSON record, in this order. */
export const NDJSON_TIME_FIELDS = ['time', 'timestamp', '@timestamp', 'ts'] as const;

export const fromNdjson = (object: Record<string, unknown>, peer: string, now: number): IncomingLog => {
  let time: number | undefined;
  for (const name of NDJSON_TIME_FIELDS) {
    time = timeOf(object[name]);
    if (time !== undefined) break;
  }
  return { time: time ?? now, host: text(object.host) ?? text(object.hostname) ?? peer, fields: object };
};

/** Above this an epoch number is milliseconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const MS_THRESHOLD = 1e11;
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * Epoch ms from ISO 8601 text or an epoch number (seconds, or ms past 1e11); undefined otherwise. Text
 * without an offset is UTC: the server's zone says nothing about the sender's.
 */
export const timeOf = (v: unknown): number | undefined => {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) return undefined;
    return Math.floor(v > MS_THRESHOLD ? v : v * 1000);
  }
  if (typeof v !== 'string') return undefined;
  const m = ISO_8601.exec(v.trim());
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!isCalendarDate(year, month, day)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  let offset = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replace(':', '');
    const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0);
    offset = (zone[0] === '-' ? -1 : 1) * minutes * 60_000;
  }
  return utcMs(year, month, day, hour, minute, Math.min(second, 59), ms, offset);
};
