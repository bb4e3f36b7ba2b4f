/**
 * The msgpack pieces of the forward decoder (forward.ts), written for bounded memory: a msgpack or zip
 * bomb must not take the node down. Pure: no sockets, no clock.
 *
 * - `readHeader` reads one msgpack header by itself (kind, header bytes, payload bytes or item count)
 *   without decoding or allocating, so a resumable scanner can walk a request as its bytes arrive and
 *   refuse a declared array/map/str/bin/ext length that could not fit in the bytes still allowed before
 *   anything is allocated (msgpackr would allocate first).
 * - `MsgpackReader` decodes values from complete bytes, checking every declared length against the bytes
 *   present. It is our own because msgpackr maps ext type 0 (Fluentd's EventTime) to `undefined`
 *   process-wide, and changing that with `addExtension` would change it for every other user of msgpackr.
 *   Ext values come back as `{ ext, data }` for the caller to interpret.
 *
 * Malformed input throws `DecodeError` (the caller decides what it costs: the request or the connection).
 */

/** Deeper nesting is refused: the reader recurses, and no log record needs it. */
export const MAX_DEPTH = 64;

export type Kind = 'nil' | 'bool' | 'int' | 'float' | 'str' | 'bin' | 'ext' | 'array' | 'map';

export interface Header {
  readonly kind: Kind;
  /** Header bytes (for ext: including the type byte). */
  readonly size: number;
  /** Payload bytes (str, bin, ext, fixed scalars after the first byte) or item count (array, map). */
  readonly n: number;
}

const h = (kind: Kind, size: number, n: number): Header => ({ kind, size, n });
const FIXED: Readonly<Record<number, Header>> = {
  192: h('nil', 1, 0),
  194: h('bool', 1, 0),
  195: h('bool', 1, 0),
  202: h('float', 1, 4),
  203: h('float', 1, 8),
  204: h('int', 1, 1),
  205: h('int', 1, 2),
  206: h('int', 1, 4),
  207: h('int', 1, 8),
  208: h('int', 1, 1),
  209: h('int', 1, 2),
  210: h('int', 1, 4),
  211: h('int', 1, 8),
  212: h('ext', 2, 1),
  213: h('ext', 2, 2),
  214: h('ext', 2, 4),
  215: h('ext', 2, 8),
  216: h('ext', 2, 16),
};
/** Headers with a length field: kind and width of the length (1, 2 or 4 bytes). */
const SIZED: Readonly<Record<number, readonly [Kind, number]>> = {
  196: ['bin', 1],
  197: ['bin', 2],
  198: ['bin', 4],
  199: ['ext', 1],
  200: ['ext', 2],
  201: ['ext', 4],
  217: ['str', 1],
  218: ['str', 2],
  219: ['str', 4],
  220: ['array', 2],
  221: ['array', 4],
  222: ['map', 2],
  223: ['map', 4],
};
const SCALAR_INT = h('int', 1, 0);

/** The header at `pos`, `undefined` when its bytes have not all arrived; throws on byte 0xc1. */
export const readHeader = (buf: Buffer, pos: number, end: number, base: number): Header | undefined => {
  if (pos >= end) return undefined;
  const b = buf[pos]!;
  if (b <= 0x7f || b >= 0xe0) return SCALAR_INT;
  if (b <= 0x8f) return h('map', 1, b & 0x0f);
  if (b <= 0x9f) return h('array', 1, b & 0x0f);
  if (b <= 0xbf) return h('str', 1, b & 0x1f);
  const fixed = FIXED[b];
  if (fixed !== undefined) return fixed;
  const sized = SIZED[b];
  if (sized === undefined)
    throw new DecodeError(`invalid msgpack byte 0x${b.toString(16)} at offset ${pos - base}`);
  const [kind, width] = sized;
  const size = 1 + width + (kind === 'ext' ? 1 : 0);
  if (pos + size > end) return undefined;
  const n = width === 1 ? buf[pos + 1]! : width === 2 ? buf.readUInt16BE(pos + 1) : buf.readUInt32BE(pos + 1);
  return h(kind, size, n);
};

export class DecodeError extends Error {}

/** Items a container header stands for (a map entry is a key and a value). */
export const itemsOf = (header: Header): number =>
  header.kind === 'array' ? header.n : header.kind === 'map' ? 2 * header.n : 0;
export const payloadOf = (header: Header): number =>
  header.kind === 'array' || header.kind === 'map' ? 0 : header.n;

// ---------------------------------------------------------------------------------------------------
// Values

/** A msgpack ext value other than EventTime where it is expected. */
export interface ExtValue {
  readonly ext: number;
  readonly data: Buffer;
}

export const isExt = (v: unknown): v is ExtValue =>
  typeof v === 'object' && v !== null && 'ext' in v && Buffer.isBuffer((v as ExtValue).data);

/** Sets a key without `__proto__` turning into a prototype change. */
const setKey = (target: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
};

/**
 * Decodes msgpack values from `buf[pos, end)`, checking each declared length against the bytes present
 * before allocating. 64-bit integers become numbers (exact up to 2^53): records end up as JSON.
 */
export class MsgpackReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
    /** Where the request starts: offsets in errors are counted from it. */
    readonly base = pos,
  ) {}

  header(): Header {
    const header = readHeader(this.buf, this.pos, this.end, this.base);
    if (header === undefined || this.pos + header.size + payloadOf(header) > this.end)
      throw new DecodeError(`truncated msgpack value at offset ${this.pos - this.base}`);
    if (itemsOf(header) > this.end - this.pos - header.size)
      throw new DecodeError(
        `a ${header.kind} at offset ${this.pos - this.base} declares ${header.n} entries but only ${this.end - this.pos - header.size} bytes follow`,
      );
    return header;
  }

  /** The raw payload of a str or bin (PackedForward entries), or undefined when the value is neither. */
  rawBytes(): Buffer | undefined {
    const header = readHeader(this.buf, this.pos, this.end, this.base);
    if (header === undefined || (header.kind !== 'str' && header.kind !== 'bin')) return undefined;
    this.header();
    const start = this.pos + header.size;
    this.pos = start + header.n;
    return this.buf.subarray(start, this.pos);
  }

  value(depth = 0): unknown {
    if (depth > MAX_DEPTH) throw new DecodeError(`values nested deeper than ${MAX_DEPTH} levels`);
    const at = this.pos;
    const header = this.header();
    const { buf } = this;
    const b = buf[at]!;
    const start = at + header.size;
    this.pos = start + payloadOf(header);
    switch (header.kind) {
      case 'nil':
        return null;
      case 'bool':
        return b === 0xc3;
      case 'int':
        return readInt(buf, b, start);
      case 'float':
        return header.n === 4 ? buf.readFloatBE(start) : buf.readDoubleBE(start);
      case 'str':
        return buf.toString('utf8', start, this.pos);
      case 'bin':
        return Buffer.from(buf.subarray(start, this.pos));
      case 'ext':
        return { ext: buf.readInt8(start - 1), data: Buffer.from(buf.subarray(start, this.pos)) };
      case 'array': {
        const out: unknown[] = [];
        for (let i = 0; i < header.n; i++) out.push(this.value(depth + 1));
        return out;
      }
      case 'map': {
        const out: Record<string, unknown> = {};
        for (let i = 0; i < header.n; i++) {
          const key = this.value(depth + 1);
          if (typeof key !== 'string' && typeof key !== 'number')
            throw new DecodeError(`a key of the map at offset ${at - this.base} is not a string or number`);
          setKey(out, String(key), this.value(depth + 1));
        }
        return out;
      }
      default: {
        const unreachable: never = header.kind;
        throw new DecodeError(`unknown kind ${String(unreachable)}`);
      }
    }
  }
}

const readInt = (buf: Buffer, b: number, at: number): number => {
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  switch (b) {
    case 0xcc:
      return buf[at]!;
    case 0xcd:
      return buf.readUInt16BE(at);
    case 0xce:
      return buf.readUInt32BE(at);
    case 0xcf:
      return Number(buf.readBigUInt64BE(at));
    case 0xd0:
      return buf.readInt8(at);
    case 0xd1:
      return buf.readInt16BE(at);
    case 0xd2:
      return buf.readInt32BE(at);
    default:
      return Number(buf.readBigInt64BE(at));
  }
};
