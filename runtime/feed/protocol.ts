/**
 * The feed's wire protocol (docs/API.md, "Live event feed"): JSON text frames, one message each.
 *
 *   server → client   {"type":"hello","node":…}                         on connect
 *   client → server   {"type":"subscribe","filter":{…},"replay":N}      any time; replaces the filter
 *   server → client   {"type":"event","event":…}                        replayed ones first, then live
 *                     {"type":"subscribed","filter":…,"replayed":n}     after the replay
 *                     {"type":"error","error":…}                        a bad client frame; stays open
 *
 * Live tail of log streams (issue 7), alongside the event subscription and independent of it:
 *
 *   client → server   {"type":"tail","stream":"payments.nginx-access","filter":"status >= 500"}
 *                       filter optional (a log filter, actors/log/filter.ts); replaces an earlier tail
 *                       of the same stream; at most MAX_TAILS streams per connection
 *                     {"type":"untail","stream":…}
 *   server → client   {"type":"tailing","stream":…,"filter":…}         the tail is on (filter as given, '' for none)
 *                     {"type":"untailed","stream":…}                   the tail is off (also when it was not on)
 *                     {"type":"log","stream":…,"records":[{time,fields},…]}   records that passed the
 *                       filter; records that arrived together (one tap call) go in one frame
 *                     {"type":"sampled","stream":…,"dropped":N,"kept":M,"since":ms}   see below
 *
 * Sampling (tails.ts): a tail never closes a client. When more than `tailBufferBytes` wait to be sent
 * to a client, its log records are sampled, 1 in k kept (k doubles per batch while still over, halves
 * as it drains). A marker covers one stretch of sampling of one stream: from `since` (ms since the
 * epoch, when the stretch began) `dropped` records were left out and `kept` were sent — the last of
 * them in the log frame right after the marker, if one follows; else the marker comes alone once the
 * client has caught up. Every record that passed the filter is either sent or counted in exactly one
 * marker's `dropped`.
 *
 * Close codes the server uses: 1001 (node stopping), 1009 (client frame over 64 KiB), 4008 (slow
 * consumer: more than the per-client buffer of EVENT frames waiting to be sent — tail frames still
 * waiting are not counted, see client.ts).
 */

import { type FilterResult, parseLogFilter } from '../../actors/log/filter.ts';
import type { StoredLog } from '../../actors/log/types.ts';
import { isStreamName } from '../../actors/log/types.ts';
import { type FeedEvent, type FeedFilter, type Parsed, parseFilter } from './filter.ts';

/** The largest client frame; a bigger one closes the connection with 1009. */
export const MAX_CLIENT_FRAME = 64 * 1024;

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_SLOW_CONSUMER = 4008;

/** The subprotocol a client may offer next to its `bearer.<token>` entry; the server selects it. */
export const FEED_PROTOCOL = 'argus.feed.v1';

export interface SubscribeFrame {
  readonly type: 'subscribe';
  readonly filter: FeedFilter;
  /** How many past matching events to send first (at most what the replay buffer holds). */
  readonly replay: number;
}

/** A parsed log filter (null: every record passes). */
export type LogFilterExpr = Extract<FilterResult, { ok: true }>['expr'];

/** Streams one connection may tail at once. */
export const MAX_TAILS = 16;

export interface TailFrame {
  readonly type: 'tail';
  readonly stream: string;
  /** The filter as the client wrote it ('' for none). */
  readonly filter: string;
  readonly expr: LogFilterExpr;
}

export interface UntailFrame {
  readonly type: 'untail';
  readonly stream: string;
}

export type ClientFrame = SubscribeFrame | TailFrame | UntailFrame;

export type ServerFrame =
  | { readonly type: 'hello'; readonly node: string }
  | { readonly type: 'subscribed'; readonly filter: FeedFilter; readonly replayed: number }
  | { readonly type: 'event'; readonly event: FeedEvent }
  | { readonly type: 'error'; readonly error: string }
  | { readonly type: 'tailing'; readonly stream: string; readonly filter: string }
  | { readonly type: 'untailed'; readonly stream: string }
  | { readonly type: 'log'; readonly stream: string; readonly records: readonly StoredLog[] }
  | {
      readonly type: 'sampled';
      readonly stream: string;
      readonly dropped: number;
      readonly kept: number;
      readonly since: number;
    };

const FIELDS: Readonly<Record<ClientFrame['type'], ReadonlySet<string>>> = {
  subscribe: new Set(['type', 'filter', 'replay']),
  tail: new Set(['type', 'stream', 'filter']),
  untail: new Set(['type', 'stream']),
};

const isFrameType = (t: unknown): t is ClientFrame['type'] =>
  typeof t === 'string' && Object.hasOwn(FIELDS, t);

const streamOf = (raw: unknown): Parsed<string> =>
  isStreamName(raw)
    ? { ok: true, value: raw }
    : {
        ok: false,
        error: `stream: must be a stream name (1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'), got ${JSON.stringify(raw) ?? 'nothing'}`,
      };

/** Parses one client frame; the error names what is wrong (`replay: must be …`). */
export const parseClientFrame = (data: Buffer | string, isBinary: boolean): Parsed<ClientFrame> => {
  if (isBinary) return { ok: false, error: 'frames must be JSON text, got a binary frame' };
  let raw: unknown;
  try {
    raw = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch (e) {
    return { ok: false, error: `frame is not JSON: ${(e as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, error: "frame must be a JSON object with a string 'type'" };
  const frame = raw as Record<string, unknown>;
  if (!isFrameType(frame.type))
    return {
      ok: false,
      error: `type: must be 'subscribe', 'tail' or 'untail', got ${typeof frame.type === 'string' ? `'${frame.type}'` : typeof frame.type}`,
    };
  const known = FIELDS[frame.type];
  const unknown = Object.keys(frame).filter((k) => !known.has(k));
  if (unknown.length > 0)
    return { ok: false, error: `${unknown[0]}: unknown field (known: ${[...known].join(', ')})` };
  switch (frame.type) {
    case 'subscribe':
      return subscribeFrame(frame);
    case 'tail':
      return tailFrame(frame);
    case 'untail': {
      const stream = streamOf(frame.stream);
      return stream.ok ? { ok: true, value: { type: 'untail', stream: stream.value } } : stream;
    }
    default: {
      const never: never = frame.type;
      return never;
    }
  }
};

const tailFrame = (frame: Record<string, unknown>): Parsed<TailFrame> => {
  const stream = streamOf(frame.stream);
  if (!stream.ok) return stream;
  const text = frame.filter ?? '';
  if (typeof text !== 'string')
    return { ok: false, error: `filter: must be a log filter expression (text), got ${typeof text}` };
  const filter = parseLogFilter(text);
  if (!filter.ok) return filter;
  return { ok: true, value: { type: 'tail', stream: stream.value, filter: text, expr: filter.expr } };
};

const subscribeFrame = (frame: Record<string, unknown>): Parsed<SubscribeFrame> => {
  const replay = frame.replay ?? 0;
  if (typeof replay !== 'number' || !Number.isInteger(replay) || replay < 0)
    return {
      ok: false,
      error: `replay: must be a whole number of events (0 or more), got ${JSON.stringify(replay)}`,
    };
  const filter = parseFilter(frame.filter);
  if (!filter.ok) return filter;
  return { ok: true, value: { type: 'subscribe', filter: filter.value, replay } };
};

/**
 * A server frame as the bytes of one text message; bytes in an event (Uint8Array) as base64, bigints
 * as decimal text. Throws on what JSON cannot hold (a cycle).
 */
export const encodeFrame = (frame: ServerFrame): Buffer =>
  Buffer.from(
    JSON.stringify(frame, (_k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('base64') : typeof v === 'bigint' ? v.toString() : v,
    ),
    'utf8',
  );
