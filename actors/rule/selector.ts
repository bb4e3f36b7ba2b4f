/**
 * Metric selectors, PromQL style: `cpu.busy_pct`, `if.in_octets.rate{ifDescr=~"eth.*",ifDescr!="eth9"}`.
 *
 * Grammar (whitespace allowed between tokens):
 *   selector := metric [ '{' [ matcher { ',' matcher } [ ',' ] ] '}' ]
 *   metric   := one or more of letters, digits, `.`, `_`, `-`, `:`
 *   matcher  := tag ( '=' | '!=' | '=~' | '!~' ) string
 *   tag      := a letter or `_`, then letters, digits, `.`, `_`, `-`, `:`
 *   string   := "…" or '…' with `\\`, `\"`, `\'`, `\n`, `\t` escapes
 *
 * Regexes are anchored (`^(?:re)$`) as in Prometheus: `=~"eth"` matches `eth` only, not `eth0`.
 * A tag the sample does not carry reads as the empty string, also as in Prometheus: `mount!="/boot"`
 * matches a sample without `mount`, `mount=~".*"` matches it too, `mount="/"` does not.
 *
 * Parsing is pure and reports the first problem as data (`readSelector`): the column (1-based) and
 * what was expected there, so the rule schema can put it under the `metric` field.
 */
import { ArgusError } from '../../runtime/errors.ts';
import type { Selector, TagMatcher } from './types.ts';

export type Tags = Readonly<Record<string, string>>;

export type SelectorResult =
  | { readonly ok: true; readonly selector: Selector }
  | { readonly ok: false; readonly column: number; readonly message: string };

const isMetricChar = (c: string) => /[A-Za-z0-9._:-]/.test(c);
const isTagStart = (c: string) => /[A-Za-z_]/.test(c);
const isTagChar = isMetricChar;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', '"': '"', "'": "'", n: '\n', t: '\t' };

class Fail {
  constructor(
    readonly at: number,
    readonly message: string,
  ) {}
}

/** A cursor over the text; `fail` throws a `Fail` caught by `readSelector` (never escapes this file). */
class Reader {
  pos = 0;
  constructor(readonly text: string) {}
  get done() {
    return this.pos >= this.text.length;
  }
  peek(offset = 0): string {
    return this.text[this.pos + offset] ?? '';
  }
  skipSpace() {
    while (!this.done && /\s/.test(this.peek())) this.pos++;
  }
  fail(message: string, at = this.pos): never {
    throw new Fail(at, message);
  }
  /** What is at the cursor, for messages: `'~'` or `the end`. */
  here(): string {
    return this.done ? 'the end' : `'${this.peek()}'`;
  }
}

const readMetric = (r: Reader): string => {
  const start = r.pos;
  while (!r.done && isMetricChar(r.peek())) r.pos++;
  if (r.pos === start)
    r.fail(`expected a metric name (letters, digits, '.', '_', '-', ':'), found ${r.here()}`);
  return r.text.slice(start, r.pos);
};

const readTag = (r: Reader): string => {
  const start = r.pos;
  if (!isTagStart(r.peek())) r.fail(`expected a tag name or '}', found ${r.here()}`);
  while (!r.done && isTagChar(r.peek())) r.pos++;
  return r.text.slice(start, r.pos);
};

const readOp = (r: Reader, tag: string): TagMatcher['op'] => {
  const two = r.peek() + r.peek(1);
  if (two === '=~' || two === '!=' || two === '!~') {
    r.pos += 2;
    return two;
  }
  if (r.peek() === '=') {
    r.pos += 1;
    return '=';
  }
  return r.fail(`expected '=', '!=', '=~' or '!~' after tag '${tag}', found ${r.here()}`);
};

const readString = (r: Reader, tag: string): string => {
  const quote = r.peek();
  if (quote !== '"' && quote !== "'") r.fail(`expected a quoted value for tag '${tag}', found ${r.here()}`);
  const start = r.pos;
  r.pos++;
  let out = '';
  for (;;) {
    if (r.done) r.fail(`unterminated string (opened at column ${start + 1})`, start);
    const c = r.peek();
    r.pos++;
    if (c === quote) return out;
    if (c === '\\') {
      const e = ESCAPES[r.peek()];
      if (e === undefined) r.fail(`unknown escape '\\${r.peek()}' in the value of tag '${tag}'`, r.pos - 1);
      out += e;
      r.pos++;
    } else out += c;
  }
};

const compile = (r: Reader, tag: string, value: string, at: number): RegExp => {
  try {
    // Compiled alone first: `a)|(b` would otherwise balance the wrapper and escape the anchors.
    new RegExp(value);
    return new RegExp(`^(?:${value})$`);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return r.fail(`the value of tag '${tag}' is not a valid regular expression: ${why}`, at);
  }
};

const readMatcher = (r: Reader): TagMatcher => {
  const tag = readTag(r);
  r.skipSpace();
  const op = readOp(r, tag);
  r.skipSpace();
  const at = r.pos;
  const value = readString(r, tag);
  if (op === '=~' || op === '!~') return { tag, op, value, regex: compile(r, tag, value, at) };
  return { tag, op, value };
};

/** Parses a selector; the first problem comes back as data with its 1-based column. */
export const readSelector = (text: string): SelectorResult => {
  const r = new Reader(text);
  try {
    r.skipSpace();
    const metric = readMetric(r);
    r.skipSpace();
    const matchers: TagMatcher[] = [];
    if (r.peek() === '{') {
      r.pos++;
      r.skipSpace();
      while (r.peek() !== '}') {
        matchers.push(readMatcher(r));
        r.skipSpace();
        if (r.peek() === ',') {
          r.pos++;
          r.skipSpace();
        } else if (r.peek() !== '}') r.fail(`expected ',' or '}' after a matcher, found ${r.here()}`);
      }
      r.pos++;
      r.skipSpace();
    }
    if (!r.done) r.fail(`unexpected ${r.here()} after the selector`);
    return { ok: true, selector: { metric, matchers } };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, column: e.at + 1, message: e.message };
    throw e;
  }
};

/** Parses a selector or throws ARGUS_ERR_INVALID_RULE naming the column and the problem. */
export const parseSelector = (text: string): Selector => {
  const r = readSelector(text);
  if (r.ok) return r.selector;
  throw new ArgusError('ARGUS_ERR_INVALID_RULE', `selector '${text}' at column ${r.column}: ${r.message}`, {
    selector: text,
    column: r.column,
    problem: r.message,
  });
};

const quote = (s: string) =>
  `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;

/** The canonical text of a selector (parses back to the same selector). */
export const formatSelector = (sel: Selector): string =>
  sel.matchers.length === 0
    ? sel.metric
    : `${sel.metric}{${sel.matchers.map((m) => `${m.tag}${m.op}${quote(m.value)}`).join(',')}}`;

/** Whether the tags satisfy every matcher (the metric name is not looked at). Hot path: no allocation. */
export const matchesTags = (sel: Selector, tags: Tags): boolean => {
  const ms = sel.matchers;
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!;
    const v = tags[m.tag] ?? '';
    switch (m.op) {
      case '=':
        if (v !== m.value) return false;
        break;
      case '!=':
        if (v === m.value) return false;
        break;
      case '=~':
        if (!m.regex!.test(v)) return false;
        break;
      case '!~':
        if (m.regex!.test(v)) return false;
        break;
      default: {
        const never: never = m.op;
        throw new Error(`unknown matcher op ${String(never)}`);
      }
    }
  }
  return true;
};

/** Whether a sample of `metric` with `tags` is selected. */
export const matchesSelector = (sel: Selector, metric: string, tags: Tags): boolean =>
  sel.metric === metric && matchesTags(sel, tags);
