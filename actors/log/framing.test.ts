import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_BYTES, SyslogFramer } from './framing.ts';

const collect = (maxFrameBytes?: number) => {
  const frames: string[] = [];
  const errors: string[] = [];
  const framer = new SyslogFramer({
    ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
    onFrame: (frame) => frames.push(frame.toString('latin1')),
    onError: (message) => errors.push(message),
  });
  return { framer, frames, errors };
};

const frame = (input: string | Buffer, maxFrameBytes?: number) => {
  const { framer, frames, errors } = collect(maxFrameBytes);
  framer.push(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  framer.end();
  return { frames, errors };
};

const octet = (msg: string): string => `${Buffer.byteLength(msg, 'latin1')} ${msg}`;

describe('SyslogFramer: octet counting (RFC 6587 3.4.1)', () => {
  it('cuts frames by their declared length, LFs and NULs inside included', () => {
    expect(frame(`${octet('<13>1 - h a - - - one')}${octet('<13>a\nb\0c')}`)).toEqual({
      frames: ['<13>1 - h a - - - one', '<13>a\nb\0c'],
      errors: [],
    });
  });

  it('counts bytes, not characters', () => {
    const msg = Buffer.from('<13>1 - h a - - - größe ✓');
    const errors: string[] = [];
    const got: Buffer[] = [];
    const f = new SyslogFramer({ onFrame: (b) => got.push(b), onError: (e) => errors.push(e) });
    f.push(Buffer.concat([Buffer.from(`${msg.length} `), msg, Buffer.from(`${msg.length} `), msg]));
    expect(got.map((b) => b.toString('utf8'))).toEqual([
      '<13>1 - h a - - - größe ✓',
      '<13>1 - h a - - - größe ✓',
    ]);
    expect(errors).toEqual([]);
  });

  it('skips an LF between octet-counted frames (some senders add one)', () => {
    expect(frame(`${octet('a')}\n${octet('b')}\r\n`).frames).toEqual(['a', 'b']);
  });

  it('reports an oversized declared length and skips exactly its bytes', () => {
    const big = 'x'.repeat(101);
    expect(frame(`${octet('<13>ok')}${octet(big)}${octet('<13>after')}`, 100)).toEqual({
      frames: ['<13>ok', '<13>after'],
      errors: ['octet-counted frame of 101 bytes is larger than maxFrameBytes (100): skipped'],
    });
  });

  it('reports a frame cut short by the end of the connection', () => {
    expect(frame('20 <13>short')).toEqual({
      frames: [],
      errors: ['connection closed inside an octet-counted frame: 9 of 20 bytes received'],
    });
  });
});

describe('SyslogFramer: non-transparent framing (RFC 6587 3.4.2)', () => {
  it('ends frames at LF, CRLF or NUL and skips empty ones', () => {
    expect(frame('<13>a\n<13>b\r\n\n\r\n<13>c\0<13>d\n')).toEqual({
      frames: ['<13>a', '<13>b', '<13>c', '<13>d'],
      errors: [],
    });
  });

  it('hands on a last line without LF when the connection closes', () => {
    expect(frame('<13>a\n<13>last').frames).toEqual(['<13>a', '<13>last']);
  });

  it('keeps a PRI-less line that starts with digits (not an octet count)', () => {
    expect(frame('2026-12-02T00:00:00Z host app: x\n0 zero\n123\n').frames).toEqual([
      '2026-12-02T00:00:00Z host app: x',
      '0 zero',
      '123',
    ]);
  });

  it('gives up on more than 10 length digits: the line is a non-transparent frame', () => {
    expect(frame('12345678901 x\n').frames).toEqual(['12345678901 x']);
  });

  it('accepts a line of exactly maxFrameBytes, drops one byte more and resynchronises at the newline', () => {
    const max = 10;
    expect(frame(`${'a'.repeat(10)}\n${'b'.repeat(11)}\n<13>next\n`, max)).toEqual({
      frames: ['a'.repeat(10), '<13>next'],
      errors: ['frame longer than maxFrameBytes (10) without a newline: dropped up to the next newline'],
    });
  });
});

describe('SyslogFramer: mixed streams split anywhere', () => {
  const messages = [
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] msg',
    '<13>Dec  2 00:45:59 web-1 alice: lf framed',
    '<13>with\nnewline\0and nul',
    '<86>Dec  2 00:40:01 web-1 sshd[1234]: crlf framed',
    '<13>nul framed',
    '9',
  ];
  const stream =
    octet(messages[0]!) +
    `${messages[1]}\n` +
    octet(messages[2]!) +
    `${messages[3]}\r\n` +
    `${messages[4]}\0` +
    octet(messages[5]!) +
    '\n';
  const bytes = Buffer.from(stream, 'latin1');

  it('gives the same frames for every single split point', () => {
    for (let at = 0; at <= bytes.length; at++) {
      const { framer, frames, errors } = collect();
      framer.push(bytes.subarray(0, at));
      framer.push(bytes.subarray(at));
      framer.end();
      expect({ at, frames, errors }).toEqual({ at, frames: messages, errors: [] });
    }
  });

  it('gives the same frames fed byte by byte, and does not keep the caller’s buffer', () => {
    const { framer, frames, errors } = collect();
    const scratch = Buffer.alloc(1);
    for (const b of bytes) {
      scratch[0] = b;
      framer.push(scratch);
    }
    framer.end();
    expect({ frames, errors }).toEqual({ frames: messages, errors: [] });
  });

  it('gives the same frames for every pair of split points over a shorter stream', () => {
    const short = Buffer.from(`${octet('<1>a b')}<2>c\r\n${octet('<3>\n')}<4>d\0`, 'latin1');
    for (let i = 0; i <= short.length; i++)
      for (let j = i; j <= short.length; j++) {
        const { framer, frames } = collect();
        framer.push(short.subarray(0, i));
        framer.push(short.subarray(i, j));
        framer.push(short.subarray(j));
        framer.end();
        expect(frames, `${i},${j}`).toEqual(['<1>a b', '<2>c', '<3>\n', '<4>d']);
      }
  });
});

describe('SyslogFramer: bounded memory', () => {
  const CHUNK = 64 * 1024;
  const TEN_MB = 10 * 1024 * 1024;

  const feed = (framer: SyslogFramer, head: string, size: number, tail: string): number => {
    let peak = 0;
    const chunk = Buffer.alloc(CHUNK, 'x');
    framer.push(Buffer.from(head));
    peak = Math.max(peak, framer.bufferedBytes);
    for (let sent = 0; sent < size; sent += CHUNK) {
      framer.push(sent + CHUNK <= size ? chunk : chunk.subarray(0, size - sent));
      peak = Math.max(peak, framer.bufferedBytes);
    }
    framer.push(Buffer.from(tail));
    framer.end();
    return peak;
  };

  it('drops a 10 MB line fed in 64 KiB chunks, never holding more than maxFrameBytes + one chunk', () => {
    const { framer, frames, errors } = collect();
    const peak = feed(framer, '<13>Dec  2 00:00:00 h a: ', TEN_MB, '\n<13>after\n');
    expect(peak).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BYTES + CHUNK);
    expect(peak).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BYTES);
    expect(frames).toEqual(['<13>after']);
    expect(errors).toEqual([
      `frame longer than maxFrameBytes (${DEFAULT_MAX_FRAME_BYTES}) without a newline: dropped up to the next newline`,
    ]);
  });

  it('skips a 10 MB octet-counted frame without holding any of it', () => {
    const { framer, frames, errors } = collect();
    const peak = feed(framer, `${TEN_MB} `, TEN_MB, octet('<13>after'));
    expect(peak).toBe(0);
    expect(frames).toEqual(['<13>after']);
    expect(errors).toEqual([
      `octet-counted frame of ${TEN_MB} bytes is larger than maxFrameBytes (${DEFAULT_MAX_FRAME_BYTES}): skipped`,
    ]);
  });
});

describe('SyslogFramer: configuration and fuzz', () => {
  it.each([0, -1, 1.5, Number.NaN])('refuses maxFrameBytes %s with a coded error', (max) => {
    expect(() => new SyslogFramer({ maxFrameBytes: max, onFrame: () => {}, onError: () => {} })).toThrow(
      /^ARGUS_ERR_INVALID_CONFIG: SyslogFramer: maxFrameBytes must be a positive integer/,
    );
  });

  it('never throws on 3,000 random streams, cut anywhere; frames stay within maxFrameBytes', () => {
    let seed = 6587;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const alphabet = Buffer.from('0123456789 \n\r\0<>ab');
    for (let n = 0; n < 3_000; n++) {
      const input = Buffer.from(
        Array.from(
          { length: Math.floor(rand() * 120) },
          () => alphabet[Math.floor(rand() * alphabet.length)]!,
        ),
      );
      const sizes: number[] = [];
      const f = new SyslogFramer({
        maxFrameBytes: 16,
        onFrame: (b) => sizes.push(b.length),
        onError: () => {},
      });
      expect(() => {
        let pos = 0;
        while (pos < input.length) {
          const next = pos + 1 + Math.floor(rand() * 20);
          f.push(input.subarray(pos, next));
          expect(f.bufferedBytes).toBeLessThanOrEqual(16);
          pos = next;
        }
        f.end();
      }).not.toThrow();
      for (const size of sizes) expect(size >= 1 && size <= 16).toBe(true);
    }
  });
});
