import { describe, expect, it } from 'vitest';
import { isArgusError } from '../runtime/errors.ts';
import {
  minimalMoves,
  movedShards,
  murmur3,
  type PlacementCandidate,
  placeKind,
  rendezvousScore,
} from './placement.ts';

const members = (weights: readonly number[], prefix = 'node-'): PlacementCandidate[] =>
  weights.map((weight, i) => ({ id: `${prefix}${i}`, weight }));
const equal = (n: number): PlacementCandidate[] => members(Array.from({ length: n }, () => 1));
const kinds = (n: number): string[] => Array.from({ length: n }, (_, i) => `kind-${i}`);
const indexesWhere = <T>(values: readonly T[], test: (value: T, i: number) => boolean): number[] =>
  values.flatMap((v, i) => (test(v, i) ? [i] : []));

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

/** The shapes the movement properties are checked over: shards × cluster weights. */
const shapes = [
  { shards: 1, weights: [1, 1, 1] },
  { shards: 64, weights: [1, 1, 1] },
  { shards: 256, weights: [1, 1, 1, 1, 1, 1, 1, 1] },
  { shards: 1024, weights: [1, 2, 3] },
  { shards: 100, weights: [0.5, 4, 1, 1] },
];

describe('murmur3 (x86, 32-bit)', () => {
  const utf8 = new TextEncoder();
  it.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\u0000\u0000\u0000\u0000', 0, 0x2362f9de],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['aa', 0x9747b28c, 0x5d211726],
    ['aaa', 0x9747b28c, 0x283e0130],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abc', 0, 0xb3dd93fa],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ])('matches the reference for %j with seed %i', (text, seed, expected) => {
    const bytes = utf8.encode(text);
    expect(murmur3(bytes, bytes.length, seed)).toBe(expected);
  });
});

describe('rendezvousScore', () => {
  it('is pinned: the same bits on every machine and every run', () => {
    expect(rendezvousScore('node-1', 'host', 0, 1)).toBe(0.3104444595408);
    expect(rendezvousScore('node-2', 'host', 0, 1)).toBe(1.5700532805760192);
    expect(rendezvousScore('node-1', 'host', 1, 1)).toBe(1.4044180152500156);
    expect(rendezvousScore('node-1', 'web', 0, 1)).toBe(1.4010782703285511);
    expect(rendezvousScore('ünïcode-☃', 'host', 1023, 2.5)).toBe(9.406499022869953);
  });

  it('scales exactly with weight', () => {
    const one = rendezvousScore('node-1', 'host', 7, 1);
    expect(rendezvousScore('node-1', 'host', 7, 2)).toBe(2 * one);
    expect(rendezvousScore('node-1', 'host', 7, 0)).toBe(0);
    expect(rendezvousScore('node-1', 'host', 7, -1)).toBe(-one);
  });

  it('keeps the parts of the key apart (no collision across the separators)', () => {
    const scores = [
      rendezvousScore('ab', 'c', 1, 1),
      rendezvousScore('a', 'bc', 1, 1),
      rendezvousScore('a', 'b', 11, 1),
      rendezvousScore('ab', 'c', 11, 1),
    ];
    expect(new Set(scores).size).toBe(4);
  });

  it.each([
    [() => rendezvousScore('', 'host', 0, 1), 'id must be a non-empty string'],
    [() => rendezvousScore('a\u0000b', 'host', 0, 1), 'id must be a non-empty string without U+0000'],
    [() => rendezvousScore('a', 'host', -1, 1), 'shard must be a non-negative integer, got -1'],
    [() => rendezvousScore('a', 'host', 0.5, 1), 'shard must be a non-negative integer, got 0.5'],
    [() => rendezvousScore('a', 'host', 0, Number.NaN), 'weight must be a finite number, got NaN'],
  ])('refuses bad input naming the field (%#)', (call, message) => {
    const error = thrown(call);
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(message);
  });
});

describe('placeKind', () => {
  it('is deterministic: pinned owners, equal on a second call', () => {
    const abc = members([1, 1, 1], '').map((m, i) => ({ ...m, id: 'abc'[i]! }));
    const owners = placeKind('host', 16, abc);
    expect(owners).toEqual(['a', 'c', 'a', 'b', 'c', 'a', 'c', 'c', 'a', 'a', 'a', 'a', 'a', 'b', 'a', 'c']);
    expect(placeKind('host', 16, abc)).toEqual(owners);
  });

  it.each(shapes)('gives every one of $shards shards to a candidate ($weights)', ({ shards, weights }) => {
    const candidates = [...members(weights), { id: 'drained', weight: 0 }];
    const ids = new Set(members(weights).map((m) => m.id));
    for (const kind of kinds(20)) {
      const owners = placeKind(kind, shards, candidates);
      expect(owners).toHaveLength(shards);
      expect(owners.filter((o) => o === undefined || !ids.has(o))).toEqual([]);
    }
  });

  it('gives each shard to the candidate with the highest rendezvousScore', () => {
    const candidates = members([1, 2, 0.5, 3]);
    const owners = placeKind('host', 256, candidates);
    const argmax = owners.map((_, shard) => {
      const scored = candidates.map((c) => ({
        id: c.id,
        score: rendezvousScore(c.id, 'host', shard, c.weight),
      }));
      return scored.reduce((best, s) => (s.score > best.score ? s : best)).id;
    });
    expect(owners).toEqual(argmax);
  });

  // 100 kinds × 1024 shards = 102,400 draws: a share's standard deviation is at most 0.0016.
  it.each([[[1, 1, 1, 1]], [[1, 2, 1]], [[1, 3]], [[0.5, 1, 1.5, 2, 5]]])(
    'shares shards in proportion to weight %j, within ±0.01 of w/W over 100 kinds × 1024 shards',
    (weights) => {
      const candidates = members(weights);
      const counts = new Map<string, number>();
      for (const kind of kinds(100))
        for (const owner of placeKind(kind, 1024, candidates))
          counts.set(owner!, (counts.get(owner!) ?? 0) + 1);
      const total = weights.reduce((a, b) => a + b, 0);
      for (const { id, weight } of candidates)
        expect(Math.abs((counts.get(id) ?? 0) / 102_400 - weight / total)).toBeLessThan(0.01);
    },
  );

  it('gives weight 2 about twice the shards of weight 1 (ratio within 2 ± 0.05)', () => {
    const counts = { light: 0, heavy: 0 };
    const candidates = [
      { id: 'light', weight: 1 },
      { id: 'heavy', weight: 2 },
    ];
    for (const kind of kinds(100))
      for (const owner of placeKind(kind, 1024, candidates)) counts[owner as keyof typeof counts]++;
    expect(Math.abs(counts.heavy / counts.light - 2)).toBeLessThan(0.05);
  });

  it.each(shapes)(
    'on a join ($shards shards, $weights) moves exactly the shards the newcomer now wins, all to it',
    ({ shards, weights }) => {
      const before = members(weights);
      const after = [...before, { id: 'newcomer', weight: 1 }];
      for (const kind of kinds(50)) {
        const was = placeKind(kind, shards, before);
        const is = placeKind(kind, shards, after);
        expect(movedShards(was, is)).toEqual(indexesWhere(is, (o) => o === 'newcomer'));
      }
    },
  );

  it.each(shapes)(
    'on a leave ($shards shards, $weights) moves exactly the leaver’s shards',
    ({ shards, weights }) => {
      const before = members(weights);
      const after = before.filter((m) => m.id !== 'node-1');
      for (const kind of kinds(50)) {
        const was = placeKind(kind, shards, before);
        const is = placeKind(kind, shards, after);
        expect(movedShards(was, is)).toEqual(indexesWhere(was, (o) => o === 'node-1'));
        expect(is).not.toContain('node-1');
      }
    },
  );

  it.each([
    [2, 'gains shards and only gains'],
    [0.5, 'loses shards and only loses'],
  ])('when a member’s weight changes to ×%s, it %s', (factor) => {
    const before = members([1, 1, 1, 1]);
    const after = before.map((m) => (m.id === 'node-2' ? { ...m, weight: m.weight * factor } : m));
    for (const kind of kinds(20)) {
      const was = placeKind(kind, 256, before);
      const is = placeKind(kind, 256, after);
      const moved = movedShards(was, is);
      expect(moved.length).toBeGreaterThan(0);
      const side = factor > 1 ? is : was;
      expect(moved.filter((shard) => side[shard] !== 'node-2')).toEqual([]);
    }
  });

  it.each([0, -0, -1, -Number.MAX_VALUE])(
    'gives nothing to a candidate of weight %s (same as absent)',
    (weight) => {
      const base = equal(3);
      for (const kind of kinds(10)) {
        const owners = placeKind(kind, 128, [...base, { id: 'drained', weight }]);
        expect(owners).not.toContain('drained');
        expect(owners).toEqual(placeKind(kind, 128, base));
      }
    },
  );

  it.each([
    ['no candidates', []],
    [
      'only weight <= 0',
      [
        { id: 'a', weight: 0 },
        { id: 'b', weight: -2 },
      ],
    ],
  ])('leaves every shard without an owner with %s', (_, candidates) => {
    expect(placeKind('host', 5, candidates)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('does not depend on the order of the candidates', () => {
    const candidates = members([1, 2, 0.5, 3, 1, 0]);
    const orders = [
      [...candidates].reverse(),
      [...candidates.slice(3), ...candidates.slice(0, 3)],
      [...candidates].sort((a, b) =>
        a.id.split('').reverse().join('') < b.id.split('').reverse().join('') ? -1 : 1,
      ),
    ];
    for (const kind of kinds(10)) {
      const owners = placeKind(kind, 512, candidates);
      for (const order of orders) expect(placeKind(kind, 512, order)).toEqual(owners);
    }
  });

  it('breaks equal scores by the smaller id, whatever the order', () => {
    // The smallest positive weight makes many scores round to exactly 0: real ties.
    const tiny = Number.MIN_VALUE;
    const pair = [
      { id: 'b', weight: tiny },
      { id: 'a', weight: tiny },
    ];
    const ties = indexesWhere(
      placeKind('host', 1024, pair),
      (_, shard) => rendezvousScore('a', 'host', shard, tiny) === rendezvousScore('b', 'host', shard, tiny),
    );
    expect(ties.length).toBeGreaterThan(10);
    for (const order of [pair, [...pair].reverse()]) {
      const owners = placeKind('host', 1024, order);
      expect(ties.filter((shard) => owners[shard] !== 'a')).toEqual([]);
    }
  });

  it.each([
    [{ shards: 0 }, 'shards must be an integer 1..1024, got 0'],
    [{ shards: 1025 }, 'shards must be an integer 1..1024, got 1025'],
    [{ shards: 2.5 }, 'shards must be an integer 1..1024, got 2.5'],
    [{ shards: Number.NaN }, 'shards must be an integer 1..1024, got NaN'],
    [{ kind: '' }, 'kind must be a non-empty string without U+0000, got ""'],
    [{ kind: 'a\u0000b' }, 'kind must be a non-empty string without U+0000, got "a\\u0000b"'],
    [
      {
        candidates: [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
          { id: 'a', weight: 2 },
        ],
      },
      "candidates[2].id 'a' is a duplicate of candidates[0]",
    ],
    [
      { candidates: [{ id: '', weight: 1 }] },
      'candidates[0].id must be a non-empty string without U+0000, got ""',
    ],
    [
      { candidates: [{ id: 'a', weight: Number.NaN }] },
      "candidates[0].weight must be a finite number, got NaN (id 'a')",
    ],
    [
      {
        candidates: [
          { id: 'a', weight: 1 },
          { id: 'b', weight: Number.POSITIVE_INFINITY },
        ],
      },
      "candidates[1].weight must be a finite number, got Infinity (id 'b')",
    ],
  ])('refuses %j naming the field', (input, message) => {
    const {
      kind = 'host',
      shards = 8,
      candidates = equal(2),
    } = input as {
      kind?: string;
      shards?: number;
      candidates?: PlacementCandidate[];
    };
    const error = thrown(() => placeKind(kind, shards, candidates));
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toBe(`ARGUS_ERR_INVALID_CONFIG: placement: ${message}`);
  });

  it('places 1024 shards over 50 members well under 10 ms (bound 50 ms, best of 5, shared machine)', () => {
    const candidates = members(Array.from({ length: 50 }, (_, i) => 1 + (i % 3)));
    const times = kinds(5).map((kind) => {
      const start = performance.now();
      placeKind(kind, 1024, candidates);
      return performance.now() - start;
    });
    expect(Math.min(...times)).toBeLessThan(50);
  });
});

describe('movedShards', () => {
  it.each([
    [[], [], []],
    [['a', 'b', 'c'], ['a', 'b', 'c'], []],
    [['a', 'b', 'c'], ['a', 'd', 'c'], [1]],
    [
      ['a', undefined, 'c'],
      ['a', 'b', undefined],
      [1, 2],
    ],
    [[undefined, undefined], [undefined, undefined], []],
  ])('%j → %j moves %j', (before, after, moved) => {
    expect(movedShards(before, after)).toEqual(moved);
  });

  it('refuses assignments of different lengths', () => {
    const error = thrown(() => movedShards(['a'], ['a', 'b']));
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('placement: after has 2 shards but before has 1');
  });
});

describe('minimalMoves', () => {
  const w = (spec: string): PlacementCandidate[] =>
    spec.split(' ').map((part) => {
      const [id, weight = '1'] = part.split(':');
      return { id: id!, weight: Number(weight) };
    });

  it.each([
    ['a join onto a balanced assignment costs the newcomer’s share', 'aabb', 'a b c d', 2],
    ['a join onto three a and three b costs c’s share', 'aaabbb', 'a b c', 2],
    ['with a remainder, members that hold more keep the extra shards', 'aaabbb', 'a b c d', 2],
    ['a leave costs the leaver’s shards', 'abcd', 'a b c', 1],
    ['a leave costs the leaver’s shards (several)', 'aabbcc', 'a b', 2],
    ['nothing changes: nothing to move', 'abcabc', 'a b c', 0],
    ['an unbalanced assignment has to be evened out', 'aaaaab', 'a b', 2],
    ['shards without an owner always count', '--ab', 'a b', 2],
    ['a weight-0 candidate is not a member: its shards count', 'aabb', 'a b:0', 2],
    ['weights set the shares', 'aaaa', 'a:1 b:3', 3],
    ['a weighted leave', 'aabbbbcc', 'a:1 b:2', 2],
    ['extra shards go to members that already hold them', 'aaaaabbbbb', 'a b c', 3],
  ])('%s (%s → %s: %i)', (_, before, after, moves) => {
    const owners = before.split('').map((o) => (o === '-' ? undefined : o));
    expect(minimalMoves(owners, w(after))).toBe(moves);
  });

  it('with no member of weight > 0, every owned shard loses its owner', () => {
    expect(minimalMoves(['a', undefined, 'b'], [])).toBe(2);
    expect(minimalMoves(['a', 'a'], [{ id: 'a', weight: 0 }])).toBe(2);
  });

  it('counts the newcomer’s share on a join, which rendezvous placement moves within ±20% of', () => {
    // Rendezvous moves the newcomer's draws, a binomial around its share (256 ± 14 here).
    for (const kind of kinds(20)) {
      const was = placeKind(kind, 1024, equal(3));
      const after = [...equal(3), { id: 'newcomer', weight: 1 }];
      const moved = movedShards(was, placeKind(kind, 1024, after)).length;
      expect(minimalMoves(was, after)).toBe(256);
      expect(Math.abs(moved / 256 - 1)).toBeLessThan(0.2);
    }
  });

  it('refuses candidates the way placeKind does', () => {
    const error = thrown(() => minimalMoves(['a'], [{ id: 'a', weight: Number.NaN }]));
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('candidates[0].weight must be a finite number');
  });
});
