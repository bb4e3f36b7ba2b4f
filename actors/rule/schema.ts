/**
 * Rule documents: what a person writes under etcd `/<prefix>/rules/<id>` (YAML or JSON), checked
 * into a `Rule` with one error that lists every problem by field (`severity: must be an integer 1-5,
 * got 9`), so whoever fixes a rule sees all of it at once and nothing half-valid is applied.
 *
 * Document format (snake_case, as people write it; unknown fields are refused):
 *
 *   metric: 'if.in_errors.rate{ifDescr=~"eth.*"}'   # selector (selector.ts), required
 *   scope: host                   # host (default): each series of each host | service: per service
 *   aggregate: avg                # avg|min|max|sum|count, required with scope service, only there
 *   services: [web, api]          # only hosts of these services; default all
 *   condition: '> 90'             # operator and finite number, required (quote it in YAML)
 *   clear: 80                     # hysteresis; > and >=: <= threshold, < and <=: >= threshold
 *   for: 5m                       # durations: 500ms, 30s, 2m, 1h, 1d, 1h30m, or a number of ms
 *   keep_firing_for: 0
 *   no_data: ignore               # or { policy: ignore } or { policy: alert, after: 3 } (intervals)
 *   interval: 60s                 # expected sample interval
 *   severity: 4                   # 1..5, 5 the most severe (Zabbix), required
 *   labels: { team: infra }       # names [A-Za-z_][A-Za-z0-9_]*, not alertname or severity
 *   annotations: { summary: 'CPU {{value}}% on {{host}}' }
 *   id: cpu-high                  # optional, must equal the key
 *
 * `version` is a short hash of the validated rule's canonical form (and its id): edits that change
 * nothing (comments, `60s` → `1m`, field order) keep the version, so they do not touch alert state.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ArgusError } from '../../runtime/errors.ts';
import { formatSelector, readSelector } from './selector.ts';
import { parseCondition, parseDuration, readYaml, show } from './syntax.ts';
import type { Aggregate, Labels, NoDataPolicy, Operator, Rule, Scope, Selector, Severity } from './types.ts';

export {
  type ConditionResult,
  parseCondition,
  parseDuration,
  readYaml,
  show,
  type YamlResult,
} from './syntax.ts';

export const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RESERVED_LABELS = new Set(['alertname', 'severity']);
const DAY = 86_400_000;

export const isRuleId = (id: string): boolean => RULE_ID.test(id);

export const RULE_DEFAULTS = {
  scope: 'host' as Scope,
  forMs: 0,
  keepFiringForMs: 0,
  noData: { policy: 'ignore' } as NoDataPolicy,
  intervalMs: 60_000,
} as const;

export interface RuleProblem {
  /** The field path as written in the document: `severity`, `no_data.after`, `labels.team`; '' for the whole. */
  readonly path: string;
  readonly message: string;
}

type Iss = { readonly input?: unknown };
/** An error map: 'is required' when absent, else `must be <what>, got <value>`. */
const must = (what: string) => (iss: Iss) =>
  iss.input === undefined ? 'is required' : `must be ${what}, got ${show(iss.input)}`;

const duration = (min: number, max: number, range: string) =>
  z
    .union([z.number(), z.string()], {
      error: must('a duration like 30s, 2m, 1h or 500ms, or a number of ms'),
    })
    .transform((v, ctx) => {
      const ms = typeof v === 'number' ? v : parseDuration(v);
      if (ms === undefined || !Number.isInteger(ms)) {
        ctx.issues.push({
          code: 'custom',
          input: v,
          message: `must be a duration like 30s, 2m, 1h or 500ms, or a whole number of ms, got ${show(v)}`,
        });
        return z.NEVER;
      }
      if (ms < min || ms > max) {
        ctx.issues.push({ code: 'custom', input: v, message: `must be ${range}, got ${show(v)}` });
        return z.NEVER;
      }
      return ms;
    });

// ── fields ────────────────────────────────────────────────────────────────────────────────────────

const name = (what: string, re: RegExp, reserved?: ReadonlySet<string>) => (k: string) =>
  !re.test(k)
    ? `is not a valid ${what} name (letters, digits and _, not starting with a digit)`
    : reserved?.has(k)
      ? `is set by Argus (alertname is the rule id, severity comes from the severity field)`
      : undefined;

/** A mapping of names to strings; every bad name and every bad value is its own problem. */
const stringMap = (what: string, check: (k: string) => string | undefined) =>
  z.unknown().transform((v, ctx): Labels => {
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      ctx.issues.push({
        code: 'custom',
        input: v,
        message: `must be a mapping of ${what} names to strings, got ${show(v)}`,
      });
      return z.NEVER;
    }
    const out: Record<string, string> = {};
    for (const [k, value] of Object.entries(v)) {
      const why = check(k);
      if (why) ctx.issues.push({ code: 'custom', input: v, path: [k], message: why });
      if (typeof value !== 'string')
        ctx.issues.push({
          code: 'custom',
          input: v,
          path: [k],
          message: `must be a string, got ${show(value)}`,
        });
      else out[k] = value;
    }
    return out;
  });

const FIELDS = {
  id: z.string({ error: must('a string') }).optional(),
  metric: z
    .string({ error: must(`a selector like 'cpu.busy_pct' or 'disk.used_pct{mount="/"}'`) })
    .transform((s, ctx): Selector => {
      const r = readSelector(s);
      if (r.ok) return r.selector;
      ctx.issues.push({
        code: 'custom',
        input: s,
        message: `${show(s)} at column ${r.column}: ${r.message}`,
      });
      return z.NEVER;
    }),
  scope: z.enum(['host', 'service'], { error: must("'host' or 'service'") }).default('host'),
  aggregate: z
    .enum(['avg', 'min', 'max', 'sum', 'count'], { error: must('avg, min, max, sum or count') })
    .optional(),
  services: z
    .array(z.string({ error: must('a service name') }).regex(SERVICE, { error: must('a service name') }), {
      error: must('a list of service names'),
    })
    .default([]),
  condition: z.string({ error: must("an operator and a number like '> 90'") }).transform((s, ctx) => {
    const r = parseCondition(s);
    if (r.ok) return r;
    ctx.issues.push({ code: 'custom', input: s, message: r.message });
    return z.NEVER;
  }),
  clear: z.number({ error: must('a finite number') }).optional(),
  for: duration(0, 30 * DAY, 'at most 30d').default(0),
  keep_firing_for: duration(0, 30 * DAY, 'at most 30d').default(0),
  no_data: z.unknown().transform((v, ctx): NoDataPolicy => {
    const fail = (message: string, path: string[] = []) => {
      ctx.issues.push({ code: 'custom', input: v, path, message });
      return z.NEVER;
    };
    if (v === undefined || v === 'ignore') return { policy: 'ignore' };
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      return fail(`must be 'ignore' or { policy: alert, after: N }, got ${show(v)}`);
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'policy' && k !== 'after');
    if (extra.length > 0) return fail(`unknown field(s) ${extra.map(show).join(', ')}`);
    if (o.policy === 'ignore')
      return o.after === undefined
        ? { policy: 'ignore' }
        : fail("is only allowed with policy 'alert'", ['after']);
    if (o.policy !== 'alert')
      return fail(
        o.policy === undefined ? 'is required' : `must be 'ignore' or 'alert', got ${show(o.policy)}`,
        ['policy'],
      );
    const after = o.after;
    if (after === undefined)
      return fail("is required with policy 'alert' (how many intervals without data)", ['after']);
    if (typeof after !== 'number' || !Number.isInteger(after) || after < 1 || after > 1000)
      return fail(`must be an integer 1-1000 (intervals), got ${show(after)}`, ['after']);
    return { policy: 'alert', after };
  }),
  interval: duration(1, DAY, 'above 0 and at most 1d').default(60_000),
  severity: z
    .number({ error: must('an integer 1-5') })
    .int({ error: must('an integer 1-5') })
    .min(1, { error: must('an integer 1-5') })
    .max(5, { error: must('an integer 1-5') }),
  labels: stringMap('label', name('label', LABEL_NAME, RESERVED_LABELS)),
  annotations: stringMap('annotation', name('annotation', LABEL_NAME)),
} as const;

type FieldName = keyof typeof FIELDS;
type Parsed = { [K in FieldName]?: z.output<(typeof FIELDS)[K]> };
const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );

const sortedMap = (m: Labels): Labels =>
  Object.fromEntries(
    Object.keys(m)
      .sort()
      .map((k) => [k, m[k]!]),
  );

/** Cross-field checks, on the fields that passed their own. */
const crossCheck = (
  id: string,
  p: Parsed,
  failed: ReadonlySet<string>,
  add: (path: string, message: string) => void,
) => {
  if (p.id !== undefined && p.id !== id)
    add('id', `must equal the rule's key ${show(id)}, got ${show(p.id)}`);
  if (p.scope === 'service' && p.aggregate === undefined && !failed.has('aggregate'))
    add('aggregate', "is required with scope 'service' (avg, min, max, sum or count)");
  if (p.scope === 'host' && p.aggregate !== undefined)
    add('aggregate', "is only allowed with scope 'service'");
  const c = p.condition;
  if (c?.ok && p.clear !== undefined) {
    if (c.op === '==' || c.op === '!=')
      add('clear', `is not allowed with '${c.op}' (hysteresis needs an ordering operator)`);
    else if ((c.op === '>' || c.op === '>=') && p.clear > c.threshold)
      add('clear', `must be <= the threshold ${c.threshold} for '${c.op}', got ${p.clear}`);
    else if ((c.op === '<' || c.op === '<=') && p.clear < c.threshold)
      add('clear', `must be >= the threshold ${c.threshold} for '${c.op}', got ${p.clear}`);
  }
};

/** The rule's canonical form (what `version` hashes). */
const canonical = (r: Omit<Rule, 'version'>): string =>
  JSON.stringify([
    r.id,
    formatSelector(r.selector),
    r.scope,
    r.aggregate ?? null,
    r.services,
    r.op,
    r.threshold,
    r.clear,
    r.forMs,
    r.keepFiringForMs,
    r.noData,
    r.intervalMs,
    r.severity,
    Object.entries(r.labels),
    Object.entries(r.annotations),
  ]);

export const ruleVersion = (r: Omit<Rule, 'version'>): string =>
  createHash('sha256').update(canonical(r)).digest('hex').slice(0, 12);

/** Problems in document-field order (unknown fields and the whole document first), stable otherwise. */
const inFieldOrder = (problems: readonly RuleProblem[]): RuleProblem[] => {
  const rank = (p: RuleProblem) => FIELD_NAMES.indexOf(/^[^.[]*/.exec(p.path)![0] as FieldName);
  return problems
    .map((p, i) => ({ p, i, r: rank(p) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.p);
};

const invalid = (id: string, problems: readonly RuleProblem[]): ArgusError =>
  new ArgusError(
    'ARGUS_ERR_INVALID_RULE',
    `rule ${show(id)}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`,
    { rule: id, problems },
  );

/** Checks a parsed document (an object, not text) into a Rule; throws ARGUS_ERR_INVALID_RULE. */
export const ruleFromDocument = (id: string, doc: unknown): Rule => {
  const problems: RuleProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  if (!isRuleId(id))
    add(
      'id',
      `${show(id)} is not a rule id (1-128 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
    );
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    add('', `must be a mapping of rule fields (metric, condition, severity, …), got ${show(doc)}`);
    throw invalid(id, problems);
  }
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!(k in FIELDS)) add(k, 'unknown field');
  const parsed: Record<string, unknown> = {};
  const failed = new Set<string>();
  for (const field of FIELD_NAMES) {
    const r = (FIELDS[field] as z.ZodType).safeParse(d[field]);
    if (r.success) parsed[field] = r.data;
    else {
      failed.add(field);
      for (const issue of r.error.issues) add(formatPath([field, ...issue.path]), issue.message);
    }
  }
  const p = parsed as Parsed;
  crossCheck(id, p, failed, add);
  if (problems.length > 0) throw invalid(id, inFieldOrder(problems));
  const c = p.condition as { op: Operator; threshold: number };
  const rule: Omit<Rule, 'version'> = {
    id,
    selector: p.metric!,
    scope: p.scope!,
    ...(p.aggregate !== undefined ? { aggregate: p.aggregate as Aggregate } : {}),
    services: [...new Set(p.services!)],
    op: c.op,
    threshold: c.threshold,
    clear: p.clear ?? c.threshold,
    forMs: p.for!,
    keepFiringForMs: p.keep_firing_for!,
    noData: p.no_data!,
    intervalMs: p.interval!,
    severity: p.severity as Severity,
    labels: sortedMap(p.labels!),
    annotations: sortedMap(p.annotations!),
  };
  return { ...rule, version: ruleVersion(rule) };
};

/** Parses the text of one rule document (etcd value) into a Rule; throws ARGUS_ERR_INVALID_RULE. */
export const parseRule = (id: string, text: string): Rule => {
  const y = readYaml(text);
  if (!y.ok) throw invalid(id, [{ path: '', message: y.message }]);
  return ruleFromDocument(id, y.value);
};

export interface RulesFile {
  readonly rules: readonly Rule[];
  /** One per rejected rule (or `(file)` when the file itself is wrong); message names rule and field. */
  readonly errors: readonly { readonly id: string; readonly message: string }[];
  /** The document of each valid rule as it goes to the config source (JSON of what was written). */
  readonly texts: ReadonlyMap<string, string>;
}

const messageOf = (e: unknown): string =>
  e instanceof ArgusError
    ? e.message.slice(`${e.code}: `.length)
    : e instanceof Error
      ? e.message
      : String(e);

/**
 * A rules file for the apply CLI/API: `rules: [{ id, … }, …]` or the list alone. Every rule is checked;
 * the result has the valid ones and an error per invalid one (the caller decides whether to apply).
 */
export const parseRulesFile = (text: string): RulesFile => {
  const fileError = (message: string): RulesFile => ({
    rules: [],
    errors: [{ id: '(file)', message }],
    texts: new Map(),
  });
  const y = readYaml(text);
  if (!y.ok) return fileError(`rules file ${y.message}`);
  let list: unknown = y.value;
  if (typeof list === 'object' && list !== null && !Array.isArray(list)) {
    const extra = Object.keys(list).filter((k) => k !== 'rules');
    if (extra.length > 0)
      return fileError(`rules file: unknown field(s) ${extra.map(show).join(', ')} (only 'rules')`);
    list = (list as { rules?: unknown }).rules;
  }
  if (!Array.isArray(list))
    return fileError(`rules file: must be a list of rules or a mapping with 'rules', got ${show(list)}`);
  const rules: Rule[] = [];
  const errors: { id: string; message: string }[] = [];
  const texts = new Map<string, string>();
  const seen = new Map<string, number>();
  list.forEach((entry: unknown, i) => {
    const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
    if (typeof id !== 'string') {
      errors.push({
        id: `rules[${i}]`,
        message: `rules[${i}]: id: ${id === undefined ? 'is required' : `must be a string, got ${show(id)}`}`,
      });
      return;
    }
    const first = seen.get(id);
    if (first !== undefined) {
      errors.push({
        id,
        message: `rule ${show(id)}: id: appears twice in the file (rules[${first}] and rules[${i}])`,
      });
      return;
    }
    seen.set(id, i);
    try {
      rules.push(ruleFromDocument(id, entry));
      texts.set(id, JSON.stringify(entry));
    } catch (e) {
      errors.push({ id, message: messageOf(e) });
    }
  });
  return { rules, errors, texts };
};

/** The message of a rule error without its code (for API answers and warnings). */
export const ruleErrorMessage = messageOf;
