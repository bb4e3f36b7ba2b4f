/**
 * Byte layouts of the values the journal stores raw (README.md, "Layout"). Records and snapshots are
 * framed by hand rather than with msgpack: they are the hot path, their payloads are already encoded
 * bytes, and a fixed frame gives back exactly the bytes that went in as a plain Uint8Array.
 *
 * Record frame:   u32 key byte length (0xffffffff = no key) | key UTF-8 | value bytes
 * Snapshot frame: u32 partition | f64 offset | state bytes
 * Integers are big-endian.
 */
import { ArgusError } from '../errors.ts';

const NO_KEY = 0xffff_ffff;

export interface RecordFrame {
  readonly key: string | undefined;
  readonly value: Uint8Array;
}

// Buffer rather than TextEncoder/DataView: this runs once per record on append and on read, and Buffer's
// pooled allocation and native UTF-8 writes are several times cheaper per small record.
export const encodeRecord = (key: string | undefined, value: Uint8Array): Buffer => {
  const keyLength = key === undefined ? 0 : Buffer.byteLength(key);
  const frame = Buffer.allocUnsafe(4 + keyLength + value.length);
  frame.writeUInt32BE(key === undefined ? NO_KEY : keyLength, 0);
  if (key !== undefined) frame.write(key, 4, keyLength, 'utf8');
  frame.set(value, 4 + keyLength);
  return frame;
};

/** `frame` must be a copy owned by the caller (lmdb-js range reads are): the value is a view into it. */
export const decodeRecord = (frame: Buffer): RecordFrame => {
  if (frame.length < 4) throw corrupt('record', frame.length);
  const keyLength = frame.readUInt32BE(0);
  if (keyLength === NO_KEY) return { key: undefined, value: plainView(frame, 4, frame.length) };
  if (4 + keyLength > frame.length) throw corrupt('record', frame.length);
  return {
    key: frame.toString('utf8', 4, 4 + keyLength),
    value: plainView(frame, 4 + keyLength, frame.length),
  };
};

export interface SnapshotFrame {
  readonly partition: number;
  readonly offset: number;
  readonly state: Uint8Array;
}

export const encodeSnapshot = (partition: number, offset: number, state: Uint8Array): Buffer => {
  const frame = Buffer.allocUnsafe(12 + state.length);
  frame.writeUInt32BE(partition, 0);
  frame.writeDoubleBE(offset, 4);
  frame.set(state, 12);
  return frame;
};

export const decodeSnapshot = (frame: Buffer): SnapshotFrame => {
  if (frame.length < 12) throw corrupt('snapshot', frame.length);
  return {
    partition: frame.readUInt32BE(0),
    offset: frame.readDoubleBE(4),
    state: plainView(frame, 12, frame.length),
  };
};

/**
 * lmdb-js hands back Node Buffers; callers get plain Uint8Arrays (what the boundary promises, and what
 * `toEqual` compares against), as a view over the same memory rather than another copy.
 */
const plainView = (bytes: Uint8Array, start: number, end: number): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);

const corrupt = (what: string, length: number): ArgusError =>
  new ArgusError('ARGUS_ERR_DECODE', `a stored ${what} frame of ${length} bytes is truncated`, {
    what,
    length,
  });
