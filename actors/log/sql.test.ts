import { describe, expect, it } from 'vitest';
import { type LogRulePlan, parseLogRule } from './sql.ts';
import { accumulate, closeWindows, newWindowState } from './windows.ts';

const EXAMPLE =
  'SELECT host, count(*) AS errors FROM "payments.nginx-access" WHERE status >= 500 ' +
  'GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10';

const plan = (sql: string, id = 'x'): LogRulePlan => {
  const r = parseLogRule(id, sql);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
};
const errorOf = (sql: string): { error: string; position?: { line: number; column: number } } => {
  const r = parseLogRule('x', sql);
  if (r.ok) throw new Error(`accepted: ${sql}`);
  return r.position ? { error: r.error, position: r.position } : { error: r.error };
};
const where = (condition: string): LogRulePlan =>
  plan(`SELECT count(*) AS n FROM s WHERE ${condition} GROUP BY TUMBLE(1 minute)`);

describe('parseLogRule', () => {
  it('turns the issue example into an exact plan', () => {
    expect(parseLogRule('payments-5xx', EXAMPLE)).toEqual({
      ok: true,
      rule: {
        id: 'payments-5xx',
        stream: 'payments.nginx-access',
        filter: {
          op: 'cmp',
          cmp: '>=',
          left: { kind: 'field', path: 'status' },
          right: { kind: 'literal', value: 500 },
        },
        groupBy: ['host'],
        window: { kind: 'tumble', sizeMs: 60_000, slideMs: 60_000 },
        aggregates: [{ fn: 'count', alias: 'errors' }],
        having: {
          op: 'cmp',
          cmp: '>',
          left: { kind: 'aggregate', alias: 'errors' },
          right: { kind: 'literal', value: 10 },
        },
        outputs: [
          { name: 'host', source: 'group', field: 'host' },
          { name: 'errors', source: 'aggregate', alias: 'errors' },
        ],
      },
    });
  });

  it('is plain JSON data', () => {
    const p = plan(EXAMPLE);
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });

  it.each([
    ['TUMBLE(30 seconds)', { kind: 'tumble', sizeMs: 30_000, slideMs: 30_000 }],
    ['TUMBLE(1 second)', { kind: 'tumble', sizeMs: 1_000, slideMs: 1_000 }],
    ["TUMBLE(INTERVAL '1' MINUTE)", { kind: 'tumble', sizeMs: 60_000, slideMs: 60_000 }],
    ['TUMBLE(INTERVAL 2 HOUR)', { kind: 'tumble', sizeMs: 7_200_000, slideMs: 7_200_000 }],
    ['tumble(1 day)', { kind: 'tumble', sizeMs: 86_400_000, slideMs: 86_400_000 }],
    ['HOP(1 minute, 30 seconds)', { kind: 'hop', sizeMs: 60_000, slideMs: 30_000 }],
    ['SLIDE(10 minutes, 1 minute)', { kind: 'hop', sizeMs: 600_000, slideMs: 60_000 }],
  ])('reads the window %s', (w, window) => {
    expect(plan(`SELECT count(*) FROM s GROUP BY ${w}`).window).toEqual(window);
  });

  it('reads aggregates with and without aliases, and HAVING on aggregates not selected', () => {
    const p = plan(
      'SELECT count(DISTINCT "user.id") AS users, sum(bytes), avg(bytes) AS mean, min(x), max(x) FROM app ' +
        'GROUP BY TUMBLE(1 minute) HAVING max(latency) > 1000 AND users >= 2',
    );
    expect(p.aggregates).toEqual([
      { fn: 'count', field: 'user.id', distinct: true, alias: 'users' },
      { fn: 'sum', field: 'bytes', alias: 'sum(bytes)' },
      { fn: 'avg', field: 'bytes', alias: 'mean' },
      { fn: 'min', field: 'x', alias: 'min(x)' },
      { fn: 'max', field: 'x', alias: 'max(x)' },
      { fn: 'max', field: 'latency', alias: '$having5', hidden: true },
    ]);
    expect(p.having).toEqual({
      op: 'and',
      args: [
        {
          op: 'cmp',
          cmp: '>',
          left: { kind: 'aggregate', alias: '$having5' },
          right: { kind: 'literal', value: 1000 },
        },
        {
          op: 'cmp',
          cmp: '>=',
          left: { kind: 'aggregate', alias: 'users' },
          right: { kind: 'literal', value: 2 },
        },
      ],
    });
  });

  it('reads every WHERE form into the tree', () => {
    const p = where(
      "a = 'it''s' AND b <> 1 AND NOT c IS NULL AND d IS NOT NULL AND e LIKE 'w%' AND f NOT LIKE '_x' " +
        "AND g ~ '^t' AND h !~* 'X' AND i IN (1, 'two', true, NULL) AND j NOT IN (-1.5) AND (k.l = m OR n = false)",
    );
    const f = (path: string) => ({ kind: 'field', path });
    const lit = (value: unknown) => ({ kind: 'literal', value });
    expect(p.filter).toEqual({
      op: 'and',
      args: [
        { op: 'cmp', cmp: '=', left: f('a'), right: lit("it's") },
        { op: 'cmp', cmp: '!=', left: f('b'), right: lit(1) },
        { op: 'not', arg: { op: 'null', negate: false, arg: f('c') } },
        { op: 'null', negate: true, arg: f('d') },
        { op: 'like', negate: false, arg: f('e'), pattern: 'w%' },
        { op: 'like', negate: true, arg: f('f'), pattern: '_x' },
        { op: 'regex', negate: false, ignoreCase: false, arg: f('g'), pattern: '^t' },
        { op: 'regex', negate: true, ignoreCase: true, arg: f('h'), pattern: 'X' },
        { op: 'in', negate: false, arg: f('i'), values: [1, 'two', true, null] },
        { op: 'in', negate: true, arg: f('j'), values: [-1.5] },
        {
          op: 'or',
          args: [
            { op: 'cmp', cmp: '=', left: f('k.l'), right: f('m') },
            { op: 'cmp', cmp: '=', left: f('n'), right: lit(false) },
          ],
        },
      ],
    });
  });

  it.each([
    ['', "log rule 'x': is empty"],
    [
      'SELECT count(*) FROM s',
      "log rule 'x': needs a window in GROUP BY: TUMBLE(1 minute) or HOP(5 minutes, 1 minute)",
    ],
    [
      'SELECT count(*) FROM s GROUP BY host',
      "log rule 'x': needs a window in GROUP BY: TUMBLE(1 minute) or HOP(5 minutes, 1 minute)",
    ],
    [
      'SELECT count(*) FROM a JOIN b ON a.x = b.x GROUP BY TUMBLE(1 minute)',
      "log rule 'x': JOIN is not supported",
    ],
    [
      'SELECT count(*) FROM s GROUP BY TUMBLE(1 minute); SELECT 1',
      "log rule 'x': must be one SELECT statement, found 2 statements",
    ],
    [
      'SELECT host, count(*) FROM s GROUP BY TUMBLE(1 minute)',
      "log rule 'x': field 'host' is selected but neither in GROUP BY nor aggregated",
    ],
    ['SELECT * FROM s GROUP BY TUMBLE(1 minute)', "log rule 'x': SELECT * is not supported"],
    [
      'SELECT 1, count(*) FROM s GROUP BY TUMBLE(1 minute)',
      "log rule 'x': SELECT takes group fields and aggregates, not a number",
    ],
    [
      'SELECT count(*) FROM s GROUP BY 1, TUMBLE(1 minute)',
      "log rule 'x': GROUP BY takes fields and one window, not a number",
    ],
    ["INSERT INTO s VALUES (1, 'a')", "log rule 'x': must be a SELECT statement, found INSERT"],
    [
      'SELECT count(*) FROM (SELECT 1) t GROUP BY TUMBLE(1 minute)',
      "log rule 'x': FROM must name a stream, not a subquery or expression",
    ],
    [
      'SELECT count(*) FROM s GROUP BY TUMBLE(1 minute) ORDER BY 1',
      "log rule 'x': ORDER BY is not supported",
    ],
    ['SELECT count(*) FROM s GROUP BY TUMBLE(1 minute) LIMIT 5', "log rule 'x': LIMIT is not supported"],
  ])('refuses %j', (sql, error) => {
    expect(errorOf(sql)).toEqual({ error });
  });

  it.each([
    [
      'SELECT median(latency) FROM s GROUP BY TUMBLE(1 minute)',
      "log rule 'x': unknown function 'median' at line 1, column 8",
      1,
      8,
    ],
    [
      'SELECT count(*) FROM s\nWHERE lower(host) = 1 GROUP BY TUMBLE(1 minute)',
      "log rule 'x': unknown function 'lower' at line 2, column 7",
      2,
      7,
    ],
    [
      'SELECT count(*) FROM s WHERE a = 1 OR b = 2 AND c = 3 GROUP BY TUMBLE(1 minute)',
      "log rule 'x': mixing AND and OR needs parentheses around the OR at line 1, column 30",
      1,
      30,
    ],
    [
      'SELECT count(*) AS n FROM s GROUP BY TUMBLE(1 minute) HAVING nope > 1',
      "log rule 'x': HAVING refers to 'nope', which is neither an aggregate alias nor a GROUP BY field at line 1, column 62",
      1,
      62,
    ],
    [
      'SELECT count(*) FROM s WHERE count(*) > 1 GROUP BY TUMBLE(1 minute)',
      "log rule 'x': aggregate count() is only allowed in SELECT and HAVING at line 1, column 30",
      1,
      30,
    ],
    [
      'SELECT count(*) FROM s GROUP BY HOP(1 minute, 40 seconds)',
      "log rule 'x': HOP size must be a multiple of its slide at line 1, column 33",
      1,
      33,
    ],
    [
      'SELECT count(*) FROM s GROUP BY TUMBLE(1 minute), TUMBLE(2 minutes)',
      "log rule 'x': GROUP BY has more than one window; use exactly one TUMBLE or HOP at line 1, column 51",
      1,
      51,
    ],
    [
      "SELECT count(*) FROM s WHERE msg ~ '(' GROUP BY TUMBLE(1 minute)",
      `log rule 'x': invalid regular expression "(": Invalid regular expression: /(/u: Unterminated group at line 1, column 30`,
      1,
      30,
    ],
  ])('refuses %j pointing at the problem', (sql, error, line, column) => {
    expect(errorOf(sql)).toEqual({ error, position: { line, column } });
  });

  it('accepts long AND chains and refuses absurdly deep ones without throwing', () => {
    const chain = (n: number) =>
      `SELECT count(*) FROM s WHERE ${Array.from({ length: n }, (_, i) => `a${i % 10} = 1`).join(' AND ')} GROUP BY TUMBLE(1 minute)`;
    const long = plan(chain(300)).filter;
    expect(long?.op === 'and' && long.args.length).toBe(300);
    expect(errorOf(chain(1_300)).error).toMatch(
      /^log rule 'x': expression is nested too deeply at line 1, column \d+$/,
    );
    expect(errorOf('x'.repeat(20_000))).toEqual({
      error: "log rule 'x': is 20000 characters long, more than 16384",
    });
  });

  it("reports non-SQL text with the parser's syntax error and position", () => {
    const e = errorOf('hello world');
    expect(e.position).toEqual({ line: 1, column: 7 });
    expect(e.error).toBe(
      `log rule 'x': syntax error at line 1, column 7: Expected "--", "/*", ":=", "=", "FOR", "TO", or [ \\t\\n\\r] but "w" found.`,
    );
  });

  it('maps syntax error positions back through the window size rewrite', () => {
    const e = errorOf('SELECT count(*) FROM s\n  WHERE x = 1 GROUP BY TUMBLE(1 minut)');
    expect(e.position).toEqual({ line: 2, column: 33 });
    expect(e.error).toMatch(/^log rule 'x': syntax error at line 2, column 33: Expected .* but "m" found\.$/);
  });
});

describe('fuzz', () => {
  const seeds = [
    EXAMPLE,
    "SELECT count(DISTINCT u) AS n FROM s WHERE (a ~ 'x' OR b IN (1, 2)) AND NOT c IS NULL GROUP BY HOP(1 minute, 30 seconds)",
    "SELECT h, avg(x) AS m FROM \"a.b\" WHERE h LIKE 'w%' GROUP BY h, TUMBLE(INTERVAL '1' MINUTE) HAVING m > 1",
  ];
  const tokens = [
    ' ',
    '(',
    ')',
    "'",
    '"',
    ',',
    ';',
    '*',
    '~',
    '%',
    '=',
    '<',
    '>',
    '!',
    'AND',
    'OR',
    'NOT',
    'SELECT',
    'FROM',
    'WHERE',
    'GROUP BY',
    'HAVING',
    'TUMBLE(',
    'HOP(',
    '1 minute',
    'INTERVAL',
    'NULL',
    'count(',
    'JOIN',
    '\n',
    '-',
    '1e999',
    '\\',
    'é',
  ];
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const mutate = (s: string): string => {
    let out = s;
    for (let k = 1 + Math.floor(random() * 4); k > 0; k--) {
      const i = Math.floor(random() * (out.length + 1));
      const j = Math.min(out.length, i + Math.floor(random() * 6));
      const r = random();
      out =
        r < 0.4
          ? out.slice(0, i) + pick(tokens) + out.slice(i)
          : r < 0.8
            ? out.slice(0, i) + out.slice(j)
            : out.slice(0, i) + pick(tokens) + out.slice(j);
    }
    return out;
  };

  it('never throws on thousands of mutated and random rules, and accepted ones evaluate', () => {
    let accepted = 0;
    for (let n = 0; n < 2000; n++) {
      const sql =
        n % 10 === 0
          ? Array.from({ length: 1 + Math.floor(random() * 20) }, () => pick(tokens)).join('')
          : mutate(pick(seeds));
      const r = parseLogRule('f', sql);
      if (r.ok) {
        accepted++;
        expect(JSON.parse(JSON.stringify(r.rule))).toEqual(r.rule);
        const state = newWindowState();
        accumulate(state, r.rule, { a: 'x', b: 1, h: 'web', x: 2, u: 3, status: 500, host: 'h' }, 1_000);
        expect(Array.isArray(closeWindows(state, r.rule, 10 * 86_400_000))).toBe(true);
      } else {
        expect(r.error.startsWith("log rule 'f': ")).toBe(true);
        if (r.position) {
          expect(r.position.line).toBeGreaterThanOrEqual(1);
          expect(r.position.column).toBeGreaterThanOrEqual(1);
        }
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
