import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ArgusError, isArgusError } from '../../runtime/errors.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { LOG_RULES_SECTION, LogRuleSet, looksLikeSql, parseLogRuleDocument } from './rules.ts';

const SQL =
  'SELECT host, count(*) AS errors FROM nginx WHERE status >= 500 GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10';
const OTHER = 'SELECT count(*) AS n FROM app GROUP BY TUMBLE(30 seconds)';

/** The ArgusError a call throws (fails the test when it does not throw one). */
const refusal = (f: () => unknown): ArgusError => {
  try {
    f();
  } catch (e) {
    if (isArgusError(e, 'ARGUS_ERR_INVALID_LOG_RULE')) return e;
    throw e;
  }
  throw new Error('accepted');
};

describe('parseLogRuleDocument', () => {
  it('reads plain SQL with the defaults', () => {
    const r = parseLogRuleDocument('nginx-5xx', SQL);
    expect({ ...r, plan: undefined }).toEqual({
      id: 'nginx-5xx',
      version: r.version,
      text: SQL,
      sql: SQL,
      plan: undefined,
      severity: 3,
      labels: {},
      annotations: {},
    });
    expect(r.version).toMatch(/^[0-9a-f]{12}$/);
    expect(r.plan.stream).toBe('nginx');
    expect(r.plan.groupBy).toEqual(['host']);
  });

  it('reads a YAML document with every field', () => {
    const text = [
      `sql: ${SQL}`,
      'severity: 5',
      'labels: { team: web, tier: edge }',
      "annotations: { summary: '{{value}} errors on {{group.host}} in {{stream}} ({{rule}})' }",
      'description: 5xx storms',
    ].join('\n');
    const r = parseLogRuleDocument('nginx-5xx', text);
    expect({ ...r, plan: undefined }).toEqual({
      id: 'nginx-5xx',
      version: r.version,
      text,
      sql: SQL,
      plan: undefined,
      severity: 5,
      labels: { team: 'web', tier: 'edge' },
      annotations: { summary: '{{value}} errors on {{group.host}} in {{stream}} ({{rule}})' },
      description: '5xx storms',
    });
    expect(r.plan).toEqual(parseLogRuleDocument('nginx-5xx', SQL).plan);
  });

  it('reads a JSON document', () => {
    const r = parseLogRuleDocument('n', JSON.stringify({ sql: OTHER, severity: 1 }));
    expect([r.sql, r.severity, r.plan.window.sizeMs]).toEqual([OTHER, 1, 30_000]);
  });

  it('versions by id and text: any edit is a new version, the same text the same one', () => {
    const a = parseLogRuleDocument('a', SQL).version;
    expect(parseLogRuleDocument('a', SQL).version).toBe(a);
    expect(parseLogRuleDocument('b', SQL).version).not.toBe(a);
    expect(parseLogRuleDocument('a', `${SQL} `).version).not.toBe(a);
  });

  it.each([
    ['SELECT 1', true],
    ['  select 1', true],
    ['-- the 5xx rule\n/* multi\nline */ SeLeCt 1', true],
    ['sql: SELECT 1', false],
    ['{"sql": "SELECT 1"}', false],
    ['selected: 1', false],
    ['-- only a comment', false],
  ])('tells SQL from a document: %j is SQL: %s', (text, sql) => {
    expect(looksLikeSql(text)).toBe(sql);
  });

  it('refuses text that is not SQL with the SQL syntax error and its position', () => {
    const e = refusal(() => parseLogRuleDocument('x', 'hello world'));
    const message = `syntax error at line 1, column 7: Expected "--", "/*", ":=", "=", "FOR", "TO", or [ \\t\\n\\r] but "w" found.`;
    expect(e.message).toBe(`ARGUS_ERR_INVALID_LOG_RULE: log rule 'x': ${message}`);
    expect(e.detail).toEqual({
      rule: 'x',
      position: { line: 1, column: 7 },
      problems: [{ path: '', message, position: { line: 1, column: 7 } }],
    });
  });

  it('refuses a rule on an unknown function, naming it and where it is', () => {
    const e = refusal(() =>
      parseLogRuleDocument('x', 'SELECT median(latency) FROM s GROUP BY TUMBLE(1 minute)'),
    );
    expect(e.message).toBe(
      "ARGUS_ERR_INVALID_LOG_RULE: log rule 'x': unknown function 'median' at line 1, column 8",
    );
    expect(e.detail).toEqual({
      rule: 'x',
      position: { line: 1, column: 8 },
      problems: [
        {
          path: '',
          message: "unknown function 'median' at line 1, column 8",
          position: { line: 1, column: 8 },
        },
      ],
    });
  });

  it('lists every problem of a document, SQL ones under sql with their position', () => {
    const e = refusal(() =>
      parseLogRuleDocument(
        'x',
        'sql: SELECT median(latency) FROM s GROUP BY TUMBLE(1 minute)\nseverity: 9\nextra: 1',
      ),
    );
    expect(e.message).toBe(
      "ARGUS_ERR_INVALID_LOG_RULE: log rule 'x': extra: unknown field; sql: unknown function 'median' at line 1, column 8; severity: must be an integer 1-5, got 9",
    );
    expect(e.detail.position).toEqual({ line: 1, column: 8 });
  });

  it.each([
    [`sql: ${OTHER}\nseverity: 0`, 'severity: must be an integer 1-5, got 0'],
    [`sql: ${OTHER}\nseverity: 2.5`, 'severity: must be an integer 1-5, got 2.5'],
    [`sql: ${OTHER}\nseverity: high`, "severity: must be an integer 1-5, got 'high'"],
    ['severity: 3', 'sql: is required'],
    ['sql: 42', 'sql: must be a SELECT statement as a string, got 42'],
    [
      `sql: ${OTHER}\nlabels: { alertname: x, 1bad: y, team: 3 }`,
      'labels.1bad: is not a valid label name (letters, digits and _, not starting with a digit); ' +
        'labels.alertname: is set by Argus (alertname is the rule id, severity comes from the severity field); ' +
        'labels.team: must be a string, got 3',
    ],
    [`sql: ${OTHER}\nlabels: [a]`, 'labels: must be a mapping of label names to strings, got ["a"]'],
    [
      `sql: ${OTHER}\nannotations: { summary: 'on {{group.host}}' }`,
      'annotations.summary: {{group.host}} names no GROUP BY field (the rule has none)',
    ],
    [
      `sql: ${SQL}\nannotations: { summary: 'on {{ group.hots }}' }`,
      'annotations.summary: {{ group.hots }} names no GROUP BY field (host)',
    ],
    [`sql: ${OTHER}\ndescription: 3`, 'description: must be a string, got 3'],
    [
      'sql: [unclosed',
      'is not valid YAML or JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 15',
    ],
    [
      `sql: ${OTHER}\nsql: ${OTHER}`,
      'is not valid YAML or JSON: Map keys must be unique at line 2, column 1',
    ],
    [
      '42',
      'must be a SELECT statement or a mapping of rule fields (sql, severity, labels, annotations, description), got 42',
    ],
    ['   ', 'is empty'],
    [
      'SELECT count(*) FROM "a b" GROUP BY TUMBLE(1 minute)',
      "FROM names 'a b', not a stream name (1-128 letters, digits, '.', '_' or '-')",
    ],
  ])('refuses %j', (text, problem) => {
    expect(refusal(() => parseLogRuleDocument('x', text)).message).toBe(
      `ARGUS_ERR_INVALID_LOG_RULE: log rule 'x': ${problem}`,
    );
  });

  it('validates ids like metric rule ids', () => {
    expect(refusal(() => parseLogRuleDocument('bad id', SQL)).message).toBe(
      "ARGUS_ERR_INVALID_LOG_RULE: log rule 'bad id': id: 'bad id' is not a rule id (1-128 letters, digits, '.', '_' or '-', starting with a letter or digit)",
    );
    expect(parseLogRuleDocument('a.b_c-1', SQL).id).toBe('a.b_c-1');
  });
});

const started: LogRuleSet[] = [];
const start = async (seed: Record<string, string> = {}) => {
  const source = new MemoryConfigSource({ [LOG_RULES_SECTION]: seed });
  const warnings: string[] = [];
  const rules = new LogRuleSet(source, (m) => warnings.push(m));
  await rules.start();
  started.push(rules);
  return { source, rules, warnings };
};

afterEach(async () => {
  for (const r of started.splice(0)) await r.stop();
});

describe('LogRuleSet', () => {
  it('loads the section at start and indexes the rules by stream', async () => {
    const { rules } = await start({ b: SQL, a: `sql: ${SQL}\nseverity: 4`, c: OTHER });
    expect(rules.all().map((r) => r.id)).toEqual(['a', 'b', 'c']);
    expect(rules.byStream('nginx').map((r) => [r.id, r.severity])).toEqual([
      ['a', 4],
      ['b', 3],
    ]);
    expect(rules.byStream('app').map((r) => r.id)).toEqual(['c']);
    expect(rules.byStream('nope')).toEqual([]);
    expect(rules.version).toBe(1);
  });

  it('hot-applies put, change and delete: onChange and byStream see each', async () => {
    const { source, rules } = await start();
    const seen: [number, string[], string[]][] = [];
    rules.onChange((r) =>
      seen.push([r.version, r.byStream('nginx').map((x) => x.id), r.byStream('app').map((x) => x.id)]),
    );
    const put = await rules.put('r1', SQL);
    expect(put.plan.stream).toBe('nginx');
    expect(await source.list(LOG_RULES_SECTION)).toEqual(new Map([['r1', SQL]]));
    expect(rules.get('r1')?.version).toBe(put.version);
    await rules.put('r1', `sql: ${OTHER}\nseverity: 2`);
    expect(rules.get('r1')?.severity).toBe(2);
    await rules.put('r1', `sql: ${OTHER}\nseverity: 2`);
    expect(await rules.delete('r1')).toBe(true);
    expect(await rules.delete('r1')).toBe(false);
    expect(rules.get('r1')).toBeUndefined();
    expect(seen).toEqual([
      [1, ['r1'], []],
      [2, [], ['r1']],
      [3, [], []],
    ]);
  });

  it('keeps the same byStream array until something changes', async () => {
    const { source, rules } = await start({ a: SQL });
    const before = rules.byStream('nginx');
    await source.put(LOG_RULES_SECTION, 'a', SQL);
    expect(rules.byStream('nginx')).toBe(before);
    await source.put(LOG_RULES_SECTION, 'b', SQL);
    expect(rules.byStream('nginx').map((r) => r.id)).toEqual(['a', 'b']);
  });

  it('put refuses a bad rule with ARGUS_ERR_INVALID_LOG_RULE and writes nothing', async () => {
    const { source, rules } = await start({ a: SQL });
    await expect(rules.put('a', `sql: ${SQL}\nseverity: 9`)).rejects.toSatisfy(
      (e) =>
        isArgusError(e, 'ARGUS_ERR_INVALID_LOG_RULE') &&
        e.message === "ARGUS_ERR_INVALID_LOG_RULE: log rule 'a': severity: must be an integer 1-5, got 9",
    );
    await expect(rules.put('a', 'hello world')).rejects.toSatisfy((e) =>
      isArgusError(e, 'ARGUS_ERR_INVALID_LOG_RULE'),
    );
    await expect(rules.put('bad id', SQL)).rejects.toSatisfy((e) =>
      isArgusError(e, 'ARGUS_ERR_INVALID_LOG_RULE'),
    );
    expect(() => rules.delete('bad id')).toThrow(
      "ARGUS_ERR_INVALID_LOG_RULE: log rule 'bad id': id: is not a rule id",
    );
    expect(await source.list(LOG_RULES_SECTION)).toEqual(new Map([['a', SQL]]));
    expect(rules.version).toBe(1);
  });

  it('ignores a bad document written around the API: warned once, the last good version stays', async () => {
    const { source, rules, warnings } = await start({ a: SQL });
    const good = rules.get('a');
    await source.put(LOG_RULES_SECTION, 'a', 'hello world');
    await source.put(LOG_RULES_SECTION, 'b', 'SELECT median(x) FROM s GROUP BY TUMBLE(1 minute)');
    expect(rules.get('a')).toBe(good);
    expect(rules.get('b')).toBeUndefined();
    expect(rules.version).toBe(1);
    expect([...rules.rejected]).toEqual([
      [
        'a',
        `log rule 'a': syntax error at line 1, column 7: Expected "--", "/*", ":=", "=", "FOR", "TO", or [ \\t\\n\\r] but "w" found.`,
      ],
      ['b', "log rule 'b': unknown function 'median' at line 1, column 8"],
    ]);
    expect(warnings).toEqual([
      `log rule 'a' ignored (its last good version stays): log rule 'a': syntax error at line 1, column 7: Expected "--", "/*", ":=", "=", "FOR", "TO", or [ \\t\\n\\r] but "w" found.`,
      "log rule 'b' ignored (it has none): log rule 'b': unknown function 'median' at line 1, column 8",
    ]);
    await source.put(LOG_RULES_SECTION, 'a', SQL);
    expect([...rules.rejected.keys()]).toEqual(['b']);
    await source.delete(LOG_RULES_SECTION, 'b');
    expect(rules.rejected.size).toBe(0);
    expect(rules.version).toBe(1);
  });

  it('stops watching on stop', async () => {
    const { source, rules } = await start();
    await rules.stop();
    await source.put(LOG_RULES_SECTION, 'a', SQL);
    expect(rules.all()).toEqual([]);
  });

  it('keeps going when a listener throws', async () => {
    const { rules, warnings } = await start();
    rules.onChange(() => {
      throw new Error('boom');
    });
    const calls: number[] = [];
    const off = rules.onChange((r) => calls.push(r.version));
    await rules.put('a', SQL);
    off();
    await rules.put('b', SQL);
    expect(calls).toEqual([1]);
    expect(warnings).toEqual(['log rules listener failed: boom', 'log rules listener failed: boom']);
  });
});

describe('sample-logrule.yaml', () => {
  it('is a valid log rule document with the values it shows', () => {
    const text = readFileSync(new URL('./sample-logrule.yaml', import.meta.url), 'utf8');
    const rule = parseLogRuleDocument('nginx-5xx', text);
    expect({
      stream: rule.plan.stream,
      groupBy: rule.plan.groupBy,
      window: rule.plan.window,
      severity: rule.severity,
      labels: rule.labels,
    }).toEqual({
      stream: 'payments.nginx-access',
      groupBy: ['host'],
      window: { kind: 'tumble', sizeMs: 60_000, slideMs: 60_000 },
      severity: 4,
      labels: { team: 'payments' },
    });
  });
});
