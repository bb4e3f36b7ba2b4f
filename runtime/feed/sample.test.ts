import { describe, expect, it } from 'vitest';
import { account, MAX_SAMPLE_EVERY, NOT_SAMPLING, nextRate, pick } from './sample.ts';

describe('nextRate', () => {
  it.each([
    [{ every: 1, skip: 0 }, 0, { every: 1, skip: 0 }],
    [{ every: 1, skip: 0 }, 100, { every: 1, skip: 0 }],
    [{ every: 1, skip: 0 }, 101, { every: 2, skip: 0 }],
    [{ every: 8, skip: 5 }, 101, { every: 16, skip: 5 }],
    [{ every: 8, skip: 5 }, 100, { every: 4, skip: 3 }],
    [{ every: 2, skip: 1 }, 0, { every: 1, skip: 0 }],
    [{ every: MAX_SAMPLE_EVERY, skip: 0 }, 1_000, { every: MAX_SAMPLE_EVERY, skip: 0 }],
  ])('from %j with %i bytes waiting (bound 100) goes to %j', (state, waiting, next) => {
    expect(nextRate(state, waiting, 100)).toEqual(next);
  });
});

describe('pick', () => {
  it('keeps everything when not sampling', () => {
    expect(pick([1, 2, 3], NOT_SAMPLING)).toEqual({ kept: [1, 2, 3], state: NOT_SAMPLING });
  });

  it('keeps one in every, carrying the count over between batches', () => {
    const first = pick([1, 2, 3, 4, 5], { every: 4, skip: 0 });
    expect(first).toEqual({ kept: [1, 5], state: { every: 4, skip: 3 } });
    expect(pick([6, 7, 8, 9, 10], first.state)).toEqual({ kept: [9], state: { every: 4, skip: 2 } });
    expect(pick([1, 2], { every: 4, skip: 3 })).toEqual({ kept: [], state: { every: 4, skip: 1 } });
  });
});

describe('account', () => {
  it.each([
    ['not sampling, no stretch: nothing', undefined, 5, 5, 1, { gap: undefined, marker: undefined }],
    [
      'sampling with records kept: a marker before them at once',
      undefined,
      4,
      1,
      4,
      { gap: undefined, marker: { since: 50, dropped: 3, kept: 1 } },
    ],
    [
      'sampling with every record left out opens a stretch',
      undefined,
      3,
      0,
      4,
      { gap: { since: 50, dropped: 3, kept: 0 }, marker: undefined },
    ],
    [
      'a later batch with records kept ends it in a marker',
      { since: 10, dropped: 3, kept: 1 },
      4,
      1,
      4,
      { gap: undefined, marker: { since: 10, dropped: 6, kept: 2 } },
    ],
    [
      'a batch all left out keeps it open',
      { since: 10, dropped: 3, kept: 1 },
      2,
      0,
      8,
      { gap: { since: 10, dropped: 5, kept: 1 }, marker: undefined },
    ],
    [
      'drained: the next frame carries the marker',
      { since: 10, dropped: 5, kept: 1 },
      3,
      3,
      1,
      { gap: undefined, marker: { since: 10, dropped: 5, kept: 4 } },
    ],
    [
      'sampling on but nothing left out yet: stays open',
      undefined,
      1,
      1,
      2,
      { gap: { since: 50, dropped: 0, kept: 1 }, marker: undefined },
    ],
    [
      'sampling over with nothing left out: ends silently',
      { since: 10, dropped: 0, kept: 1 },
      2,
      2,
      1,
      { gap: undefined, marker: undefined },
    ],
  ] as const)('%s', (_what, gap, passed, kept, every, result) => {
    expect(account(gap, passed, kept, every, 50)).toEqual(result);
  });
});
