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
    ['{"type":"unsubscribe"}', /^type: must be 'subscribe', got 'unsubscribe'$/],
    ['{"filter":{}}', /^type: must be 'subscribe', got undefined$/],
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
