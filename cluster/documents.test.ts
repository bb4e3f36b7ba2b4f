import { describe, expect, it } from 'vitest';
import {
  decodeClaim,
  decodeMember,
  decodePlacement,
  encodeClaim,
  encodeMember,
  encodePlacement,
} from './documents.ts';

describe('cluster documents', () => {
  it('round-trips a member, a placement and a claim', () => {
    const m = {
      id: 'n1',
      address: '127.0.0.1:4000',
      version: '0.1.0',
      weight: 2,
      kinds: { host: 8 },
      joinedAt: 5,
    };
    expect(decodeMember('/p/members/n1', encodeMember(m))).toEqual(m);
    const owners = [
      { node: 'n1', epoch: 7 },
      { node: undefined, epoch: 0 },
    ];
    // epoch 0 means "this write": readers take the key's mod revision.
    expect(decodePlacement('/p/placement/host', encodePlacement(owners), 12).owners).toEqual([
      { node: 'n1', epoch: 7 },
      { node: undefined, epoch: 12 },
    ]);
    const c = { node: 'n1', epoch: 12, lease: '694d' };
    expect(decodeClaim('/p/owners/host/0', encodeClaim(c))).toEqual(c);
  });

  it.each([
    ['not JSON', '{', 'is not JSON'],
    ['an array', '[]', 'must be a JSON object'],
    ['no id', '{"version":"1","weight":1,"kinds":{},"joinedAt":0}', "'id'"],
    ['a negative weight', '{"id":"a","version":"1","weight":-1,"kinds":{},"joinedAt":0}', "'weight'"],
    [
      'a bad shard count',
      '{"id":"a","version":"1","weight":1,"kinds":{"host":0},"joinedAt":0}',
      "'kinds.host'",
    ],
  ])('refuses a member record that is %s, naming the key and the field', (_, text, problem) => {
    expect(() => decodeMember('/p/members/a', text)).toThrow(`member record /p/members/a`);
    expect(() => decodeMember('/p/members/a', text)).toThrow(problem);
  });

  it.each([
    ['another version', '{"v":2,"owners":["a"],"since":[1]}', "'v' must be 1"],
    ['no owners', '{"v":1,"owners":[],"since":[]}', "'owners'"],
    ['since of another length', '{"v":1,"owners":["a"],"since":[]}', "'since'"],
    ['a numeric owner', '{"v":1,"owners":[3],"since":[1]}', "'owners[0]'"],
    ['a negative epoch', '{"v":1,"owners":["a"],"since":[-1]}', "'since[0]'"],
  ])('refuses a placement that has %s', (_, text, problem) => {
    expect(() => decodePlacement('/p/placement/host', text, 3)).toThrow(problem);
  });

  it('never throws anything but a clear Error on random bytes (fuzz)', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pieces = [
      '{',
      '}',
      '[',
      ']',
      '"v"',
      ':',
      '1',
      ',',
      '"owners"',
      '"since"',
      'null',
      '"id"',
      '"a"',
      '-1',
      'true',
    ];
    for (let i = 0; i < 3_000; i++) {
      const text = Array.from(
        { length: 1 + Math.floor(random() * 12) },
        () => pieces[Math.floor(random() * pieces.length)],
      ).join('');
      for (const decode of [
        () => decodeMember('/k', text),
        () => decodePlacement('/k', text, 1),
        () => decodeClaim('/k', text),
      ]) {
        try {
          decode();
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message).toMatch(/^(member record|placement|claim) \/k: /);
        }
      }
    }
  });
});
