/**
 * A Fluentd forward protocol v1 client written from the spec
 * (github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1), byte for byte, for tests: the
 * four modes' requests built by hand around msgpackr-packed tags, records and options, EventTime as
 * ext type 0 (`D7 00`, then seconds and nanoseconds as big-endian uint32), PackedForward's entries as a
 * bin, CompressedPackedForward's as a gzip bin with `compressed: 'gzip'`, and the `{ack: chunk}`
 * answers read back from the socket.
 */
import { connect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Packr, unpackMultiple } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });
/** A msgpack value as msgpackr writes it (no records extension, maps as maps). */
export const pack = (v: unknown): Buffer => packr.pack(v);

export interface ClientEntry {
  /** Seconds since the epoch, and nanoseconds within the second. */
  readonly seconds: number;
  readonly nanos: number;
  readonly record: Record<string, unknown>;
}

/** EventTime: fixext 8 (`D7`), type 0, uint32 seconds, uint32 nanoseconds, big-endian. */
export const eventTime = (seconds: number, nanos: number): Buffer => {
  const b = Buffer.alloc(10);
  b[0] = 0xd7;
  b[1] = 0x00;
  b.writeUInt32BE(seconds, 2);
  b.writeUInt32BE(nanos, 6);
  return b;
};

/** One `[time, record]` entry (fixarray of 2). */
export const entryBytes = (e: ClientEntry): Buffer =>
  Buffer.concat([Buffer.from([0x92]), eventTime(e.seconds, e.nanos), pack(e.record)]);

/** A MessagePackEventStream: the entries, concatenated. */
export const eventStream = (entries: readonly ClientEntry[]): Buffer =>
  Buffer.concat(entries.map(entryBytes));

/** bin 32 (`C6`, uint32 length) around `data`. */
const bin32 = (data: Buffer): Buffer => {
  const h = Buffer.alloc(5);
  h[0] = 0xc6;
  h.writeUInt32BE(data.length, 1);
  return Buffer.concat([h, data]);
};

/** array 16 (`DC`) header for n items. */
const array16 = (n: number): Buffer => Buffer.from([0xdc, n >> 8, n & 0xff]);

export type Option = Record<string, unknown>;

/** Message mode: `[tag, time, record, option?]`. */
export const messageRequest = (tag: string, e: ClientEntry, option?: Option): Buffer =>
  Buffer.concat([
    Buffer.from([option ? 0x94 : 0x93]),
    pack(tag),
    eventTime(e.seconds, e.nanos),
    pack(e.record),
    ...(option ? [pack(option)] : []),
  ]);

/** Forward mode: `[tag, [[time, record], …], option?]`. */
export const forwardRequest = (tag: string, entries: readonly ClientEntry[], option?: Option): Buffer =>
  Buffer.concat([
    Buffer.from([option ? 0x93 : 0x92]),
    pack(tag),
    array16(entries.length),
    ...entries.map(entryBytes),
    ...(option ? [pack(option)] : []),
  ]);

/** PackedForward: `[tag, bin(entries), option?]`; `size` is the entry count, as out_forward sends it. */
export const packedForwardRequest = (tag: string, entries: readonly ClientEntry[], option: Option = {}) =>
  Buffer.concat([
    Buffer.from([0x93]),
    pack(tag),
    bin32(eventStream(entries)),
    pack({ size: entries.length, ...option }),
  ]);

/**
 * CompressedPackedForward: PackedForward whose bin is gzip (each entry its own gzip member when
 * `members`, which the spec allows) and whose option says `compressed: 'gzip'`.
 */
export const compressedPackedForwardRequest = (
  tag: string,
  entries: readonly ClientEntry[],
  option: Option = {},
  members = false,
): Buffer => {
  const gz = members
    ? Buffer.concat(entries.map((e) => gzipSync(entryBytes(e))))
    : gzipSync(eventStream(entries));
  return Buffer.concat([
    Buffer.from([0x93]),
    pack(tag),
    bin32(gz),
    pack({ size: entries.length, compressed: 'gzip', ...option }),
  ]);
};

/** A TCP connection to a forward server that collects the `{ack}` answers it reads. */
export class ForwardClient {
  /** Chunk ids acked so far, in order. */
  readonly acks: string[] = [];
  /** Bytes read from the server in all. */
  bytesReceived = 0;
  readonly closed: Promise<void>;
  private pending = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      this.pending = Buffer.concat([this.pending, chunk]);
      try {
        const values = unpackMultiple(this.pending) as unknown[];
        this.pending = Buffer.alloc(0);
        for (const v of values) this.acks.push(String((v as { ack?: unknown }).ack));
      } catch {
        return; // an answer cut in two: the rest comes with the next read
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static connect(address: string): Promise<ForwardClient> {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(at + 1));
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new ForwardClient(socket));
      });
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())));
  }

  /** Resolves once `n` acks in all have been read. */
  async waitForAcks(n: number, timeoutMs = 5_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.acks.length < n) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${n} acks (have ${this.acks.length})`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return this.acks.slice(0, n);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
