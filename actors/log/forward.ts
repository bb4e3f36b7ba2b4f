/**
 * The Fluentd forward protocol v1 (github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1),
 * decoded from the bytes of one TCP connection into events. Pure: no sockets, no clock.
 *
 * - The four carrier modes, told apart by the second element of the request array, as the spec says:
 *   Message `[tag, time, record, option?]`, Forward `[tag, [[time, record], …], option?]`,
 *   PackedForward `[tag, bin|str of concatenated msgpack entries, option?]` and CompressedPackedForward
 *   (PackedForward whose option has `compressed: 'gzip'`; the gzip data may be several members).
 * - Time is an EventTime (msgpack ext type 0, 8 bytes: uint32 seconds, uint32 nanoseconds, big-endian)
 *   or a number of seconds (integer, or float as some clients send). Entries carry it in ms plus the
 *   nanoseconds within the second, so an EventTime is kept exactly.
 * - The `chunk` option is handed to `onEvents`: the listener answers `ackFor(chunk)` once the records
 *   are durable, which is what makes Fluentd's and Fluent Bit's `require_ack_response` work.
 * - Only the handshake-free case: no HELO/PING/PONG, no `shared_key`. A server that does not require
 *   authentication is in the transport phase from the first byte (spec, "Connection Phases").
 * - A `nil` request is a heartbeat and is skipped.
 *
 * Bounded memory (a msgpack or zip bomb must not take the node down): a request may not exceed
 * `maxMessageBytes` nor carry more than `maxEntries` entries. The bytes are walked by a resumable scanner
 * over msgpack headers (msgpack-scan.ts), so a declared length that could not fit in the bytes still
 * allowed is refused before anything is allocated; values are then decoded by msgpack-scan.ts's bounded
 * reader. Gzip output is capped with zlib's `maxOutputLength`.
 *
 * Errors are data (`ForwardError`): what, which mode, which limit, and whether the connection can go on.
 * The protocol has no resync point, so after a framing error (`fatal`) the listener must close the
 * connection; the events of earlier complete requests have already been delivered. A bad request whose
 * extent is known (a tag that is not a string) and a bad entry (a record that is not a map) are not fatal:
 * the rest of the request and the connection are kept.
 */
import { gunzipSync } from 'node:zlib';
import {
  DecodeError,
  type Header,
  isExt,
  itemsOf,
  MAX_DEPTH,
  MsgpackReader,
  payloadOf,
  readHeader,
} from './msgpack-scan.ts';
export type ForwardMode = 'Message' | 'Forward' | 'PackedForward' | 'CompressedPackedForward';

export interface ForwardEntry {
  /** Event time in ms since the Unix epoch. */
  readonly time: number;
  /** Nanoseconds within the second (0 to 999,999,999): seconds * 1e9 + nanos is the exact EventTime. */
  readonly nanos: number;
  readonly record: Record<string, unknown>;
}

export interface ForwardMessageInfo {
  readonly mode: ForwardMode;
  /** The `chunk` option: answer `ackFor(chunk)` once the entries are durable. */
  readonly chunk: string | undefined;
  /** The option map as sent (empty when absent). */
  readonly options: Record<string, unknown>;
}

export interface ForwardError {
  readonly message: string;
  readonly mode: ForwardMode | undefined;
  /** True: the stream cannot be read further and the connection must be closed. */
  readonly fatal: boolean;
  /** The request's `chunk`, when a whole request was rejected (so the listener may still answer it). */
  readonly chunk?: string;
}

export interface ForwardDecoderOptions {
  /** Largest request, in bytes, and largest gzip output (default 16 MiB). */
  readonly maxMessageBytes?: number;
  /** Most entries in one request (default 100,000). */
  readonly maxEntries?: number;
  readonly onEvents: (tag: string, entries: ForwardEntry[], info: ForwardMessageInfo) => void;
  readonly onError: (error: ForwardError) => void;
}

export const FORWARD_DEFAULTS = { maxMessageBytes: 16 * 1024 * 1024, maxEntries: 100_000 } as const;
/** Deeper nesting is refused: the decoder recurses, and no log record needs it. */

/** The response to a request that carried `chunk`: the msgpack map `{ack: chunk}`. */
export const ackFor = (chunk: string): Buffer => {
  const value = Buffer.from(chunk, 'utf8');
  const n = value.length;
  const header =
    n < 32
      ? [0xa0 | n]
      : n < 0x100
        ? [0xd9, n]
        : n < 0x10000
          ? [0xda, n >> 8, n & 0xff]
          : [0xdb, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([0x81, 0xa3, 0x61, 0x63, 0x6b, ...header]), value]);
};

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !isExt(v);

/** An entry's time as ms and nanoseconds, or why it is not one. */
export const eventTime = (v: unknown): { time: number; nanos: number } | string => {
  if (isExt(v)) {
    if (v.ext !== 0 || v.data.length !== 8)
      return `time is an ext of type ${v.ext} and ${v.data.length} bytes, not an EventTime (type 0, 8 bytes)`;
    const seconds = v.data.readUInt32BE(0);
    const nanos = v.data.readUInt32BE(4);
    if (nanos > 999_999_999) return `EventTime nanoseconds ${nanos} out of range`;
    return { time: seconds * 1000 + Math.floor(nanos / 1e6), nanos };
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    return `time ${describe(v)} is not an EventTime nor a non-negative number of seconds`;
  const seconds = Math.floor(v);
  const nanos = Math.min(999_999_999, Math.round((v - seconds) * 1e9));
  return { time: seconds * 1000 + Math.floor(nanos / 1e6), nanos };
};

const describe = (v: unknown): string =>
  v === null ? 'nil' : Array.isArray(v) ? 'an array' : isMap(v) ? 'a map' : JSON.stringify(String(v));

/** `[time, record]` as an entry, or why it is not one. */
const entryOf = (v: unknown, record: unknown = undefined): ForwardEntry | string => {
  const [timeValue, recordValue] = record === undefined ? (Array.isArray(v) ? v : []) : [v, record];
  if (record === undefined && (!Array.isArray(v) || v.length !== 2))
    return `entry is ${describe(v)}, not a [time, record] array`;
  const time = eventTime(timeValue);
  if (typeof time === 'string') return time;
  if (!isMap(recordValue)) return `record is ${describe(recordValue)}, not a map`;
  return { time: time.time, nanos: time.nanos, record: recordValue };
};

// ---------------------------------------------------------------------------------------------------
// The streaming decoder

/** The carrier, from the first byte of a request's second element (the spec: "inspecting the second element"). */
const carrierOf = (byte: number): 'Message' | 'Forward' | 'Packed' => {
  if ((byte >= 0x90 && byte <= 0x9f) || byte === 0xdc || byte === 0xdd) return 'Forward';
  if ((byte >= 0xa0 && byte <= 0xbf) || (byte >= 0xc4 && byte <= 0xc6) || (byte >= 0xd9 && byte <= 0xdb))
    return 'Packed';
  return 'Message';
};

export type ForwardState = 'open' | 'failed';

/**
 * Feeds on a connection's bytes (`push`) and reports each complete request's events (`onEvents`) and
 * each problem (`onError`). After a fatal error `state` is `'failed'` and further bytes are ignored.
 */
export class ForwardDecoder {
  private readonly maxMessageBytes: number;
  private readonly maxEntries: number;
  private state_: ForwardState = 'open';
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes `[start, len)` of `buf` are buffered; the current request starts at `start`. */
  private start = 0;
  private len = 0;
  // The scanner's place in the current request: next header, items still owed per open container.
  private scanPos = 0;
  private stack: number[] = [];
  private owed = 0;
  private rootLength = 0;
  /** The carrier mode, once the scanner has seen the request's second element (compression not known yet). */
  private scanMode: ForwardMode | undefined;

  constructor(private readonly options: ForwardDecoderOptions) {
    this.maxMessageBytes = options.maxMessageBytes ?? FORWARD_DEFAULTS.maxMessageBytes;
    this.maxEntries = options.maxEntries ?? FORWARD_DEFAULTS.maxEntries;
  }

  get state(): ForwardState {
    return this.state_;
  }

  /** Bytes held for a request not complete yet. */
  get buffered(): number {
    return this.len - this.start;
  }

  push(chunk: Buffer): void {
    if (this.state_ === 'failed') return;
    this.append(chunk);
    try {
      for (;;) {
        const end = this.scan();
        if (end < 0) break;
        const start = this.start;
        this.start = end;
        const mode = this.scanMode;
        this.resetScan();
        this.deliverWhole(start, end, mode);
      }
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.fail(error.message);
      return;
    }
    this.compact();
  }

  private append(chunk: Buffer): void {
    if (this.len + chunk.length > this.buf.length) {
      this.compact();
      if (this.len + chunk.length > this.buf.length) {
        // Grows by doubling: the scanner has bounded what a request may still claim, and what arrives
        // beyond the current request is at most this chunk.
        const grown = Buffer.allocUnsafe(Math.max(this.len + chunk.length, 2 * this.buf.length, 4096));
        this.buf.copy(grown, 0, 0, this.len);
        this.buf = grown;
      }
    }
    chunk.copy(this.buf, this.len);
    this.len += chunk.length;
  }

  /** Drops the bytes of delivered requests; a large idle buffer is given back. */
  private compact(): void {
    if (this.start === 0) return;
    const kept = this.len - this.start;
    if (kept === 0 && this.buf.length > 1 << 16) this.buf = Buffer.alloc(0);
    else this.buf.copy(this.buf, 0, this.start, this.len);
    this.scanPos -= this.start;
    this.len = kept;
    this.start = 0;
  }

  private resetScan(): void {
    this.scanPos = this.start;
    this.stack = [];
    this.owed = 0;
    this.rootLength = 0;
    this.scanMode = undefined;
  }

  private fail(message: string): void {
    const mode = this.scanMode;
    this.state_ = 'failed';
    this.buf = Buffer.alloc(0);
    this.len = this.start = this.scanPos = 0;
    const where = mode === undefined ? '' : `${mode} mode: `;
    this.options.onError({
      message: `${where}${message}; the connection cannot continue`,
      mode,
      fatal: true,
    });
  }

  private limitError(what: string): DecodeError {
    return new DecodeError(`${what} (maxMessageBytes ${this.maxMessageBytes})`);
  }

  /**
   * Walks msgpack headers from `scanPos` without decoding; returns the end of the request once it is
   * all buffered, -1 while bytes are missing. Resumes where it stopped on the next push.
   */
  private scan(): number {
    const limit = this.start + this.maxMessageBytes;
    for (;;) {
      if (this.scanPos > this.len) return -1; // a str/bin/ext payload is still arriving
      while (this.stack.length > 0 && this.stack[this.stack.length - 1] === 0) this.stack.pop();
      if (this.stack.length === 0 && this.scanPos > this.start) return this.scanPos;
      if (this.scanPos === this.len && this.len - this.start >= this.maxMessageBytes)
        throw this.limitError(`a request is longer than ${this.maxMessageBytes} bytes`);
      const at = this.scanPos;
      const header = readHeader(this.buf, at, this.len, this.start);
      if (header === undefined) {
        if (this.len - this.start >= this.maxMessageBytes)
          throw this.limitError(`a request is longer than ${this.maxMessageBytes} bytes`);
        return -1;
      }
      if (this.stack.length === 0) this.checkRoot(header, at);
      else if (this.stack.length === 1 && this.rootLength - this.stack[0]! === 1)
        this.checkEntries(header, at);
      if (this.stack.length > MAX_DEPTH)
        throw new DecodeError(`values nested deeper than ${MAX_DEPTH} levels at offset ${at - this.start}`);
      if (this.stack.length > 0) {
        this.stack[this.stack.length - 1]!--;
        this.owed--;
      }
      const after = at + header.size;
      const payload = payloadOf(header);
      if (after + payload > limit)
        throw this.limitError(
          `a ${header.kind} of ${payload} bytes at offset ${at - this.start} would end past the request limit`,
        );
      const items = itemsOf(header);
      // Each value takes at least a byte: more items than bytes left under the limit cannot be real.
      if (this.owed + items > limit - after)
        throw this.limitError(
          `a ${header.kind} at offset ${at - this.start} declares ${header.n} entries, more than the ${limit - after} bytes left`,
        );
      this.scanPos = after + payload;
      if (items > 0) {
        this.stack.push(items);
        this.owed += items;
      }
    }
  }

  /** A request is an array of 2 to 4 elements, or nil (a heartbeat). */
  private checkRoot(header: Header, at: number): void {
    if (header.kind === 'nil') return;
    // The spec says a server SHOULD ignore other values, but with no resync point a stray value means
    // the stream is not msgpack forward requests (in_forward's JSON mode, a desynchronised peer): the
    // rest would be misread, so the connection is closed instead.
    if (header.kind !== 'array')
      throw new DecodeError(
        `a request is a ${header.kind} at offset ${at - this.start}, not an array [tag, …] (JSON requests are not supported)`,
      );
    if (header.n < 2 || header.n > 4)
      throw new DecodeError(
        `a request is an array of ${header.n} elements; expected [tag, time, record, option?] or [tag, entries, option?]`,
      );
    this.rootLength = header.n;
  }

  /** Forward mode's entries array may not claim more than `maxEntries`. */
  private checkEntries(header: Header, at: number): void {
    const carrier = carrierOf(this.buf[at]!);
    this.scanMode = carrier === 'Packed' ? 'PackedForward' : carrier;
    if (header.kind === 'array' && header.n > this.maxEntries)
      throw new DecodeError(
        `${header.n} entries declared at offset ${at - this.start}, more than maxEntries ${this.maxEntries}`,
      );
  }

  /**
   * A value the scanner could not judge (a map key that is a map, say) skips only its request: its
   * extent is known, so the connection can go on.
   */
  private deliverWhole(start: number, end: number, mode: ForwardMode | undefined): void {
    try {
      this.deliver(start, end);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      const where = mode === undefined ? '' : `${mode} mode: `;
      this.options.onError({ message: `${where}${error.message}; request skipped`, mode, fatal: false });
    }
  }

  /** Decodes the complete request `buf[start, end)` and reports its events and entry errors. */
  private deliver(start: number, end: number): void {
    const reader = new MsgpackReader(this.buf, start, end);
    const root = reader.header();
    if (root.kind === 'nil') return;
    reader.pos = start + root.size;
    const tag = reader.value();
    const carrier = carrierOf(this.buf[reader.pos]!);
    const second = carrier === 'Packed' ? reader.rawBytes() : reader.value();
    const rest: unknown[] = [];
    for (let i = 2; i < root.n; i++) rest.push(reader.value());
    const optionIndex = carrier === 'Message' ? 1 : 0;
    const options = rest.length > optionIndex && isMap(rest[optionIndex]) ? rest[optionIndex] : {};
    const chunk = typeof options.chunk === 'string' ? options.chunk : undefined;
    const mode: ForwardMode =
      carrier !== 'Packed'
        ? carrier
        : options.compressed === 'gzip'
          ? 'CompressedPackedForward'
          : 'PackedForward';
    const reject = (message: string): void => {
      this.options.onError({
        message: `${mode} mode: ${message}`,
        mode,
        fatal: false,
        ...(chunk && { chunk }),
      });
    };
    if (typeof tag !== 'string') {
      reject(`tag is ${describe(tag)}, not a string; request skipped`);
      return;
    }
    const bad = (index: number, problem: string): void => {
      reject(`tag '${tag}' entry ${index}: ${problem}; entry skipped`);
    };
    const entries: ForwardEntry[] = [];
    const keep = (v: unknown, index: number, record?: unknown): void => {
      const entry = entryOf(v, record);
      if (typeof entry === 'string') bad(index, entry);
      else entries.push(entry);
    };
    if (carrier === 'Message') {
      if (root.n < 3) {
        reject('a Message request needs [tag, time, record]; request skipped');
        return;
      }
      keep(second, 0, rest[0] ?? null);
    } else if (carrier === 'Forward') {
      const list = second as unknown[];
      for (let i = 0; i < list.length; i++) keep(list[i], i);
    } else {
      const stream = mode === 'CompressedPackedForward' ? this.gunzip(second as Buffer, reject) : second;
      if (stream === undefined) return;
      const problem = this.unpackStream(stream as Buffer, entries, bad);
      if (problem !== undefined) {
        reject(`${problem}; request skipped`);
        return;
      }
    }
    this.options.onEvents(tag, entries, { mode, chunk, options });
  }

  private gunzip(data: Buffer, reject: (message: string) => void): Buffer | undefined {
    try {
      // Concatenated gzip members are read as one stream; the output is capped (zip bomb).
      return gunzipSync(data, { maxOutputLength: this.maxMessageBytes });
    } catch (error) {
      const code = (error as { code?: string }).code;
      reject(
        code === 'ERR_BUFFER_TOO_LARGE'
          ? `gzip entries inflate past maxMessageBytes ${this.maxMessageBytes}; request skipped`
          : `entries are not valid gzip (${(error as Error).message}); request skipped`,
      );
      return undefined;
    }
  }

  /** Reads a MessagePackEventStream into `entries`; returns why the whole stream is refused, if it is. */
  private unpackStream(
    stream: Buffer,
    entries: ForwardEntry[],
    bad: (index: number, problem: string) => void,
  ): string | undefined {
    const reader = new MsgpackReader(stream, 0, stream.length);
    const kept: ForwardEntry[] = [];
    let index = 0;
    try {
      while (reader.pos < stream.length) {
        if (index >= this.maxEntries) return `more than maxEntries ${this.maxEntries} entries`;
        const entry = entryOf(reader.value());
        if (typeof entry === 'string') bad(index, entry);
        else kept.push(entry);
        index++;
      }
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return `entry ${index} of the packed entries: ${error.message}`;
    }
    entries.push(...kept);
    return undefined;
  }
}
