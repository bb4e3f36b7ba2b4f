import { describe, expect, it } from 'vitest';
import { encodeFrame, parseClientFrame } from './protocol.ts';

const parse = (text: string) => parseClientFrame(Buffer.from(text), false);

describe('parseClientFrame', () => {
  it('reads a subscribe with a filter and a replay count', () => {
    expect(
      parse('{"type":"subscribe","filter":{"types":["@argus.alert"],"minSeverity":3},"replay":50}'),
    ).toEqual({
      ok: true,
      value: { type: 'subscribe', filter: { types: ['@argus.alert'], minSeverity: 3 }, replay: 50 },
    });
    expect(parse('{"type":"subscribe"}')).toEqual({
      ok: true,
      value: { type: 'subscribe', filter: {}, replay: 0 },
    });
  });

  it.each([
    ['{"type":', /^frame is not JSON: /],
    ['[1,2]', /^frame must be a JSON object with a string 'type'$/],
    ['{"type":"unsubscribe"}', /^type: must be 'subscribe', 'tail' or 'untail', got 'unsubscribe'$/],
    ['{"filter":{}}', /^type: must be 'subscribe', 'tail' or 'untail', got undefined$/],
    ['{"type":"toString"}', /^type: must be 'subscribe', 'tail' or 'untail', got 'toString'$/],
    ['{"type":"subscribe","replay":-1}', /^replay: must be a whole number of events \(0 or more\), got -1$/],
    ['{"type":"subscribe","replay":"5"}', /^replay: must be a whole number/],
    ['{"type":"subscribe","filters":{}}', /^filters: unknown field \(known: type, filter, replay\)$/],
    [
      '{"type":"subscribe","filter":{"minSeverity":0}}',
      /^filter\.minSeverity: must be an integer from 1 to 5/,
    ],
  ])('refuses %s naming what is wrong', (text, error) => {
    const r = parse(text);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toMatch(error);
  });

  it('reads a tail with and without a filter, and an untail', () => {
    const tail = parse('{"type":"tail","stream":"payments.nginx-access","filter":"status >= 500"}');
    expect(tail.ok && tail.value.type === 'tail' && [tail.value.stream, tail.value.filter]).toEqual([
      'payments.nginx-access',
      'status >= 500',
    ]);
    expect(tail.ok && tail.value.type === 'tail' && tail.value.expr !== null).toBe(true);
    expect(parse('{"type":"tail","stream":"a"}')).toEqual({
      ok: true,
      value: { type: 'tail', stream: 'a', filter: '', expr: null },
    });
    expect(parse('{"type":"untail","stream":"a_b-1.c"}')).toEqual({
      ok: true,
      value: { type: 'untail', stream: 'a_b-1.c' },
    });
  });

  const STREAM_ERROR =
    "stream: must be a stream name (1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'), got";
  it.each([
    ['{"type":"tail"}', `${STREAM_ERROR} nothing`],
    ['{"type":"tail","stream":".hidden"}', `${STREAM_ERROR} ".hidden"`],
    ['{"type":"tail","stream":"a b"}', `${STREAM_ERROR} "a b"`],
    [`{"type":"tail","stream":"${'x'.repeat(129)}"}`, `${STREAM_ERROR} "${'x'.repeat(129)}"`],
    ['{"type":"untail","stream":7}', `${STREAM_ERROR} 7`],
    ['{"type":"tail","stream":"a","filter":5}', 'filter: must be a log filter expression (text), got number'],
    ['{"type":"tail","stream":"a","replay":5}', 'replay: unknown field (known: type, stream, filter)'],
    ['{"type":"untail","stream":"a","filter":""}', 'filter: unknown field (known: type, stream)'],
  ])('refuses the tail frame %s with %j', (text, error) => {
    expect(parse(text)).toEqual({ ok: false, error });
  });

  it("refuses a tail whose filter does not parse with parseLogFilter's error", () => {
    const r = parse('{"type":"tail","stream":"a","filter":"status >="}');
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toMatch(/^filter: .*line 1, column \d+/);
  });

  it('refuses binary frames', () => {
    expect(parseClientFrame(Buffer.from('{"type":"subscribe"}'), true)).toEqual({
      ok: false,
      error: 'frames must be JSON text, got a binary frame',
    });
  });
});

describe('encodeFrame', () => {
  it('is JSON text, bytes as base64 and bigints as text', () => {
    const frame = encodeFrame({
      type: 'event',
      event: { type: 'x', bytes: new Uint8Array([1, 2, 3]), big: 2n ** 70n },
    });
    expect(JSON.parse(frame.toString('utf8'))).toEqual({
      type: 'event',
      event: { type: 'x', bytes: 'AQID', big: '1180591620717411303424' },
    });
  });
});
