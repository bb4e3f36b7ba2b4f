import { gzipSync } from 'node:zlib';
import { Packr, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  ackFor,
  ForwardDecoder,
  type ForwardEntry,
  type ForwardError,
  type ForwardMessageInfo,
} from './forward.ts';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const p = (v: unknown): Buffer => packr.pack(v);
const cat = (...parts: (Buffer | number[])[]): Buffer =>
  Buffer.concat(parts.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x))));

/** EventTime as fixext8 (`D7 00 ss ss ss ss nn nn nn nn`), or as ext8 (`C7 08 00 …`). */
const eventTime = (seconds: number, nanos: number, ext8 = false): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(seconds, 0);
  b.writeUInt32BE(nanos, 4);
  return cat(ext8 ? [0xc7, 0x08, 0x00] : [0xd7, 0x00], b);
};
/** bin32 header `C6 nn nn nn nn` before the data, as out_forward-compatible clients may send. */
const bin32 = (data: Buffer): Buffer => {
  const h = Buffer.from([0xc6, 0, 0, 0, 0]);
  h.writeUInt32BE(data.length, 1);
  return cat(h, data);
};
const entry = (time: Buffer, record: Record<string, unknown>): Buffer => cat([0x92], time, p(record));

interface Seen {
  readonly tag: string;
  readonly entries: ForwardEntry[];
  readonly info: ForwardMessageInfo;
}

const decoder = (limits: { maxMessageBytes?: number; maxEntries?: number } = {}) => {
  const events: Seen[] = [];
  const errors: ForwardError[] = [];
  const d = new ForwardDecoder({
    ...limits,
    onEvents: (tag, entries, info) => events.push({ tag, entries, info }),
    onError: (error) => errors.push(error),
  });
  return { d, events, errors };
};

const decodeAll = (bytes: Buffer, limits = {}) => {
  const r = decoder(limits);
  r.d.push(bytes);
  return r;
};

const T = 1441588984;
// The four modes, byte for byte as the spec's examples.
const message = cat([0x94], p('tag.name'), p(T), p({ message: 'bar' }), p({ option: 'optional' }));
const forward = cat(
  [0x93],
  p('tag.name'),
  [0x93],
  entry(p(T), { message: 'foo' }),
  entry(p(T + 1), { message: 'bar' }),
  entry(p(T + 2), { message: 'baz' }),
  p({ option: 'optional' }),
);
const stream = cat(
  entry(eventTime(T, 5), { message: 'foo' }),
  entry(eventTime(T + 1, 6), { message: 'bar' }),
);
const packedBin = cat(
  [0x93],
  p('tag.name'),
  bin32(stream),
  p({ chunk: 'p8n9gmxTQVC8/nh2wlKKeQ==', size: 2 }),
);
// out_forward encloses the stream in a msgpack str (str32 here: `DB nn nn nn nn`).
const packedStr = cat([0x92], p('tag.name'), [0xdb, 0, 0, 0, stream.length], stream);
const gzipped = cat(gzipSync(stream.subarray(0, 20)), gzipSync(stream.subarray(20)));
const compressed = cat(
  [0x93],
  p('tag.name'),
  bin32(gzipped),
  p({ chunk: 'q8n9gmxTQVC8/nh2wlKKeQ==', size: 2, compressed: 'gzip' }),
);

const foo = (s: number, nanos: number) => ({ time: s * 1000 + Math.floor(nanos / 1e6), nanos });

describe('ForwardDecoder: the four carrier modes, byte for byte', () => {
  it('Message: [tag, time, record, option]', () => {
    const { events, errors } = decodeAll(message);
    expect(errors).toEqual([]);
    expect(events).toEqual([
      {
        tag: 'tag.name',
        entries: [{ time: T * 1000, nanos: 0, record: { message: 'bar' } }],
        info: { mode: 'Message', chunk: undefined, options: { option: 'optional' } },
      },
    ]);
  });

  it('Message without option, time as EventTime in ext8 form', () => {
    const { events } = decodeAll(cat([0x93], p('a'), eventTime(T, 999_999_999, true), p({ x: 1 })));
    expect(events[0]!.entries).toEqual([{ ...foo(T, 999_999_999), record: { x: 1 } }]);
    expect(events[0]!.info.options).toEqual({});
  });

  it('Forward: [tag, [[time, record], …], option]', () => {
    const { events, errors } = decodeAll(forward);
    expect(errors).toEqual([]);
    expect(events[0]!.info.mode).toBe('Forward');
    expect(events[0]!.entries.map((e) => [e.time, e.record.message])).toEqual([
      [T * 1000, 'foo'],
      [(T + 1) * 1000, 'bar'],
      [(T + 2) * 1000, 'baz'],
    ]);
  });

  it('PackedForward as bin, with the chunk option', () => {
    const { events, errors } = decodeAll(packedBin);
    expect(errors).toEqual([]);
    expect(events).toEqual([
      {
        tag: 'tag.name',
        entries: [
          { ...foo(T, 5), record: { message: 'foo' } },
          { ...foo(T + 1, 6), record: { message: 'bar' } },
        ],
        info: {
          mode: 'PackedForward',
          chunk: 'p8n9gmxTQVC8/nh2wlKKeQ==',
          options: { chunk: 'p8n9gmxTQVC8/nh2wlKKeQ==', size: 2 },
        },
      },
    ]);
  });

  it('PackedForward as str (out_forward), without option', () => {
    const { events } = decodeAll(packedStr);
    expect(events[0]!.info.mode).toBe('PackedForward');
    expect(events[0]!.entries.map((e) => e.record.message)).toEqual(['foo', 'bar']);
  });

  it('CompressedPackedForward: two concatenated gzip members', () => {
    const { events, errors } = decodeAll(compressed);
    expect(errors).toEqual([]);
    expect(events[0]!.info.mode).toBe('CompressedPackedForward');
    expect(events[0]!.info.chunk).toBe('q8n9gmxTQVC8/nh2wlKKeQ==');
    expect(events[0]!.entries).toEqual([
      { ...foo(T, 5), record: { message: 'foo' } },
      { ...foo(T + 1, 6), record: { message: 'bar' } },
    ]);
  });

  it('skips nil heartbeats and reads several requests in one chunk', () => {
    const { events, errors } = decodeAll(
      cat([0xc0], message, [0xc0], forward, packedBin, compressed, packedStr),
    );
    expect(errors).toEqual([]);
    expect(events.map((e) => [e.info.mode, e.entries.length])).toEqual([
      ['Message', 1],
      ['Forward', 3],
      ['PackedForward', 2],
      ['CompressedPackedForward', 2],
      ['PackedForward', 2],
    ]);
  });
});

describe('ForwardDecoder: time', () => {
  it.each([
    [0, 0],
    [1700000000, 123456789],
    [1700000000, 1],
    [0xffffffff, 999_999_999],
  ])('EventTime %d s %d ns is kept exactly', (s, ns) => {
    const { events } = decodeAll(cat([0x93], p('a'), eventTime(s, ns), p({})));
    const e = events[0]!.entries[0]!;
    expect(e).toEqual({ time: s * 1000 + Math.floor(ns / 1e6), nanos: ns, record: {} });
    expect(BigInt(Math.floor(e.time / 1000)) * 1_000_000_000n + BigInt(e.nanos)).toBe(
      BigInt(s) * 1_000_000_000n + BigInt(ns),
    );
  });

  it('reads float seconds and uint32 seconds', () => {
    const { events } = decodeAll(
      cat([0x93], p('a'), p(1.5), p({}), [0x93], p('a'), [0xce, 0x65, 0x53, 0xf1, 0x00], p({})),
    );
    expect(events.map((e) => [e.entries[0]!.time, e.entries[0]!.nanos])).toEqual([
      [1500, 500_000_000],
      [0x6553f100 * 1000, 0],
    ]);
  });

  it.each([
    ['a negative time', p(-1)],
    ['a string time', p('now')],
    ['an ext of another type', cat([0xd7, 0x01], Buffer.alloc(8))],
    ['nanoseconds past a second', eventTime(1, 1_000_000_000)],
  ])('rejects %s, entry skipped, connection kept', (_name, time) => {
    const { d, events, errors } = decodeAll(
      cat([0x92], p('a'), [0x92], entry(time, { n: 1 }), entry(p(1), { n: 2 })),
    );
    expect(events[0]!.entries.map((e) => e.record.n)).toEqual([2]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ mode: 'Forward', fatal: false });
    expect(errors[0]!.message).toMatch(/^Forward mode: tag 'a' entry 0: .*time/i);
    expect(d.state).toBe('open');
  });
});

describe('ForwardDecoder: streaming', () => {
  const all = cat([0xc0], message, forward, packedBin, compressed, packedStr);
  const expected = decodeAll(all).events;

  it('gives the same events for the stream split at every byte boundary', () => {
    for (let i = 0; i <= all.length; i++) {
      const { d, events, errors } = decoder();
      d.push(all.subarray(0, i));
      d.push(all.subarray(i));
      expect(errors).toEqual([]);
      expect(events).toEqual(expected);
      expect(d.buffered).toBe(0);
    }
  });

  it('gives the same events fed one byte at a time', () => {
    const { d, events } = decoder();
    for (let i = 0; i < all.length; i++) d.push(all.subarray(i, i + 1));
    expect(events).toEqual(expected);
  });

  it('holds an incomplete request without reporting it', () => {
    const { d, events, errors } = decoder();
    d.push(forward.subarray(0, forward.length - 1));
    expect([events, errors, d.buffered]).toEqual([[], [], forward.length - 1]);
  });
});

describe('ackFor', () => {
  it.each([['p8n9gmxTQVC8/nh2wlKKeQ=='], [''], ['x'.repeat(40)], ['y'.repeat(300)]])(
    'is the msgpack map {ack: chunk} (%s)',
    (chunk) => {
      expect(ackFor(chunk)).toEqual(p({ ack: chunk }));
      expect(unpack(ackFor(chunk))).toEqual({ ack: chunk });
    },
  );

  it('starts 81 A3 "ack" for a base64 chunk id', () => {
    expect([...ackFor('p8n9gmxTQVC8/nh2wlKKeQ==').subarray(0, 6)]).toEqual([
      0x81, 0xa3, 0x61, 0x63, 0x6b, 0xb8,
    ]);
  });
});

describe('ForwardDecoder: bad requests and entries (connection kept)', () => {
  it('skips a record that is not a map and keeps the others', () => {
    const bytes = cat(
      [0x92],
      p('a'),
      [0x93],
      entry(p(1), { n: 1 }),
      [0x92],
      p(2),
      p('not a map'),
      entry(p(3), { n: 3 }),
    );
    const { d, events, errors } = decodeAll(cat(bytes, message));
    expect(events[0]!.entries.map((e) => e.record.n)).toEqual([1, 3]);
    expect(errors).toEqual([
      {
        message: `Forward mode: tag 'a' entry 1: record is "not a map", not a map; entry skipped`,
        mode: 'Forward',
        fatal: false,
      },
    ]);
    expect(events[1]!.info.mode).toBe('Message');
    expect(d.state).toBe('open');
  });

  it('skips a request whose tag is not a string, reporting its chunk', () => {
    const bad = cat([0x93], p(42), [0x91], entry(p(1), {}), p({ chunk: 'c1' }));
    const { events, errors } = decodeAll(cat(bad, message));
    expect(errors).toEqual([
      {
        message: 'Forward mode: tag is "42", not a string; request skipped',
        mode: 'Forward',
        fatal: false,
        chunk: 'c1',
      },
    ]);
    expect(events.map((e) => e.info.mode)).toEqual(['Message']);
  });

  it('skips a request with a map key that is not a string or number', () => {
    const record = cat([0x81], [0x91, 0x01], p('v'));
    const { d, events, errors } = decodeAll(cat(message, [0x93], p('a'), p(1), record, message));
    expect(errors).toEqual([
      {
        message: 'Message mode: a key of the map at offset 4 is not a string or number; request skipped',
        mode: 'Message',
        fatal: false,
      },
    ]);
    expect(events.map((e) => e.info.mode)).toEqual(['Message', 'Message']);
    expect(d.state).toBe('open');
  });

  it('does not let a __proto__ key change the prototype', () => {
    const record = cat([0x81], p('__proto__'), p({ polluted: true }));
    const { events } = decodeAll(cat([0x93], p('a'), p(1), record));
    const r = events[0]!.entries[0]!.record;
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(Object.hasOwn(r, '__proto__')).toBe(true);
  });

  it('refuses more than maxEntries packed entries (request skipped)', () => {
    const { d, events, errors } = decodeAll(packedBin, { maxEntries: 1 });
    expect(events).toEqual([]);
    expect(errors[0]!.message).toBe('PackedForward mode: more than maxEntries 1 entries; request skipped');
    expect(d.state).toBe('open');
  });
});

describe('ForwardDecoder: framing errors close the connection', () => {
  const memory = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };

  it.each([
    ['a request array32 claiming 2^31 elements', [0xdd, 0x80, 0, 0, 0], /array of 2147483648 elements/],
    [
      'Forward entries array32 claiming 2^31 entries',
      cat([0x92], p('a'), [0xdd, 0x80, 0, 0, 0]),
      /^Forward mode: 2147483648 entries declared at offset 3, more than maxEntries 100000/,
    ],
    [
      'a record map32 claiming 2^31 pairs',
      cat([0x93], p('a'), p(1), [0xdf, 0x80, 0, 0, 0]),
      /^Message mode: a map at offset 4 declares 2147483648 entries, more than the \d+ bytes left \(maxMessageBytes 16777216\)/,
    ],
    [
      'a bin32 of 2^31 bytes',
      cat([0x92], p('a'), [0xc6, 0x80, 0, 0, 0]),
      /^PackedForward mode: a bin of 2147483648 bytes at offset 3 would end past the request limit \(maxMessageBytes 16777216\)/,
    ],
    ['a str32 of 4 GiB', cat([0x92], p('a'), [0xdb, 0xff, 0xff, 0xff, 0xff]), /a str of 4294967295 bytes/],
  ])('%s in a 20-byte buffer: error, no large allocation, earlier records kept', (_name, bomb, error) => {
    const { d, events, errors } = decoder();
    const before = memory();
    d.push(cat(message, Buffer.from(bomb).subarray(0, 20), Buffer.alloc(20 - Math.min(20, bomb.length))));
    d.push(message);
    expect(memory() - before).toBeLessThan(4 * 1024 * 1024);
    expect(events.map((e) => e.info.mode)).toEqual(['Message']);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.fatal).toBe(true);
    expect(errors[0]!.message).toMatch(error);
    expect(errors[0]!.message).toMatch(/the connection cannot continue$/);
    expect(d.state).toBe('failed');
  });

  it('refuses a request longer than maxMessageBytes without buffering past it', () => {
    const { d, errors } = decoder({ maxMessageBytes: 64 });
    const entries = Array.from({ length: 15 }, (_, i) => entry(p(i), { n: i }));
    d.push(cat([0x92], p('a'), [0x9f], ...entries));
    expect(errors[0]!.message).toMatch(/longer than 64 bytes|past the request limit|bytes left/);
    expect(d.state).toBe('failed');
  });

  it.each([
    ['a map', p({ a: 1 }), /a request is a map at offset 0, not an array/],
    ['JSON', Buffer.from('["a",1,{}]'), /a request is a int at offset 0/],
    ['byte 0xc1 after a good request', cat(message, [0x92, 0xc1]), /invalid msgpack byte 0xc1 at offset 1/],
    ['a one-element array', [0x91, 0xa1, 0x61], /array of 1 elements/],
  ])('refuses %s', (_name, bytes, error) => {
    const { d, errors } = decodeAll(Buffer.from(bytes));
    expect(errors[0]!.message).toMatch(error);
    expect(d.state).toBe('failed');
    d.push(message);
    expect(errors).toHaveLength(1);
  });

  it('values nested too deep are refused', () => {
    const { errors } = decodeAll(cat([0x93], p('a'), p(1), Buffer.alloc(1000, 0x91)));
    expect(errors[0]!.message).toMatch(/nested deeper than 64 levels/);
  });
});

describe('ForwardDecoder: zip bomb', () => {
  it('refuses 1 GiB of zeros (1024 gzip members of 1 MiB) and keeps the connection', () => {
    const member = gzipSync(Buffer.alloc(1 << 20));
    const bomb = Buffer.concat(Array.from({ length: 1024 }, () => member));
    const { d, events, errors } = decoder();
    const before = process.memoryUsage().rss;
    d.push(cat([0x93], p('z'), bin32(bomb), p({ compressed: 'gzip', chunk: 'zz' })));
    d.push(message);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    expect(errors).toEqual([
      {
        message:
          'CompressedPackedForward mode: gzip entries inflate past maxMessageBytes 16777216; request skipped',
        mode: 'CompressedPackedForward',
        fatal: false,
        chunk: 'zz',
      },
    ]);
    expect(events.map((e) => e.info.mode)).toEqual(['Message']);
    expect(d.state).toBe('open');
  });

  it('reports gzip data that is not gzip', () => {
    const { errors } = decodeAll(cat([0x93], p('z'), bin32(Buffer.from('nope')), p({ compressed: 'gzip' })));
    expect(errors[0]!.message).toMatch(/^CompressedPackedForward mode: entries are not valid gzip/);
  });
});

describe('ForwardDecoder: fuzz (5,000 inputs)', () => {
  it('never throws; entries are well formed; nothing is reported after a fatal error', () => {
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const seeds = [message, forward, packedBin, packedStr, compressed, cat(message, forward)];
    let delivered = 0;
    let failed = 0;
    for (let n = 0; n < 5_000; n++) {
      let bytes: Buffer;
      if (n % 4 === 0) {
        bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 60) }, () => Math.floor(rand() * 256)));
      } else {
        bytes = Buffer.from(seeds[Math.floor(rand() * seeds.length)]!);
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++)
          bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
      let fatalSeen = false;
      const d = new ForwardDecoder({
        maxMessageBytes: 4096,
        maxEntries: 100,
        onEvents: (tag, entries) => {
          expect(fatalSeen).toBe(false);
          expect(typeof tag).toBe('string');
          for (const e of entries) {
            expect(Number.isFinite(e.time) && e.time >= 0).toBe(true);
            expect(Number.isInteger(e.nanos) && e.nanos >= 0 && e.nanos < 1e9).toBe(true);
            expect(typeof e.record === 'object' && e.record !== null && !Array.isArray(e.record)).toBe(true);
          }
          delivered += entries.length;
        },
        onError: (error) => {
          expect(fatalSeen).toBe(false);
          expect(error.message.length).toBeGreaterThan(0);
          if (error.fatal) {
            fatalSeen = true;
            failed++;
          }
        },
      });
      const cut = Math.floor(rand() * bytes.length);
      d.push(bytes.subarray(0, cut));
      d.push(bytes.subarray(cut));
      expect(d.buffered).toBeLessThanOrEqual(4096);
    }
    expect(delivered).toBeGreaterThan(1_000);
    expect(failed).toBeGreaterThan(500);
  });
});
