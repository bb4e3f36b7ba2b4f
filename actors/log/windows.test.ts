import { describe, expect, it } from 'vitest';
import { type LogRulePlan, parseLogRule } from './sql.ts';
import {
  accumulate,
  closeWindows,
  mergeWindows,
  newWindowState,
  nextDue,
  WINDOW_LIMITS,
  type WindowState,
} from './windows.ts';

const EXAMPLE =
  'SELECT host, count(*) AS errors FROM "payments.nginx-access" WHERE status >= 500 ' +
  'GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10';

const plan = (sql: string, id = 'x'): LogRulePlan => {
  const r = parseLogRule(id, sql);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
};

const feed = (p: LogRulePlan, records: readonly [number, Record<string, unknown>][]) => {
  const state = newWindowState();
  for (const [t, r] of records) accumulate(state, p, r, t);
  return state;
};
const errors = (n: number, t0 = 0): [number, Record<string, unknown>][] =>
  Array.from({ length: n }, (_, i) => [t0 + i * 1000, { host: 'web-1', status: 500 + (i % 4) }]);
const noise: [number, Record<string, unknown>][] = [
  [5_000, { host: 'web-1', status: 200 }],
  [6_000, { host: 'web-1' }],
  [7_000, { host: 'web-1', status: 'oops' }],
];

describe('windows', () => {
  it('fires once for 11 matching records in one 1-minute tumbling window', () => {
    const p = plan(EXAMPLE);
    const state = feed(p, [...errors(11), ...noise]);
    expect(closeWindows(state, p, 59_999)).toEqual([]);
    expect(closeWindows(state, p, 60_000)).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-1' }, values: { errors: 11 } },
    ]);
    expect(closeWindows(state, p, 120_000)).toEqual([]);
    expect(state.windows).toEqual({});
  });

  it('does not fire for 10 matching records', () => {
    const p = plan(EXAMPLE);
    expect(closeWindows(feed(p, [...errors(10), ...noise]), p, 60_000)).toEqual([]);
  });

  it('keeps groups apart and windows apart', () => {
    const p = plan(EXAMPLE);
    const other = errors(11, 0).map(
      ([t, r]) => [t, { ...r, host: 'web-2' }] as [number, Record<string, unknown>],
    );
    const state = feed(p, [...errors(11), ...other, ...errors(11, 60_000)]);
    expect(closeWindows(state, p, 120_000)).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-1' }, values: { errors: 11 } },
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-2' }, values: { errors: 11 } },
      { windowStart: 60_000, windowEnd: 120_000, group: { host: 'web-1' }, values: { errors: 11 } },
    ]);
  });

  it('drops records for windows already closed, so nothing counts twice', () => {
    const p = plan(EXAMPLE);
    const state = feed(p, errors(11));
    expect(closeWindows(state, p, 60_000)).toHaveLength(1);
    expect(accumulate(state, p, { host: 'web-1', status: 500 }, 30_000)).toBe(0);
    expect(state.dropped.late).toBe(1);
    expect(closeWindows(state, p, 60_000)).toEqual([]);
  });

  it('counts a record in every sliding window that contains it', () => {
    const p = plan('SELECT count(*) AS n, max(v) AS top FROM s GROUP BY HOP(1 minute, 30 seconds)');
    const state = newWindowState();
    expect(accumulate(state, p, { v: 1 }, 10_000)).toBe(2);
    expect(accumulate(state, p, { v: 2 }, 40_000)).toBe(2);
    expect(accumulate(state, p, { v: 3 }, 70_000)).toBe(2);
    expect(accumulate(state, p, { v: 4 }, 90_000)).toBe(2);
    expect(closeWindows(state, p, 120_000)).toEqual([
      { windowStart: -30_000, windowEnd: 30_000, group: {}, values: { n: 1, top: 1 } },
      { windowStart: 0, windowEnd: 60_000, group: {}, values: { n: 2, top: 2 } },
      { windowStart: 30_000, windowEnd: 90_000, group: {}, values: { n: 2, top: 3 } },
      { windowStart: 60_000, windowEnd: 120_000, group: {}, values: { n: 2, top: 4 } },
    ]);
    expect(closeWindows(state, p, 150_000)).toEqual([
      { windowStart: 90_000, windowEnd: 150_000, group: {}, values: { n: 1, top: 4 } },
    ]);
  });

  it('computes each aggregate exactly, ignoring NULL and non-numeric values', () => {
    const p = plan(
      'SELECT count(*) AS c, count(bytes) AS cb, count(DISTINCT user) AS u, sum(bytes) AS s, avg(bytes) AS a, ' +
        'min(bytes) AS lo, max(bytes) AS hi FROM s GROUP BY TUMBLE(1 minute)',
    );
    const state = feed(p, [
      [1, { bytes: 10, user: 'a' }],
      [2, { bytes: '30', user: 'b' }],
      [3, { bytes: 'x', user: 'a' }],
      [4, { user: null, bytes: null }],
      [5, { bytes: 20, user: 1 }],
      [6, { user: '1' }],
    ]);
    expect(closeWindows(state, p, 60_000)).toEqual([
      {
        windowStart: 0,
        windowEnd: 60_000,
        group: {},
        values: { c: 6, cb: 4, u: 4, s: 60, a: 20, lo: 10, hi: 30 },
      },
    ]);
  });

  it('reports NULL for sum, avg, min and max without numeric values', () => {
    const p = plan('SELECT sum(b), avg(b), min(b), max(b), count(b) FROM s GROUP BY TUMBLE(1 minute)');
    expect(closeWindows(feed(p, [[1, { b: 'x' }]]), p, 60_000)).toEqual([
      {
        windowStart: 0,
        windowEnd: 60_000,
        group: {},
        values: { 'sum(b)': null, 'avg(b)': null, 'min(b)': null, 'max(b)': null, 'count(b)': 1 },
      },
    ]);
  });

  it('lets HAVING use aggregates that are not selected, without showing them', () => {
    const p = plan('SELECT host FROM s GROUP BY host, TUMBLE(1 minute) HAVING max(latency) > 1000');
    const state = feed(p, [
      [1, { host: 'a', latency: 1500 }],
      [2, { host: 'b', latency: 900 }],
    ]);
    expect(closeWindows(state, p, 60_000)).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'a' }, values: {} },
    ]);
  });

  it('keeps at most maxGroupsPerWindow groups per window and counts the records it dropped', () => {
    const p = plan('SELECT host, count(*) AS n FROM s GROUP BY host, TUMBLE(1 minute)');
    const max = WINDOW_LIMITS.maxGroupsPerWindow;
    const state = newWindowState();
    for (let i = 0; i < max + 3; i++) accumulate(state, p, { host: `h${i}` }, 1);
    expect(accumulate(state, p, { host: 'h0' }, 2)).toBe(1);
    expect(accumulate(state, p, { host: `h${max}` }, 3)).toBe(0);
    expect(accumulate(state, p, { host: 'h0' }, 60_001)).toBe(1);
    expect(state.dropped.groups).toBe(4);
    const restored: WindowState = JSON.parse(JSON.stringify(state));
    expect(accumulate(restored, p, { host: 'late-comer' }, 4)).toBe(0);
    expect(restored.dropped.groups).toBe(5);
    const closed = closeWindows(state, p, 60_000);
    expect(closed).toHaveLength(max);
    expect(closed[0]).toEqual({ windowStart: 0, windowEnd: 60_000, group: { host: 'h0' }, values: { n: 2 } });
  });

  it('bounds count(DISTINCT) per group and window and counts what it dropped', () => {
    const p = plan('SELECT count(DISTINCT id) AS ids FROM s GROUP BY TUMBLE(1 minute)');
    const state = newWindowState();
    for (let i = 0; i < WINDOW_LIMITS.maxDistinctValues + 5; i++) accumulate(state, p, { id: i }, 1);
    accumulate(state, p, { id: 0 }, 2);
    expect(state.dropped.distinct).toBe(5);
    expect(closeWindows(state, p, 60_000)[0]!.values).toEqual({ ids: WINDOW_LIMITS.maxDistinctValues });
  });

  it('keeps its state as JSON data that resumes where it stopped', () => {
    const p = plan(EXAMPLE);
    const state = feed(p, errors(6));
    const restored = JSON.parse(JSON.stringify(state));
    for (const [t, r] of errors(5, 6_000)) accumulate(restored, p, r, t);
    expect(closeWindows(restored, p, 60_000)).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-1' }, values: { errors: 11 } },
    ]);
  });
});

describe('closeWindows with { all: true }', () => {
  it('returns every group of each closed window with whether HAVING passed', () => {
    const p = plan(EXAMPLE);
    const quiet = errors(3).map(
      ([t, r]) => [t, { ...r, host: 'web-2' }] as [number, Record<string, unknown>],
    );
    const state = feed(p, [...errors(11), ...quiet, ...errors(2, 60_000)]);
    expect(closeWindows(state, p, 120_000, { all: true })).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-1' }, values: { errors: 11 }, passed: true },
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-2' }, values: { errors: 3 }, passed: false },
      {
        windowStart: 60_000,
        windowEnd: 120_000,
        group: { host: 'web-1' },
        values: { errors: 2 },
        passed: false,
      },
    ]);
    expect(state.windows).toEqual({});
    expect(state.closedBeforeMs).toBe(120_000);
  });

  it('shows only visible values, and passes every group without HAVING', () => {
    const hidden = plan('SELECT host FROM s GROUP BY host, TUMBLE(1 minute) HAVING max(latency) > 1000');
    expect(
      closeWindows(
        feed(hidden, [
          [1, { host: 'a', latency: 1500 }],
          [2, { host: 'b', latency: 900 }],
        ]),
        hidden,
        60_000,
        { all: true },
      ),
    ).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'a' }, values: {}, passed: true },
      { windowStart: 0, windowEnd: 60_000, group: { host: 'b' }, values: {}, passed: false },
    ]);
    const open = plan('SELECT count(*) AS n FROM s GROUP BY TUMBLE(1 minute)');
    expect(closeWindows(feed(open, [[1, {}]]), open, 60_000, { all: true })).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: {}, values: { n: 1 }, passed: true },
    ]);
  });

  it('leaves the default (passing results only, no passed field) unchanged', () => {
    const p = plan(EXAMPLE);
    const state = feed(p, errors(11));
    expect(closeWindows(state, p, 60_000, {})).toEqual([
      { windowStart: 0, windowEnd: 60_000, group: { host: 'web-1' }, values: { errors: 11 } },
    ]);
  });
});

describe('nextDue', () => {
  it('is the earliest end of an open window, null when none is open', () => {
    const p = plan('SELECT count(*) AS n FROM s GROUP BY HOP(1 minute, 30 seconds)');
    const state = newWindowState();
    expect(nextDue(state, p)).toBeNull();
    accumulate(state, p, {}, 100_000);
    expect(Object.keys(state.windows).sort()).toEqual(['60000', '90000']);
    expect(nextDue(state, p)).toBe(120_000);
    closeWindows(state, p, 120_000);
    expect(nextDue(state, p)).toBe(150_000);
    closeWindows(state, p, 150_000);
    expect(nextDue(state, p)).toBeNull();
  });
});

const ALL_AGGREGATES =
  'SELECT host, count(*) AS c, count(bytes) AS cb, count(DISTINCT user) AS u, sum(bytes) AS s, ' +
  'avg(bytes) AS a, min(bytes) AS lo, max(bytes) AS hi FROM s WHERE level != 0 ' +
  'GROUP BY host, HOP(1 minute, 20 seconds) HAVING count(*) > 2';

describe('mergeWindows', () => {
  let seed = 11;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const randomRecord = (): [number, Record<string, unknown>] => {
    const r: Record<string, unknown> = { host: pick(['a', 'b', 'c', null]), level: int(3) };
    const bytes = pick([int(1000), -int(50), `${int(100)}`, 'x', null, undefined]);
    if (bytes !== undefined) r.bytes = bytes;
    const user = pick(['u1', 'u2', 'u3', 1, '1', null, undefined]);
    if (user !== undefined) r.user = user;
    return [int(300_000), r];
  };

  it('merging per-batch deltas equals accumulating every record into one state, late ones too', () => {
    const p = plan(ALL_AGGREGATES);
    const seen = { late: 0, passed: 0, failed: 0, distinct: 0 };
    for (let trial = 0; trial < 200; trial++) {
      const records = Array.from({ length: 1 + int(200) }, randomRecord);
      const direct = newWindowState();
      const merged = newWindowState();
      let batch = newWindowState();
      let mergedGroups = 0;
      let batchGroups = 0;
      const flush = () => {
        const closedBefore = merged.closedBeforeMs ?? Number.NEGATIVE_INFINITY;
        for (const [start, groups] of Object.entries(batch.windows))
          if (Number(start) + p.window.sizeMs > closedBefore) batchGroups += Object.keys(groups).length;
        mergedGroups += mergeWindows(merged, p, batch);
        batch = newWindowState();
      };
      const closedDirect: unknown[] = [];
      const closedMerged: unknown[] = [];
      for (const [t, r] of records) {
        accumulate(batch, p, r, t);
        accumulate(direct, p, r, t);
        if (random() < 0.1) flush();
        if (random() < 0.03) {
          // A watermark is only ever applied between batches: the delta in flight is merged first.
          flush();
          const watermark = int(300_000);
          closedDirect.push(closeWindows(direct, p, watermark, { all: true }));
          closedMerged.push(closeWindows(merged, p, watermark, { all: true }));
        }
      }
      flush();
      expect(closedMerged).toEqual(closedDirect);
      expect(merged).toEqual(direct);
      expect(mergedGroups).toBe(batchGroups);
      const want = closeWindows(direct, p, 400_000, { all: true });
      expect(closeWindows(merged, p, 400_000, { all: true })).toEqual(want);
      seen.late += direct.dropped.late;
      for (const g of want) {
        seen[g.passed ? 'passed' : 'failed']++;
        seen.distinct += g.values.u ?? 0;
      }
    }
    // The random records did reach every path compared above.
    expect(Object.values(seen).every((n) => n > 100)).toBe(true);
  });

  it('combines two deltas into exact values for every aggregate', () => {
    const p = plan(ALL_AGGREGATES);
    const one = feed(p, [
      [1_000, { host: 'a', level: 1, bytes: 10, user: 'u1' }],
      [2_000, { host: 'a', level: 1, bytes: '30', user: 'u2' }],
    ]);
    const two = feed(p, [
      [3_000, { host: 'a', level: 1, bytes: 5, user: 'u1' }],
      [4_000, { host: 'a', level: 1, bytes: 'x', user: 1 }],
      [5_000, { host: 'b', level: 1, bytes: 7 }],
    ]);
    const state = newWindowState();
    expect(mergeWindows(state, p, one)).toBe(3);
    expect(mergeWindows(state, p, two)).toBe(6);
    expect(closeWindows(state, p, 20_000, { all: true })).toEqual([
      {
        windowStart: -40_000,
        windowEnd: 20_000,
        group: { host: 'a' },
        values: { c: 4, cb: 4, u: 3, s: 45, a: 15, lo: 5, hi: 30 },
        passed: true,
      },
      {
        windowStart: -40_000,
        windowEnd: 20_000,
        group: { host: 'b' },
        values: { c: 1, cb: 1, u: 0, s: 7, a: 7, lo: 7, hi: 7 },
        passed: false,
      },
    ]);
  });

  it('leaves the delta untouched and shares nothing with it', () => {
    const p = plan(ALL_AGGREGATES);
    const delta = feed(p, [[1_000, { host: 'a', level: 1, bytes: 10, user: 'u1' }]]);
    const copy = structuredClone(delta);
    const state = newWindowState();
    mergeWindows(state, p, delta);
    accumulate(state, p, { host: 'a', level: 1, bytes: 99, user: 'u9' }, 1_000);
    expect(delta).toEqual(copy);
  });

  it('drops and counts as late the records of deltas for windows already closed', () => {
    const p = plan(EXAMPLE);
    const state = feed(p, errors(3));
    closeWindows(state, p, 60_000);
    const delta = feed(p, [...errors(4, 30_000), ...errors(2, 60_000)]);
    expect(delta.windows['0']!['["web-1"]']!.records).toBe(4);
    expect(mergeWindows(state, p, delta)).toBe(1);
    expect(state.dropped.late).toBe(4);
    expect(Object.keys(state.windows)).toEqual(['60000']);
    const direct = feed(p, errors(3));
    closeWindows(direct, p, 60_000);
    for (const [t, r] of [...errors(4, 30_000), ...errors(2, 60_000)]) accumulate(direct, p, r, t);
    expect(state).toEqual(direct);
  });

  it("adds the delta's own dropped counters", () => {
    const p = plan(EXAMPLE);
    const state = newWindowState();
    state.dropped = { late: 1, groups: 2, distinct: 3 };
    const delta = newWindowState();
    delta.dropped = { late: 10, groups: 20, distinct: 30 };
    expect(mergeWindows(state, p, delta)).toBe(0);
    expect(state.dropped).toEqual({ late: 11, groups: 22, distinct: 33 });
  });

  it('counts a group of an old snapshot without a record count as one record', () => {
    const p = plan(EXAMPLE);
    const state = newWindowState();
    closeWindows(state, p, 60_000);
    const delta: WindowState = JSON.parse(JSON.stringify(feed(p, errors(5))));
    delete delta.windows['0']!['["web-1"]']!.records;
    mergeWindows(state, p, delta);
    expect(state.dropped.late).toBe(1);
  });

  it('keeps at most maxGroupsPerWindow groups and counts the records of the others', () => {
    const p = plan('SELECT host, count(*) AS n FROM s GROUP BY host, TUMBLE(1 minute)');
    const max = WINDOW_LIMITS.maxGroupsPerWindow;
    // Built directly, as a restored snapshot would be (no group counts known yet).
    const state = newWindowState();
    const groups: WindowState['windows'][string] = {};
    for (let i = 0; i < max - 1; i++)
      groups[JSON.stringify([`h${i}`])] = {
        group: { host: `h${i}` },
        aggregates: [{ n: 1, sum: 0, min: null, max: null }],
        records: 1,
      };
    state.windows['0'] = groups;
    const delta = feed(p, [
      [1, { host: 'h0' }],
      [2, { host: 'new-1' }],
      [3, { host: 'new-2' }],
      [4, { host: 'new-2' }],
      [5, { host: 'new-3' }],
    ]);
    expect(mergeWindows(state, p, delta)).toBe(2);
    expect(Object.keys(state.windows['0']!)).toHaveLength(max);
    expect(state.dropped.groups).toBe(3);
    expect(state.windows['0']!['["h0"]']!.aggregates[0]!.n).toBe(2);
    expect(state.windows['0']!['["new-1"]']!.aggregates[0]!.n).toBe(1);
  });

  it('keeps at most maxDistinctValues per count(DISTINCT) and counts each value dropped', () => {
    const p = plan('SELECT count(DISTINCT id) AS ids FROM s GROUP BY TUMBLE(1 minute)');
    const max = WINDOW_LIMITS.maxDistinctValues;
    const state = newWindowState();
    for (let i = 0; i < max - 2; i++) accumulate(state, p, { id: i }, 1);
    const delta = feed(
      p,
      [0, 1, max, max + 1, max + 2, max + 3].map((id) => [2, { id }] as [number, Record<string, unknown>]),
    );
    expect(mergeWindows(state, p, delta)).toBe(1);
    expect(state.dropped.distinct).toBe(2);
    expect(closeWindows(state, p, 60_000)[0]!.values).toEqual({ ids: max });
  });
});
