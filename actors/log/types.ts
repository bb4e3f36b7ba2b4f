/**
 * The shared vocabulary of the log half (issue 7). Listeners (runtime/logs/) turn syslog lines,
 * Fluentd forward entries and NDJSON lines into `IncomingLog`s and hand them to a `LogSink`; the sink
 * routes each to its stream's mailbox — the entity `log/<stream>`, or with sub-streams
 * `log/<stream>#<n>` (n = hash of the source host mod `subStreams`) — and resolves once durable.
 *
 * Records are schemaless: `fields` is whatever the source sent (syslog's parsed header and message,
 * the forward record map, the NDJSON object). SQL rules and filters read fields by name (`status`,
 * `a.b` for nested ones).
 */

/** One record on its way in. */
export interface IncomingLog {
  /** Event time, ms since the epoch: the record's own timestamp, else when it arrived. */
  readonly time: number;
  /** The source host the record came from ('' when unknown): sub-streams are split by it. */
  readonly host: string;
  /** The record, schemaless (JSON-like values; msgpack-encodable). */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** One record as the mailbox and the search API carry it. */
export interface StoredLog {
  readonly time: number;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Where listeners put records. */
export interface LogSink {
  /**
   * Appends records of one stream (to the sub-streams their hosts hash to); resolves once every one is
   * durable in the mailbox (a forward `chunk` is acked only then). Rejects with ARGUS_ERR_INVALID_LOG
   * for a bad stream name, or with the transport's error (nothing of that call is then known durable).
   */
  append(stream: string, records: readonly IncomingLog[]): Promise<void>;
}

/** A stream name: 1-128 letters, digits, `.`, `_`, `-` (and not starting with `.` or `-`). */
export const STREAM_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export const isStreamName = (s: unknown): s is string => typeof s === 'string' && STREAM_NAME.test(s);

/**
 * A stream name made from what a source calls itself (a syslog APP-NAME, a forward tag): characters
 * a stream name cannot hold become `_`, cut to 128; `fallback` when nothing usable is left.
 */
export const streamNameFrom = (raw: string | null | undefined, fallback: string): string => {
  if (raw === null || raw === undefined || raw === '') return fallback;
  const cleaned = raw.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128);
  const name = /^[.-]/.test(cleaned) ? `_${cleaned.slice(1)}` : cleaned;
  return isStreamName(name) ? name : fallback;
};

/** The mailbox message of the log kind carrying records (listener → stream or sub-stream entity). */
export interface LogRecordsMessage {
  readonly type: 'log.records';
  readonly records: readonly StoredLog[];
}

/** Called on this node with records of a stream once they are durable in the mailbox (live tail). */
export type LogTapListener = (stream: string, records: readonly StoredLog[]) => void;

/** Where the live tail gets records from (actors/log/extension.ts makes it). */
export interface LogTap {
  /** Starts calling `listener`; returns the unsubscribe. */
  subscribe(listener: LogTapListener): () => void;
}
