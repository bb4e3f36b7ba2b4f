/**
 * The mailbox wire format: a msgpack array `[version, id, kind, key, type, timestamp, payload]`.
 * An array (not a map) keeps records small and decoding fast; the version comes first so a reader
 * can refuse a format it does not know before touching anything else. msgpackr's plain pack/unpack
 * is used on purpose: record structures would need shared structures stored durably for every node
 * to decode every message (measured: no faster for envelopes this small).
 */
import { pack, unpack } from 'msgpackr';

export const ENVELOPE_VERSION = 1;

export interface Envelope<P = unknown> {
  readonly id: string;
  readonly kind: string;
  readonly key: string;
  readonly type: string;
  /** Wall-clock ms when it was sent. */
  readonly timestamp: number;
  readonly payload: P;
}

export type DecodeResult =
  | { readonly ok: true; readonly envelope: Envelope }
  | {
      readonly ok: false;
      readonly reason: 'undecodable' | 'unknown-version' | 'malformed';
      readonly error: string;
    };

export const encodeEnvelope = (e: Envelope): Uint8Array =>
  pack([ENVELOPE_VERSION, e.id, e.kind, e.key, e.type, e.timestamp, e.payload]);

const fail = (reason: 'undecodable' | 'unknown-version' | 'malformed', error: string): DecodeResult => ({
  ok: false,
  reason,
  error,
});

/** Never throws: whatever the bytes, the answer says what they are or why they are not an envelope. */
export const decodeEnvelope = (bytes: Uint8Array): DecodeResult => {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch (e) {
    return fail('undecodable', `not msgpack (${bytes.length} bytes): ${(e as Error).message}`);
  }
  if (!Array.isArray(raw)) return fail('malformed', `expected an envelope array, got ${typeName(raw)}`);
  const [version, id, kind, key, type, timestamp, payload] = raw as unknown[];
  if (version !== ENVELOPE_VERSION)
    return fail(
      'unknown-version',
      `unknown envelope version ${JSON.stringify(version) ?? String(version)} (this node reads ${ENVELOPE_VERSION})`,
    );
  if (raw.length !== 7) return fail('malformed', `envelope v1 has 7 fields, got ${raw.length}`);
  if (typeof id !== 'string' || id === '')
    return fail('malformed', `field id must be a non-empty string, got ${typeName(id)}`);
  if (typeof kind !== 'string' || kind === '')
    return fail('malformed', `field kind must be a non-empty string, got ${typeName(kind)}`);
  if (typeof key !== 'string' || key === '')
    return fail('malformed', `field key must be a non-empty string, got ${typeName(key)}`);
  if (typeof type !== 'string' || type === '')
    return fail('malformed', `field type must be a non-empty string, got ${typeName(type)}`);
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp))
    return fail('malformed', `field timestamp must be a number, got ${typeName(timestamp)}`);
  return { ok: true, envelope: { id, kind, key, type, timestamp, payload } };
};

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

let counter = 0;
const processTag = Math.floor(Math.random() * 36 ** 6)
  .toString(36)
  .padStart(6, '0');

/** A message id unique across processes: wall time, a per-process random tag and a counter. */
export const newMessageId = (now: number): string => {
  counter = (counter + 1) % 2 ** 32;
  return `${now.toString(36)}-${processTag}-${counter.toString(36)}`;
};

/** 32-bit FNV-1a over a string's UTF-16 code units. */
export const fnv1a = (key: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
};

/** The shard of a key: FNV-1a over the key's UTF-16 code units, modulo the shard count. */
export const shardOf = (key: string, shards: number): number => fnv1a(key) % shards;

/** Longest entity key. */
export const MAX_KEY_LENGTH = 512;

/**
 * Whether a string can be an entity key: 1-512 characters, no control characters (the key is the
 * entity's id under its shard supervisor, which refuses those).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f]/;
export const isEntityKey = (key: unknown): boolean =>
  typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY_LENGTH && !CONTROL.test(key);
