import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ArgusError, isArgusError } from '../../runtime/errors.ts';
import { isRuleId, parseDuration, parseRule, parseRulesFile, type RuleProblem } from './schema.ts';
import { formatSelector } from './selector.ts';

const GOOD = {
  metric: 'cpu.busy_pct',
  condition: '> 90',
  severity: 3,
};

const yaml = (doc: Record<string, unknown>) => stringify(doc);

/** The error message (without the code) a document is refused with; fails if it is accepted. */
const refusal = (text: string, id = 'cpu-high'): string => {
  try {
    parseRule(id, text);
  } catch (e) {
    if (isArgusError(e, 'ARGUS_ERR_INVALID_RULE')) return e.message.slice('ARGUS_ERR_INVALID_RULE: '.length);
    throw e;
  }
  throw new Error('accepted an invalid rule');
};

const problems = (text: string, id = 'cpu-high'): RuleProblem[] => {
  try {
    parseRule(id, text);
  } catch (e) {
    if (isArgusError(e, 'ARGUS_ERR_INVALID_RULE')) return e.detail.problems as RuleProblem[];
    throw e;
  }
  throw new Error('accepted an invalid rule');
};

describe('parseRule: valid documents', () => {
  it('fills the defaults', () => {
    const r = parseRule('cpu-high', yaml(GOOD));
    expect({ ...r, selector: formatSelector(r.selector), version: typeof r.version }).toEqual({
      id: 'cpu-high',
      version: 'string',
      selector: 'cpu.busy_pct',
      scope: 'host',
      services: [],
      op: '>',
      threshold: 90,
      clear: 90,
      forMs: 0,
      keepFiringForMs: 0,
      noData: { policy: 'ignore' },
      intervalMs: 60_000,
      severity: 3,
      labels: {},
      annotations: {},
    });
    expect(r.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('reads every field, YAML or JSON alike', () => {
    const doc = {
      id: 'disk-full',
      metric: 'disk.used_pct{mount!~"/boot|/run.*"}',
      scope: 'service',
      aggregate: 'max',
      services: ['web', 'api', 'web'],
      condition: '>= 1e1',
      clear: 8.5,
      for: '1h30m',
      keep_firing_for: 120000,
      no_data: { policy: 'alert', after: 3 },
      interval: '30s',
      severity: 5,
      labels: { team: 'infra' },
      annotations: { summary: 'disk {{value}}% on {{service}}' },
    };
    const fromYaml = parseRule('disk-full', yaml(doc));
    const fromJson = parseRule('disk-full', JSON.stringify(doc));
    expect(fromJson).toEqual(fromYaml);
    expect(fromYaml).toMatchObject({
      scope: 'service',
      aggregate: 'max',
      services: ['web', 'api'],
      op: '>=',
      threshold: 10,
      clear: 8.5,
      forMs: 5_400_000,
      keepFiringForMs: 120_000,
      noData: { policy: 'alert', after: 3 },
      intervalMs: 30_000,
      severity: 5,
      labels: { team: 'infra' },
    });
  });

  it.each([
    ['> 90', '>', 90],
    ['>=1e3', '>=', 1000],
    ['< -5', '<', -5],
    ['<= .5', '<=', 0.5],
    ['== 0', '==', 0],
    ['!= 1', '!=', 1],
  ] as const)('condition %s', (condition, op, threshold) => {
    expect(parseRule('r', yaml({ ...GOOD, condition }))).toMatchObject({ op, threshold });
  });

  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['abc', undefined],
    ['1.5m', undefined],
    ['', undefined],
  ] as const)('duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('no_data accepts ignore, { policy: ignore } and { policy: alert, after }', () => {
    expect(parseRule('r', yaml({ ...GOOD, no_data: 'ignore' })).noData).toEqual({ policy: 'ignore' });
    expect(parseRule('r', yaml({ ...GOOD, no_data: { policy: 'ignore' } })).noData).toEqual({
      policy: 'ignore',
    });
    expect(parseRule('r', yaml({ ...GOOD, no_data: { policy: 'alert', after: 1000 } })).noData).toEqual({
      policy: 'alert',
      after: 1000,
    });
  });

  it('keeps the version through edits that change nothing, and changes it for a real edit', () => {
    const a = parseRule('r', 'metric: cpu\ncondition: "> 90"\nseverity: 3\nfor: 60s\n');
    const b = parseRule('r', '# a comment\nseverity: 3\nfor: 1m\ncondition: ">90"\nmetric: cpu\n');
    const c = parseRule('r', 'metric: cpu\ncondition: "> 91"\nseverity: 3\nfor: 60s\n');
    const d = parseRule('other', 'metric: cpu\ncondition: "> 90"\nseverity: 3\nfor: 60s\n');
    expect(b.version).toBe(a.version);
    expect(c.version).not.toBe(a.version);
    expect(d.version).not.toBe(a.version);
  });

  it('checks rule ids', () => {
    expect(['cpu-high', 'a', 'A.b_c-9', 'x'.repeat(128)].every(isRuleId)).toBe(true);
    expect(['', '-a', '.a', 'a b', 'a/b', 'x'.repeat(129), '@host'].some(isRuleId)).toBe(false);
  });
});

describe('parseRule: bad rules are refused with every problem, naming the field', () => {
  it.each<[string, string, string, string?]>([
    // The cases of the issue.
    [
      'unknown operator',
      yaml({ ...GOOD, condition: '=> 90' }),
      "rule 'cpu-high': condition: unknown operator '=>' (use >, >=, <, <=, == or !=)",
    ],
    ['missing metric', yaml({ condition: '> 90', severity: 3 }), "rule 'cpu-high': metric: is required"],
    [
      'severity 9',
      yaml({ ...GOOD, severity: 9 }),
      "rule 'cpu-high': severity: must be an integer 1-5, got 9",
    ],
    [
      'unparsable YAML',
      'metric: cpu\nseverity: [3\ncondition: "> 90"\n',
      "rule 'cpu-high': is not valid YAML or JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 3, column 1",
    ],
    // An unquoted condition is YAML syntax: the error says to quote it.
    [
      'unquoted > condition',
      'metric: cpu\ncondition: > 90\nseverity: 3\n',
      "rule 'cpu-high': is not valid YAML or JSON: Not a YAML token: 90 at line 2, column 14 (quote the condition in YAML: condition: '> 90')",
    ],
    [
      'unquoted != condition',
      'metric: cpu\ncondition: != 1\nseverity: 3\n',
      "rule 'cpu-high': is not valid YAML or JSON: Unresolved tag: != at line 2, column 12 (quote the condition in YAML: condition: '!= 1')",
    ],
    [
      'duplicate key',
      'metric: cpu\nmetric: mem\n',
      "rule 'cpu-high': is not valid YAML or JSON: Map keys must be unique at line 2, column 1",
    ],
    [
      'not a mapping',
      '- 1\n- 2\n',
      "rule 'cpu-high': must be a mapping of rule fields (metric, condition, severity, …), got [1,2]",
    ],
    [
      'empty document',
      '',
      "rule 'cpu-high': must be a mapping of rule fields (metric, condition, severity, …), got null",
    ],
    [
      'severity as text',
      yaml({ ...GOOD, severity: '3' }),
      "rule 'cpu-high': severity: must be an integer 1-5, got '3'",
    ],
    [
      'severity 2.5',
      yaml({ ...GOOD, severity: 2.5 }),
      "rule 'cpu-high': severity: must be an integer 1-5, got 2.5",
    ],
    ['missing severity', yaml({ metric: 'cpu', condition: '> 1' }), "rule 'cpu-high': severity: is required"],
    [
      'no operator',
      yaml({ ...GOOD, condition: '90' }),
      "rule 'cpu-high': condition: must start with an operator (>, >=, <, <=, == or !=), got '90'",
    ],
    [
      'no threshold',
      yaml({ ...GOOD, condition: '>=' }),
      "rule 'cpu-high': condition: needs a threshold after '>=', like '>= 90'",
    ],
    [
      'infinite threshold',
      yaml({ ...GOOD, condition: '> 1e999' }),
      "rule 'cpu-high': condition: threshold must be a finite number, got '1e999'",
    ],
    [
      'hex threshold',
      yaml({ ...GOOD, condition: '> 0x10' }),
      "rule 'cpu-high': condition: threshold must be a finite number, got '0x10'",
    ],
    [
      'condition as a number',
      yaml({ ...GOOD, condition: 90 }),
      "rule 'cpu-high': condition: must be an operator and a number like '> 90', got 90",
    ],
    [
      'bad selector',
      yaml({ ...GOOD, metric: 'cpu{x~"a"}' }),
      `rule 'cpu-high': metric: 'cpu{x~"a"}' at column 6: expected '=', '!=', '=~' or '!~' after tag 'x', found '~'`,
    ],
    ['unknown field', yaml({ ...GOOD, threshold: 90 }), "rule 'cpu-high': threshold: unknown field"],
    [
      'id differs from the key',
      yaml({ ...GOOD, id: 'cpu' }),
      "rule 'cpu-high': id: must equal the rule's key 'cpu-high', got 'cpu'",
    ],
    [
      'bad scope',
      yaml({ ...GOOD, scope: 'cluster' }),
      "rule 'cpu-high': scope: must be 'host' or 'service', got 'cluster'",
    ],
    [
      'service scope without aggregate',
      yaml({ ...GOOD, scope: 'service' }),
      "rule 'cpu-high': aggregate: is required with scope 'service' (avg, min, max, sum or count)",
    ],
    [
      'aggregate on a host rule',
      yaml({ ...GOOD, aggregate: 'avg' }),
      "rule 'cpu-high': aggregate: is only allowed with scope 'service'",
    ],
    [
      'bad aggregate',
      yaml({ ...GOOD, scope: 'service', aggregate: 'median' }),
      "rule 'cpu-high': aggregate: must be avg, min, max, sum or count, got 'median'",
    ],
    [
      'clear above a > threshold',
      yaml({ ...GOOD, clear: 95 }),
      "rule 'cpu-high': clear: must be <= the threshold 90 for '>', got 95",
    ],
    [
      'clear below a < threshold',
      yaml({ ...GOOD, condition: '< 10', clear: 5 }),
      "rule 'cpu-high': clear: must be >= the threshold 10 for '<', got 5",
    ],
    [
      'clear with ==',
      yaml({ ...GOOD, condition: '== 0', clear: 0 }),
      "rule 'cpu-high': clear: is not allowed with '==' (hysteresis needs an ordering operator)",
    ],
    [
      'bad duration',
      yaml({ ...GOOD, for: '5 minutes' }),
      "rule 'cpu-high': for: must be a duration like 30s, 2m, 1h or 500ms, or a whole number of ms, got '5 minutes'",
    ],
    [
      'negative duration',
      yaml({ ...GOOD, keep_firing_for: -1 }),
      "rule 'cpu-high': keep_firing_for: must be at most 30d, got -1",
    ],
    [
      'zero interval',
      yaml({ ...GOOD, interval: 0 }),
      "rule 'cpu-high': interval: must be above 0 and at most 1d, got 0",
    ],
    [
      'no_data alert without after',
      yaml({ ...GOOD, no_data: { policy: 'alert' } }),
      "rule 'cpu-high': no_data.after: is required with policy 'alert' (how many intervals without data)",
    ],
    [
      'no_data after 0',
      yaml({ ...GOOD, no_data: { policy: 'alert', after: 0 } }),
      "rule 'cpu-high': no_data.after: must be an integer 1-1000 (intervals), got 0",
    ],
    [
      'no_data bad policy',
      yaml({ ...GOOD, no_data: { policy: 'page' } }),
      "rule 'cpu-high': no_data.policy: must be 'ignore' or 'alert', got 'page'",
    ],
    [
      'no_data as a word',
      yaml({ ...GOOD, no_data: 'alert' }),
      "rule 'cpu-high': no_data: must be 'ignore' or { policy: alert, after: N }, got 'alert'",
    ],
    [
      'label value not a string',
      yaml({ ...GOOD, labels: { tier: 1 } }),
      "rule 'cpu-high': labels.tier: must be a string, got 1",
    ],
    [
      'reserved label',
      yaml({ ...GOOD, labels: { severity: 'high' } }),
      "rule 'cpu-high': labels.severity: is set by Argus (alertname is the rule id, severity comes from the severity field)",
    ],
    [
      'bad services',
      yaml({ ...GOOD, services: 'web' }),
      "rule 'cpu-high': services: must be a list of service names, got 'web'",
    ],
    [
      'bad key',
      yaml(GOOD),
      "rule 'cpu high': id: 'cpu high' is not a rule id (1-128 letters, digits, '.', '_' or '-', starting with a letter or digit)",
      'cpu high',
    ],
  ])('%s', (_, text, message, id = 'cpu-high') => {
    expect(refusal(text, id)).toBe(message);
  });

  it('lists all problems at once, in field order, each with its path', () => {
    const text = yaml({
      metrc: 'cpu',
      scope: 'service',
      condition: '> 90',
      clear: 95,
      severity: 9,
      no_data: { policy: 'alert', after: 1.5 },
      labels: { 'bad-name': 'x', ok: 2 },
    });
    expect(problems(text)).toEqual([
      { path: 'metrc', message: 'unknown field' },
      { path: 'metric', message: 'is required' },
      { path: 'aggregate', message: "is required with scope 'service' (avg, min, max, sum or count)" },
      { path: 'clear', message: "must be <= the threshold 90 for '>', got 95" },
      { path: 'no_data.after', message: 'must be an integer 1-1000 (intervals), got 1.5' },
      { path: 'severity', message: 'must be an integer 1-5, got 9' },
      {
        path: 'labels.bad-name',
        message: 'is not a valid label name (letters, digits and _, not starting with a digit)',
      },
      { path: 'labels.ok', message: 'must be a string, got 2' },
    ]);
  });
});

describe('parseRulesFile', () => {
  it('reads a rules: list or a bare list, with a rule per entry and its document text', () => {
    const list = [
      { id: 'a', ...GOOD },
      { id: 'b', ...GOOD, severity: 5 },
    ];
    for (const text of [yaml({ rules: list }), stringify(list)]) {
      const f = parseRulesFile(text);
      expect(f.errors).toEqual([]);
      expect(f.rules.map((r) => [r.id, r.severity])).toEqual([
        ['a', 3],
        ['b', 5],
      ]);
      expect(parseRule('a', f.texts.get('a')!)).toEqual(f.rules[0]);
    }
  });

  it('reports every bad entry by id, and the valid ones stay usable', () => {
    const f = parseRulesFile(
      yaml({
        rules: [
          { id: 'ok', ...GOOD },
          { id: 'bad', ...GOOD, severity: 9 },
          { ...GOOD },
          { id: 'ok', ...GOOD },
        ],
      }),
    );
    expect(f.rules.map((r) => r.id)).toEqual(['ok']);
    expect(f.errors).toEqual([
      { id: 'bad', message: "rule 'bad': severity: must be an integer 1-5, got 9" },
      { id: 'rules[2]', message: 'rules[2]: id: is required' },
      { id: 'ok', message: "rule 'ok': id: appears twice in the file (rules[0] and rules[3])" },
    ]);
  });

  it.each([
    ['rules: [\n', /^rules file is not valid YAML or JSON: .* at line 2, column 1$/],
    ['rules: 3\n', /^rules file: must be a list of rules or a mapping with 'rules', got 3$/],
    ['rulez: []\n', /^rules file: unknown field\(s\) 'rulez' \(only 'rules'\)$/],
  ])('refuses a malformed file: %j', (text, message) => {
    const f = parseRulesFile(text);
    expect(f.rules).toEqual([]);
    expect(f.errors).toHaveLength(1);
    expect(f.errors[0]!.id).toBe('(file)');
    expect(f.errors[0]!.message).toMatch(message);
  });
});

describe('the sample rules', () => {
  it('sample-rules.yaml is a valid rules file', () => {
    const f = parseRulesFile(readFileSync(new URL('./sample-rules.yaml', import.meta.url), 'utf8'));
    expect(f.errors).toEqual([]);
    expect(f.rules.map((r) => [r.id, r.scope, r.severity])).toEqual([
      ['cpu-high', 'host', 3],
      ['disk-full', 'host', 5],
      ['web-latency', 'service', 4],
    ]);
  });
});

/** mulberry32: a small seeded PRNG, so a failing fuzz case can be replayed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

describe('parseRule: fuzz', () => {
  const base = {
    metric: 'if.in{ifDescr=~"eth.*"}',
    scope: 'host',
    services: ['web'],
    condition: '>= 90',
    clear: 80,
    for: '5m',
    keep_firing_for: '1m',
    no_data: { policy: 'alert', after: 3 },
    interval: '30s',
    severity: 4,
    labels: { team: 'infra' },
    annotations: { summary: '{{value}}' },
  };
  const values = [
    null,
    0,
    -1,
    1.5,
    Number.POSITIVE_INFINITY,
    'x',
    '',
    '> 1',
    '{{',
    '5m',
    true,
    [],
    [1, 'a'],
    {},
    { policy: 'alert' },
    { a: { b: [] } },
    '\u0000',
    'é'.repeat(300),
    '=~',
    'm{a=~"("}',
    'service',
    'avg',
    3,
  ];
  const chars = ['{', '}', '[', ']', ':', '"', "'", '\n', ' ', '-', '>', '!', '&', '*', '#', '%', '\t', '|'];

  it('300 random and mutated documents either parse or throw ARGUS_ERR_INVALID_RULE', () => {
    const rnd = prng(20240501);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const keys = [...Object.keys(base), 'aggregate', 'id', 'bogus'];
    let parsed = 0;
    for (let i = 0; i < 300; i++) {
      const doc: Record<string, unknown> = structuredClone(base);
      for (let n = Math.floor(rnd() * 4); n > 0; n--) {
        const k = pick(keys);
        if (rnd() < 0.3) delete doc[k];
        else doc[k] = pick(values);
      }
      let text = rnd() < 0.5 ? yaml(doc) : JSON.stringify(doc);
      if (rnd() < 0.4)
        for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) {
          const at = Math.floor(rnd() * (text.length + 1));
          text =
            rnd() < 0.5
              ? text.slice(0, at) + pick(chars) + text.slice(at)
              : text.slice(0, at) + text.slice(at + 1);
        }
      try {
        const r = parseRule('fuzz', text);
        parsed++;
        expect([1, 2, 3, 4, 5]).toContain(r.severity);
        expect(Number.isFinite(r.threshold) && Number.isFinite(r.clear)).toBe(true);
        expect(r.intervalMs).toBeGreaterThan(0);
      } catch (e) {
        if (!(e instanceof ArgusError) || e.code !== 'ARGUS_ERR_INVALID_RULE')
          throw new Error(`case ${i}: ${String(e)}\n${text}`);
        const ps = e.detail.problems as RuleProblem[];
        expect(ps.length).toBeGreaterThan(0);
        for (const p of ps)
          expect(typeof p.path === 'string' && typeof p.message === 'string' && p.message !== '').toBe(true);
      }
    }
    // The mix has both outcomes.
    expect(parsed).toBeGreaterThan(10);
    expect(parsed).toBeLessThan(290);
  });
});
