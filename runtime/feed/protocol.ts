/**
 * The feed's wire protocol (docs/API.md, "Live event feed"): JSON text frames, one message each.
 *
 *   server → client   {"type":"hello","node":…}                         on connect
 *   client → server   {"type":"subscribe","filter":{…},"replay":N}      any time; replaces the filter
 *   server → client   {"type":"event","event":…}                        replayed ones first, then live
 *                     {"type":"subscribed","filter":…,"replayed":n}     after the replay
 *                     {"type":"error","error":…}                        a bad client frame; stays open
 *
 * Close codes the server uses: 1001 (node stopping), 1009 (client frame over 64 KiB), 4008 (slow
 * consumer: more than the per-client buffer waiting to be sent).
 */
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

export type ClientFrame = SubscribeFrame;

export type ServerFrame =
  | { readonly type: 'hello'; readonly node: string }
  | { readonly type: 'subscribed'; readonly filter: FeedFilter; readonly replayed: number }
  | { readonly type: 'event'; readonly event: FeedEvent }
  | { readonly type: 'error'; readonly error: string };

const SUBSCRIBE_FIELDS = new Set(['type', 'filter', 'replay']);

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
  if (frame.type !== 'subscribe')
    return {
      ok: false,
      error: `type: must be 'subscribe', got ${typeof frame.type === 'string' ? `'${frame.type}'` : typeof frame.type}`,
    };
  const unknown = Object.keys(frame).filter((k) => !SUBSCRIBE_FIELDS.has(k));
  if (unknown.length > 0)
    return { ok: false, error: `${unknown[0]}: unknown field (known: ${[...SUBSCRIBE_FIELDS].join(', ')})` };
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
