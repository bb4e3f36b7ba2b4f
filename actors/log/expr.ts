/**
 * The expression language of log rules and filters (the WHERE and HAVING trees sql.ts builds) and its
 * evaluation. Pure, and shared by rules, the live tail's filter (filter.ts) and windows.ts.
 *
 * Evaluation is three-valued as in SQL: a missing field is NULL, a comparison with NULL is unknown,
 * NOT unknown is unknown, and a record passes only when the filter is true. Numbers compare with
 * numeric strings numerically (logs carry `"500"` as often as `500`); other mixed types are unequal.
 * Fields are record keys: `a.b.c` and `"a.b"` look up the key as written, else walk the dots.
 */
import type { LogRulePlan } from './sql.ts';

export type Literal = string | number | boolean | null;
export type Operand =
  | { readonly kind: 'field'; readonly path: string }
  | { readonly kind: 'literal'; readonly value: Literal }
  | { readonly kind: 'aggregate'; readonly alias: string };
export type Comparison = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type Expr =
  | { readonly op: 'and' | 'or'; readonly args: readonly Expr[] }
  | { readonly op: 'not'; readonly arg: Expr }
  | { readonly op: 'cmp'; readonly cmp: Comparison; readonly left: Operand; readonly right: Operand }
  | { readonly op: 'like'; readonly negate: boolean; readonly arg: Operand; readonly pattern: string }
  | {
      readonly op: 'regex';
      readonly negate: boolean;
      readonly ignoreCase: boolean;
      readonly arg: Operand;
      readonly pattern: string;
    }
  | {
      readonly op: 'in';
      readonly negate: boolean;
      readonly arg: Operand;
      readonly values: readonly Literal[];
    }
  | { readonly op: 'null'; readonly negate: boolean; readonly arg: Operand };

type Fields = Record<string, unknown>;

/** Compiled patterns, shared by every rule; bounded so hot-applied rule churn cannot grow it forever. */
const patterns = new Map<string, RegExp>();
const compiled = (key: string, make: () => RegExp): RegExp => {
  let re = patterns.get(key);
  if (!re) {
    if (patterns.size >= 1_000) patterns.clear();
    re = make();
    patterns.set(key, re);
  }
  return re;
};

/** LIKE: `%` any run, `_` one character, everything else literal; the whole value must match. */
export const compileLike = (pattern: string): RegExp =>
  compiled(`like:${pattern}`, () => {
    // A leading or trailing `%` is an unanchored end rather than `[\s\S]*`: the same matches, without
    // the backtracking (`%timeout%` is a plain search).
    const chars = [...pattern];
    const open = chars[0] === '%';
    const close = chars.length > 1 && chars[chars.length - 1] === '%';
    let body = '';
    for (const ch of chars.slice(open ? 1 : 0, close ? -1 : undefined)) {
      body += ch === '%' ? '[\\s\\S]*' : ch === '_' ? '[\\s\\S]' : ch.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    }
    return new RegExp(`${open ? '' : '^'}${body}${close ? '' : '$'}`, 'u');
  });

/** Dotted paths split once: rules look the same few paths up for every record. */
const PATH_PARTS = new Map<string, readonly string[]>();
const partsOf = (path: string): readonly string[] => {
  let parts = PATH_PARTS.get(path);
  if (parts === undefined) {
    parts = path.split('.');
    if (PATH_PARTS.size < 10_000) PATH_PARTS.set(path, parts);
  }
  return parts;
};

/** A record field: the key as written (`"user.id"`), else the dotted path walked (`user.id`). */
export const lookupField = (record: unknown, path: string): unknown => {
  if (typeof record !== 'object' || record === null) return undefined;
  if (Object.hasOwn(record, path)) return (record as Fields)[path];
  if (!path.includes('.')) return undefined;
  let v: unknown = record;
  for (const part of partsOf(path)) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, part)) return undefined;
    v = (v as Fields)[part];
  }
  return v;
};

/** SQL's three values: true, false, and null for unknown. */
export type Tri = boolean | null;

const operandValue = (o: Operand, record: unknown, values: Readonly<Record<string, unknown>>): unknown => {
  const v =
    o.kind === 'literal' ? o.value : o.kind === 'field' ? lookupField(record, o.path) : values[o.alias];
  return v === undefined ? null : v;
};

/** A finite number, or a string holding one; undefined otherwise. */
export const numeric = (v: unknown): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
};

const compare = (a: unknown, b: unknown, cmp: Comparison): Tri => {
  if (a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'string') b = numeric(b) ?? b;
  if (typeof b === 'number' && typeof a === 'string') a = numeric(a) ?? a;
  if (typeof a !== typeof b || typeof a === 'object' || typeof a === 'boolean') {
    const same = typeof a === typeof b && JSON.stringify(a) === JSON.stringify(b);
    return cmp === '=' ? same : cmp === '!=' ? !same : null;
  }
  const x = a as number | string;
  const y = b as number | string;
  switch (cmp) {
    case '=':
      return x === y;
    case '!=':
      return x !== y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    default: {
      const never: never = cmp;
      return never;
    }
  }
};

const text = (v: unknown): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

/** Evaluates a WHERE or HAVING tree; `values` holds aggregate results by alias (HAVING only). */
export const evaluateExpr = (
  e: Expr,
  record: unknown,
  values: Readonly<Record<string, unknown>> = {},
): Tri => {
  switch (e.op) {
    case 'and':
    case 'or': {
      const stop = e.op === 'or';
      let unknown = false;
      for (const a of e.args) {
        const v = evaluateExpr(a, record, values);
        if (v === stop) return stop;
        if (v === null) unknown = true;
      }
      return unknown ? null : !stop;
    }
    case 'not': {
      const v = evaluateExpr(e.arg, record, values);
      return v === null ? null : !v;
    }
    case 'cmp':
      return compare(operandValue(e.left, record, values), operandValue(e.right, record, values), e.cmp);
    case 'like':
    case 'regex': {
      const s = text(operandValue(e.arg, record, values));
      if (s === null) return null;
      const re =
        e.op === 'like'
          ? compileLike(e.pattern)
          : compiled(
              `re:${e.ignoreCase ? 'i' : ''}:${e.pattern}`,
              () => new RegExp(e.pattern, e.ignoreCase ? 'iu' : 'u'),
            );
      return re.test(s) !== e.negate;
    }
    case 'in': {
      const v = operandValue(e.arg, record, values);
      if (v === null) return null;
      let unknown = false;
      for (const lit of e.values) {
        const c = compare(v, lit, '=');
        if (c === true) return !e.negate;
        if (c === null) unknown = true;
      }
      return unknown ? null : e.negate;
    }
    case 'null':
      return (operandValue(e.arg, record, values) === null) !== e.negate;
    default: {
      const never: never = e;
      return never;
    }
  }
};

/** True when the record passes the rule's WHERE (unknown counts as false, as in SQL). */
export const evaluateFilter = (plan: LogRulePlan, record: unknown): boolean =>
  plan.filter === null || evaluateExpr(plan.filter, record) === true;
