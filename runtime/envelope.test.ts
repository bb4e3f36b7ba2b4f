import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, newMessageId, shardOf } from './envelope.ts';

const sample = {
  id: 'm-1',
  kind: 'counter',
  key: 'c/1',
  type: 'inc',
  timestamp: 1_700_000_000_123,
  payload: { type: 'inc', n: 3, tags: ['a', 'b'], raw: new Uint8Array([1, 2]) },
};

describe('envelope', () => {
  it('round-trips every field exactly', () => {
    const d = decodeEnvelope(encodeEnvelope(sample));
    // Binary comes back as a Node Buffer (a Uint8Array): compare bytes, then the rest.
    expect(
      d.ok && Buffer.from((d.envelope.payload as { raw: Uint8Array }).raw).equals(Buffer.from([1, 2])),
    ).toBe(true);
    expect(d).toEqual({
      ok: true,
      envelope: { ...sample, payload: { ...sample.payload, raw: Buffer.from([1, 2]) } },
    });
  });

  it.each([
    [
      'a newer version',
      pack([2, 'id', 'k', 'key', 't', 1, null]),
      'unknown-version',
      'unknown envelope version 2 (this node reads 1)',
    ],
    [
      'a string version',
      pack(['1', 'id', 'k', 'key', 't', 1, null]),
      'unknown-version',
      'unknown envelope version "1" (this node reads 1)',
    ],
    ['a map instead of an array', pack({ v: 1 }), 'malformed', 'expected an envelope array, got object'],
    ['too few fields', pack([1, 'id', 'k']), 'malformed', 'envelope v1 has 7 fields, got 3'],
    [
      'an empty key',
      pack([1, 'id', 'k', '', 't', 1, null]),
      'malformed',
      'field key must be a non-empty string, got string',
    ],
    [
      'a numeric id',
      pack([1, 7, 'k', 'key', 't', 1, null]),
      'malformed',
      'field id must be a non-empty string, got number',
    ],
    [
      'a string timestamp',
      pack([1, 'id', 'k', 'key', 't', 'x', null]),
      'malformed',
      'field timestamp must be a number, got string',
    ],
  ])('refuses %s with a reason', (_name, bytes, reason, error) => {
    expect(decodeEnvelope(bytes)).toEqual({ ok: false, reason, error });
  });

  it('refuses truncated msgpack as undecodable', () => {
    const bytes = encodeEnvelope(sample).subarray(0, 10);
    const d = decodeEnvelope(bytes);
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.reason).toBe('undecodable');
      expect(d.error).toMatch(/^not msgpack \(10 bytes\): /);
    }
  });

  it('never throws on random bytes (fuzz, 20,000 inputs)', () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const valid = encodeEnvelope(sample);
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = new Uint8Array(Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
      } else {
        // Mutate a valid envelope: flip a few bytes, keep its shape mostly intact.
        bytes = valid.slice();
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++)
          bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
      const d = decodeEnvelope(bytes);
      if (!d.ok) {
        refused++;
        expect(['undecodable', 'unknown-version', 'malformed']).toContain(d.reason);
        expect(d.error.length).toBeGreaterThan(0);
      } else {
        expect(typeof d.envelope.key).toBe('string');
      }
    }
    expect(refused).toBeGreaterThan(10_000);
  });
});

describe('shardOf', () => {
  it('is stable (pinned values) and in range', () => {
    // Pinned: changing the hash moves every entity to another shard in existing clusters.
    expect([shardOf('web-12', 16), shardOf('web-13', 16), shardOf('c/1', 8), shardOf('', 4)]).toEqual([
      7, 4, 2, 1,
    ]);
    for (let i = 0; i < 1000; i++) {
      const s = shardOf(`host-${i}`, 7);
      expect(s >= 0 && s < 7 && Number.isInteger(s)).toBe(true);
    }
  });

  it('spreads keys evenly enough', () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOf(`host-${i}.example`, 16)]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1200);
  });
});

describe('newMessageId', () => {
  it('is unique within a process', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newMessageId(1_700_000_000_000)));
    expect(ids.size).toBe(10_000);
  });
});
