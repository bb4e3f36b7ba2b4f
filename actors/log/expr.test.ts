import { describe, expect, it } from 'vitest';
import { evaluateFilter } from './expr.ts';
import { type LogRulePlan, parseLogRule } from './sql.ts';

const where = (condition: string): LogRulePlan => {
  const r = parseLogRule('x', `SELECT count(*) AS n FROM s WHERE ${condition} GROUP BY TUMBLE(1 minute)`);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
};

type Row = readonly [Record<string, unknown>, boolean];
const table = (condition: string, rows: readonly Row[]) => {
  const p = where(condition);
  expect(rows.map(([r]) => evaluateFilter(p, r))).toEqual(rows.map(([, want]) => want));
};

describe('evaluateFilter', () => {
  it('compares numbers, numeric strings, and treats NULL and missing fields as unknown', () => {
    const rows = (v: unknown[]): Row[] => v.map((x) => [x === undefined ? {} : { s: x }, false] as const);
    const values: unknown[] = [499, 500, '500', 501, null, undefined, 'abc'];
    const want = (results: boolean[]) => rows(values).map(([r], i) => [r, results[i]!] as const);
    table('s = 500', want([false, true, true, false, false, false, false]));
    table('s != 500', want([true, false, false, true, false, false, true]));
    table('s <> 500', want([true, false, false, true, false, false, true]));
    table('s < 500', want([true, false, false, false, false, false, false]));
    table('s <= 500', want([true, true, true, false, false, false, false]));
    table('s > 500', want([false, false, false, true, false, false, false]));
    table('s >= 500', want([false, true, true, true, false, false, false]));
  });

  it('compares strings and booleans', () => {
    table("host = 'web-1'", [
      [{ host: 'web-1' }, true],
      [{ host: 'web-2' }, false],
      [{}, false],
    ]);
    table("host < 'b'", [
      [{ host: 'a' }, true],
      [{ host: 'c' }, false],
    ]);
    table('ok = true', [
      [{ ok: true }, true],
      [{ ok: false }, false],
      [{ ok: 'true' }, false],
      [{}, false],
    ]);
    table('a = b', [
      [{ a: 1, b: 1 }, true],
      [{ a: 1, b: 2 }, false],
      [{ a: 1 }, false],
    ]);
  });

  it('uses three-valued AND, OR and NOT', () => {
    table('a = 1 AND b = 1', [
      [{ a: 1, b: 1 }, true],
      [{ a: 1, b: 2 }, false],
      [{ a: 1 }, false],
    ]);
    table('a = 1 OR b = 1', [
      [{ a: 1 }, true],
      [{ b: 1 }, true],
      [{ a: 2, b: 2 }, false],
      [{}, false],
    ]);
    table('NOT a = 1', [
      [{ a: 1 }, false],
      [{ a: 2 }, true],
      [{}, false],
    ]);
    table('NOT (a = 1 AND b = 1)', [
      [{ a: 2 }, true],
      [{ a: 1 }, false],
      [{ a: 1, b: 1 }, false],
    ]);
    table('NOT (a = 1) AND NOT (b = 1)', [
      [{ a: 2, b: 2 }, true],
      [{ a: 1, b: 2 }, false],
      [{ a: 2 }, false],
    ]);
    table('NOT (a = 1 OR b = 1)', [
      [{ a: 2, b: 2 }, true],
      [{ a: 2 }, false],
      [{}, false],
    ]);
  });

  it('matches LIKE with % and _ literally otherwise, case-sensitively', () => {
    table("h LIKE 'web-%'", [
      [{ h: 'web-1' }, true],
      [{ h: 'web-' }, true],
      [{ h: 'Web-1' }, false],
      [{ h: 'api' }, false],
      [{}, false],
    ]);
    table("h LIKE 'a_c'", [
      [{ h: 'abc' }, true],
      [{ h: 'a.c' }, true],
      [{ h: 'ac' }, false],
      [{ h: 'abbc' }, false],
    ]);
    table("h LIKE 'a.c%'", [
      [{ h: 'a.cx' }, true],
      [{ h: 'abcx' }, false],
    ]);
    table("h NOT LIKE 'web-%'", [
      [{ h: 'api' }, true],
      [{ h: 'web-1' }, false],
      [{}, false],
    ]);
    table("code LIKE '5%'", [
      [{ code: 503 }, true],
      [{ code: 404 }, false],
    ]);
  });

  it('matches regular expressions with ~, ~*, !~ and !~*', () => {
    const rows: Row[] = [
      [{ m: 'timeout after 3s' }, true],
      [{ m: 'Timeout' }, false],
      [{ m: 'ok' }, false],
      [{}, false],
    ];
    table("m ~ '^time(out)?'", rows);
    table("m ~* '^TIMEOUT'", [
      [{ m: 'timeout' }, true],
      [{ m: 'Timeout' }, true],
      [{ m: 'ok' }, false],
      [{}, false],
    ]);
    table("m !~ '^time'", [
      [{ m: 'ok' }, true],
      [{ m: 'timeout' }, false],
      [{}, false],
    ]);
    table("m !~* '^TIME'", [
      [{ m: 'ok' }, true],
      [{ m: 'Timeout' }, false],
    ]);
  });

  it('matches IN and NOT IN, with NULL in the list making a miss unknown', () => {
    table("s IN (500, 502, 'x')", [
      [{ s: 500 }, true],
      [{ s: '502' }, true],
      [{ s: 'x' }, true],
      [{ s: 404 }, false],
      [{}, false],
    ]);
    table('s NOT IN (500, 502)', [
      [{ s: 404 }, true],
      [{ s: 500 }, false],
      [{}, false],
    ]);
    table('s NOT IN (500, NULL)', [
      [{ s: 404 }, false],
      [{ s: 500 }, false],
    ]);
  });

  it('tests IS NULL and IS NOT NULL, where a missing field is NULL', () => {
    const rows = [{ a: null }, {}, { a: 0 }, { a: '' }, { a: false }];
    table(
      'a IS NULL',
      rows.map((r, i) => [r, i < 2] as const),
    );
    table(
      'a IS NOT NULL',
      rows.map((r, i) => [r, i >= 2] as const),
    );
  });

  it('finds dotted and quoted field names as keys or nested paths', () => {
    table('http.status = 500', [
      [{ http: { status: 500 } }, true],
      [{ 'http.status': 500 }, true],
      [{ http: 500 }, false],
    ]);
    table(`"user.id" = 'u1'`, [
      [{ 'user.id': 'u1' }, true],
      [{ user: { id: 'u1' } }, true],
      [{ user: 'u1' }, false],
    ]);
  });
});
