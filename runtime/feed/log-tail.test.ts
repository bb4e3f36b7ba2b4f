import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../envelope.ts';
import { decodeLogRecords, streamOfKey } from './log-tail.ts';

const envelope = (key: string, payload: { type: string; [k: string]: unknown }) =>
  Buffer.from(encodeEnvelope({ id: 'm-1', kind: 'log', key, type: payload.type, timestamp: 1, payload }));

describe('streamOfKey', () => {
  it.each([
    ['payments.nginx-access', 'payments.nginx-access'],
    ['payments.nginx-access#3', 'payments.nginx-access'],
    ['a#12', 'a'],
    ['a#x', 'a#x'],
  ])('%s is a key of stream %s', (key, stream) => {
    expect(streamOfKey(key)).toBe(stream);
  });
});

describe('decodeLogRecords', () => {
  it("reads a 'log.records' message as its stream's records", () => {
    const records = [
      { time: 1_700_000_000_000, fields: { status: 503, a: { b: 'c' } } },
      { time: 1_700_000_000_001, fields: {} },
    ];
    expect(decodeLogRecords(null, envelope('web#2', { type: 'log.records', records }))).toEqual({
      ok: true,
      value: { stream: 'web', records },
    });
  });

  it('skips other messages of the kind without a word', () => {
    expect(decodeLogRecords(null, envelope('web', { type: 'log.tick', at: 5 }))).toEqual({
      ok: true,
      value: undefined,
    });
  });

  it.each([
    ['no value', null, 'empty (no value)'],
    [
      'not msgpack',
      Buffer.from('not an envelope'),
      'not a mailbox envelope (not msgpack (15 bytes): Data read, but end of buffer not reached 110)',
    ],
    ['not an envelope', Buffer.from(pack({ a: 1 })), /^not a mailbox envelope \(expected an envelope array/],
    [
      'records missing',
      envelope('web', { type: 'log.records' }),
      "a 'log.records' message without a records array (key 'web')",
    ],
    [
      'a bad record',
      envelope('web', {
        type: 'log.records',
        records: [
          { time: 1, fields: {} },
          { time: 'x', fields: {} },
        ],
      }),
      "a 'log.records' message whose records[1] is not {time: number, fields: object} (key 'web')",
    ],
  ])('reports %s', (_what, value, error) => {
    const r = decodeLogRecords(null, value);
    expect(r.ok).toBe(false);
    if (typeof error === 'string') expect(r).toEqual({ ok: false, error });
    else expect(r.ok ? '' : r.error).toMatch(error);
  });
});
