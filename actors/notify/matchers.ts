/**
 * Label matchers in Alertmanager's syntax, used by routes and silences: `team="infra"`, `env!="dev"`,
 * `service=~"pay.*"`, `x!~"y"`, and unquoted values (`team=infra`). As in Alertmanager, a label the
 * alert does not have counts as the empty string (so `env!="dev"` matches an alert without `env`, and
 * `env=""` matches only those), and regular expressions are anchored at both ends (`=~"pay.*"` does
 * not match `prepay`). Regular expressions are JavaScript's, not Go's RE2: the common subset (classes,
 * alternation, repetition) means the same.
 *
 * Parsing returns its error as data (`{ ok: false, error }`) so a document validator can put it under
 * the field path it came from.
 */
import type { Labels } from '../rule/types.ts';
import type { LabelMatcher } from './types.ts';

export type MatcherResult =
  | { readonly ok: true; readonly matcher: LabelMatcher }
  | { readonly ok: false; readonly error: string };

export type MatchersResult =
  | { readonly ok: true; readonly matchers: readonly LabelMatcher[] }
  | { readonly ok: false; readonly error: string };

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
/** Label names as Prometheus allows them (`[a-zA-Z_][a-zA-Z0-9_]*`). */
export const isLabelName = (s: string): boolean => /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(s);
const OPS = ['=~', '!~', '!=', '='] as const;
const HINT = 'must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y"';

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

/** The body of a double-quoted value (after the opening quote): its text and where it ended. */
const readQuoted = (s: string, from: number): { value: string; end: number } | { error: string } => {
  let value = '';
  for (let i = from; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c === '\\') {
      const next = s[i + 1];
      if (next === undefined) break;
      value += next === 'n' ? '\n' : next === 't' ? '\t' : next;
      i++;
    } else value += c;
  }
  return { error: 'has an unterminated quoted value' };
};

/** Compiles `=~`/`!~` values anchored, like Alertmanager. */
const compile = (source: string): RegExp | string => {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (e) {
    return `has an invalid regular expression ${JSON.stringify(source)}: ${e instanceof Error ? e.message : String(e)}`;
  }
};

export const makeMatcher = (name: string, op: LabelMatcher['op'], value: string): MatcherResult => {
  if (op !== '=~' && op !== '!~') return { ok: true, matcher: { name, op, value } };
  const regex = compile(value);
  return typeof regex === 'string' ? fail(regex) : { ok: true, matcher: { name, op, value, regex } };
};

/** One matcher (`team="infra"`). */
export const parseMatcher = (text: string): MatcherResult => {
  if (typeof text !== 'string') return fail(`${HINT}, got ${JSON.stringify(text) ?? String(text)}`);
  const s = text.trim();
  const name = LABEL_NAME.exec(s)?.[0];
  if (!name) return fail(`${HINT}, got ${JSON.stringify(text)} (no label name)`);
  const rest = s.slice(name.length).trimStart();
  const op = OPS.find((o) => rest.startsWith(o));
  if (!op) return fail(`${HINT}, got ${JSON.stringify(text)} (no operator after '${name}')`);
  const raw = rest.slice(op.length).trimStart();
  if (!raw.startsWith('"')) {
    if (raw.includes('"'))
      return fail(`${HINT}, got ${JSON.stringify(text)} (a value with quotes must be quoted as a whole)`);
    return makeMatcher(name, op, raw.trimEnd());
  }
  const quoted = readQuoted(raw, 1);
  if ('error' in quoted) return fail(`${JSON.stringify(text)} ${quoted.error}`);
  if (raw.slice(quoted.end).trim() !== '')
    return fail(`${HINT}, got ${JSON.stringify(text)} (text after the closing quote)`);
  return makeMatcher(name, op, quoted.value);
};

/** Splits `a="x,y", b=c` at the commas outside quotes. */
const splitTopLevel = (s: string): string[] => {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted && c === '\\') {
      current += c + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
};

/** A matcher list as one string: `{team="infra", env!="dev"}` or without the braces. */
export const parseMatchers = (text: string): MatchersResult => {
  let s = text.trim();
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) return fail(`${JSON.stringify(text)} opens '{' but does not close it`);
    s = s.slice(1, -1);
  }
  if (s.trim() === '') return { ok: true, matchers: [] };
  const matchers: LabelMatcher[] = [];
  for (const part of splitTopLevel(s)) {
    if (part.trim() === '') continue;
    const r = parseMatcher(part);
    if (!r.ok) return r;
    matchers.push(r.matcher);
  }
  return { ok: true, matchers };
};

export const matches = (m: LabelMatcher, labels: Labels): boolean => {
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return (m.regex ?? compileOrNever(m.value)).test(v);
    case '!~':
      return !(m.regex ?? compileOrNever(m.value)).test(v);
    default: {
      const never: never = m.op;
      throw new Error(`unknown matcher operator ${String(never)}`);
    }
  }
};

/** A matcher built by hand without its regex: compile it here (a bad one matches nothing). */
const compileOrNever = (source: string): RegExp => {
  const r = compile(source);
  return typeof r === 'string' ? /(?!)/ : r;
};

/** True when every matcher matches (an empty list matches everything). */
export const matchesAll = (matchers: readonly LabelMatcher[], labels: Labels): boolean => {
  for (const m of matchers) if (!matches(m, labels)) return false;
  return true;
};

/** `service=~"pay.*"`: the canonical text of a matcher (always quoted). */
export const formatMatcher = (m: LabelMatcher): string => `${m.name}${m.op}${JSON.stringify(m.value)}`;
