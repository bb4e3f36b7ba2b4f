/**
 * SQL log rules (issue 7): a rule stored under etcd `/<prefix>/logrules/<id>` is one SELECT, parsed
 * with node-sql-parser (PostgreSQL dialect: `"quoted.names"` are identifiers, `~` is a regex match)
 * and checked into a `LogRulePlan` — plain JSON data that goes into stream snapshots — or refused
 * with one message naming the rule, the problem and, where the parser knows it, line and column.
 *
 *   SELECT host, count(*) AS errors FROM "payments.nginx-access"
 *   WHERE status >= 500 GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10
 *
 * Accepted: one stream in FROM; WHERE with = != <> < <= > >=, AND/OR/NOT, [NOT] LIKE (% and _),
 * regex `~` `!~` `~*` `!~*` (JavaScript syntax), [NOT] IN (literals), IS [NOT] NULL, string, number,
 * boolean and NULL literals, fields as record keys (`a.b.c` and `"a.b"` look up the key as written,
 * else walk the dots); count(*), count(f), count(DISTINCT f), sum, avg, min, max with aliases;
 * GROUP BY fields plus exactly one window: TUMBLE(size) or HOP(size, slide) / SLIDE(size, slide),
 * sizes written `1 minute`, `30 seconds`, `INTERVAL 30 SECOND` or `INTERVAL '1' MINUTE`
 * (units second, minute, hour, day; node-sql-parser has no `n unit` form, so inside a window call it
 * is rewritten to `INTERVAL n unit` before parsing, and error positions are mapped back);
 * HAVING over aggregates, their aliases and group fields.
 *
 * node-sql-parser (5.x) binds `a OR b AND c` as `(a OR b) AND c`, so an OR directly under an AND
 * must be parenthesised; such a rule is refused rather than evaluated with surprising precedence.
 *
 * The WHERE/HAVING trees and their three-valued evaluation are in expr.ts; windows in windows.ts.
 */
import NodeSqlParser from 'node-sql-parser';
import { type Comparison, compileLike, type Expr, type Operand } from './expr.ts';

export type AggregateFn = 'count' | 'sum' | 'avg' | 'min' | 'max';
export interface AggregateSpec {
  readonly fn: AggregateFn;
  /** Absent for count(*). */
  readonly field?: string;
  readonly distinct?: true;
  readonly alias: string;
  /** Only used by HAVING, not in the results. */
  readonly hidden?: true;
}
export interface WindowSpec {
  readonly kind: 'tumble' | 'hop';
  readonly sizeMs: number;
  /** Equal to sizeMs for tumbling windows. */
  readonly slideMs: number;
}
export type Output =
  | { readonly name: string; readonly source: 'group'; readonly field: string }
  | { readonly name: string; readonly source: 'aggregate'; readonly alias: string };
export interface LogRulePlan {
  readonly id: string;
  readonly stream: string;
  readonly filter: Expr | null;
  readonly groupBy: readonly string[];
  readonly window: WindowSpec;
  readonly aggregates: readonly AggregateSpec[];
  readonly having: Expr | null;
  readonly outputs: readonly Output[];
}
export type LogRuleResult =
  | { readonly ok: true; readonly rule: LogRulePlan }
  | { readonly ok: false; readonly error: string; readonly position?: Pos };

export const LOG_RULE_LIMITS = {
  /** Longest rule text accepted. */
  maxSqlChars: 16_384,
  /** Deepest expression accepted (the parser and our walk are recursive). */
  maxDepth: 1_000,
  /** Windows from 1 s to 7 days; a HOP holds at most this many windows per record. */
  minWindowMs: 1_000,
  maxWindowMs: 7 * 86_400_000,
  maxWindowsPerRecord: 120,
} as const;

const UNIT_MS: Record<string, number> = { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const AGGREGATES = new Set<string>(['count', 'sum', 'avg', 'min', 'max']);
const WINDOWS = new Set<string>(['tumble', 'hop', 'slide']);
const COMPARISONS: Record<string, Comparison> = {
  '=': '=',
  '!=': '!=',
  '<>': '!=',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

export interface Pos {
  readonly line: number;
  readonly column: number;
}
type Node = Record<string, unknown>;
type At = (message: string, node?: unknown) => never;

/** A refusal inside the walk; turned into `{ ok: false }` at the one exit of parseLogRule. */
class Refusal {
  constructor(
    readonly message: string,
    /** Offset in the rewritten text, if the parser located the node. */
    readonly offset?: number,
  ) {}
}
const at: At = (message, node) => {
  throw new Refusal(message, offsetOf(node));
};
const offsetOf = (node: unknown): number | undefined => {
  const o = ((node as Node | null)?.loc as { start?: { offset?: unknown } } | undefined)?.start?.offset;
  return typeof o === 'number' ? o : undefined;
};
const nodeList = (v: unknown): Node[] =>
  Array.isArray(v) ? v.filter((x): x is Node => typeof x === 'object' && x !== null) : [];
/** A name as the parser gives it: a string, or `{ expr: { value } }` for quoted/default identifiers. */
const str = (v: unknown): string | undefined => {
  if (typeof v === 'string') return v;
  const inner = ((v as Node | null)?.expr as Node | undefined)?.value;
  return typeof inner === 'string' ? inner : undefined;
};

const parser = new NodeSqlParser.Parser();

/** Parses and checks one rule; never throws. */
export const parseLogRule = (id: string, sql: string): LogRuleResult => {
  const fail = (message: string, position?: Pos, detail?: string): LogRuleResult => {
    const at = position ? ` at line ${position.line}, column ${position.column}` : '';
    const error = `log rule '${id}': ${message}${at}${detail === undefined ? '' : `: ${detail}`}`;
    return { ok: false, error, ...(position ? { position } : {}) };
  };
  if (typeof sql !== 'string' || sql.trim() === '') return fail('is empty');
  if (sql.length > LOG_RULE_LIMITS.maxSqlChars) {
    return fail(`is ${sql.length} characters long, more than ${LOG_RULE_LIMITS.maxSqlChars}`);
  }
  const { text, toOriginal } = rewriteWindowSizes(sql);
  let ast: unknown;
  try {
    ast = parser.astify(text, { database: 'PostgresQL', parseOptions: { includeLocations: true } });
  } catch (e) {
    const err = e as { name?: unknown; message?: unknown; location?: { start?: { offset?: unknown } } };
    const offset = err.location?.start?.offset;
    const position = typeof offset === 'number' ? positionAt(sql, toOriginal(offset)) : undefined;
    if (err.name === 'SyntaxError') return fail('syntax error', position, String(err.message));
    if (e instanceof RangeError) return fail('is nested too deeply to parse');
    return fail(`cannot be parsed: ${String(err.message)}`, position);
  }
  try {
    return { ok: true, rule: planOf(id, ast) };
  } catch (e) {
    if (e instanceof Refusal) {
      return fail(e.message, e.offset === undefined ? undefined : positionAt(sql, toOriginal(e.offset)));
    }
    if (e instanceof RangeError) return fail('is nested too deeply');
    return fail(`cannot be checked: ${e instanceof Error ? e.message : String(e)}`);
  }
};

const positionAt = (sql: string, offset: number): Pos => {
  const before = sql.slice(0, Math.max(0, Math.min(offset, sql.length)));
  const lastBreak = before.lastIndexOf('\n');
  return { line: before.split('\n').length, column: before.length - lastBreak };
};

/**
 * Inside TUMBLE(…)/HOP(…)/SLIDE(…), rewrites `1 minute` and `30 seconds` to `INTERVAL 1 minute` /
 * `INTERVAL 30 second`, the form node-sql-parser reads. Quoted text outside is left alone.
 */
export const rewriteWindowSizes = (sql: string): { text: string; toOriginal: (offset: number) => number } => {
  const pieces: { out: number; orig: number; verbatim: boolean }[] = [];
  let out = '';
  let last = 0;
  const size = /(\bINTERVAL\s+)?('?)(\d+(?:\.\d+)?)\2\s+(second|minute|hour|day)s?\b/gi;
  for (const call of windowCalls(sql)) {
    const segment = sql.slice(call.start, call.end);
    for (const m of segment.matchAll(size)) {
      const at = call.start + (m.index ?? 0);
      pieces.push({ out: out.length, orig: last, verbatim: true });
      out += sql.slice(last, at);
      pieces.push({ out: out.length, orig: at, verbatim: false });
      out += `INTERVAL ${m[2]}${m[3]}${m[2]} ${m[4]}`;
      last = at + m[0].length;
    }
  }
  pieces.push({ out: out.length, orig: last, verbatim: true });
  out += sql.slice(last);
  const toOriginal = (offset: number): number => {
    let piece = pieces[0]!;
    for (const p of pieces) if (p.out <= offset) piece = p;
    return piece.verbatim ? piece.orig + (offset - piece.out) : piece.orig;
  };
  return { text: out, toOriginal };
};

/** The argument spans of window calls, skipping quoted text and comments. */
const windowCalls = (sql: string): { start: number; end: number }[] => {
  const calls: { start: number; end: number }[] = [];
  const head = /\b(?:TUMBLE|HOP|SLIDE)\s*\(/iy;
  let open = -1;
  let depth = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const close = sql.indexOf(c, i + 1);
      if (close < 0) break;
      i = close;
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      const eol = sql.indexOf('\n', i);
      if (eol < 0) break;
      i = eol;
      continue;
    }
    if (open < 0) {
      head.lastIndex = i;
      const m = head.exec(sql);
      if (m && (i === 0 || !/[\w$]/.test(sql[i - 1]!))) {
        open = i + m[0].length;
        depth = 1;
        i = open - 1;
      }
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) {
      calls.push({ start: open, end: i });
      open = -1;
    }
  }
  return calls;
};

const planOf = (id: string, ast: unknown): LogRulePlan => {
  if (Array.isArray(ast)) {
    if (ast.length !== 1) at(`must be one SELECT statement, found ${ast.length} statements`);
    ast = ast[0];
  }
  const q = ast as Node;
  if (q.type !== 'select') at(`must be a SELECT statement, found ${String(q.type).toUpperCase()}`);
  if (q.with) at('WITH is not supported');
  if (q._next || q.set_op) at('UNION, INTERSECT and EXCEPT are not supported');
  if ((q.distinct as Node | null)?.type) at('SELECT DISTINCT is not supported (use count(DISTINCT field))');
  if (q.orderby) at('ORDER BY is not supported');
  if (nodeList((q.limit as Node | null)?.value).length > 0) at('LIMIT is not supported');
  if (q.window) at('WINDOW clauses are not supported (use TUMBLE or HOP in GROUP BY)');
  const stream = streamOf(q);

  const ctx = new Checker();
  const groupBy: string[] = [];
  let window: WindowSpec | undefined;
  for (const g of nodeList((q.groupby as Node | null)?.columns)) {
    const name = g.type === 'function' ? functionName(g) : '';
    if (WINDOWS.has(name)) {
      if (window) at('GROUP BY has more than one window; use exactly one TUMBLE or HOP', g);
      window = windowOf(name, g);
    } else if (g.type === 'column_ref') {
      const path = ctx.fieldPath(g);
      if (!groupBy.includes(path)) groupBy.push(path);
    } else {
      ctx.operand(g, 'GROUP BY');
      at(`GROUP BY takes fields and one window, not ${describe(g)}`, g);
    }
  }
  if (!window) at('needs a window in GROUP BY: TUMBLE(1 minute) or HOP(5 minutes, 1 minute)');
  ctx.groupBy = groupBy;

  const outputs: Output[] = [];
  for (const c of nodeList(q.columns)) {
    const e = c.expr as Node;
    if (e?.type === 'column_ref' && str((e as Node).column) === '*') at('SELECT * is not supported');
    if (e?.type === 'aggr_func') {
      const alias = ctx.aggregate(e, typeof c.as === 'string' ? c.as : undefined);
      outputs.push({ name: alias, source: 'aggregate', alias });
    } else if (e?.type === 'column_ref') {
      const field = ctx.fieldPath(e);
      if (!groupBy.includes(field))
        at(`field '${field}' is selected but neither in GROUP BY nor aggregated`, e);
      outputs.push({ name: typeof c.as === 'string' ? c.as : field, source: 'group', field });
    } else {
      ctx.operand(e, 'SELECT');
      at(`SELECT takes group fields and aggregates, not ${describe(e)}`, e);
    }
  }
  const names = new Set<string>();
  for (const o of outputs) {
    if (names.has(o.name)) at(`output name '${o.name}' is used twice; give one an alias`);
    names.add(o.name);
  }

  const filter = q.where ? ctx.expr(q.where as Node, 'where', 0) : null;
  const having = q.having ? ctx.expr(q.having as Node, 'having', 0) : null;
  return { id, stream, filter, groupBy, window: window!, aggregates: ctx.aggregates, having, outputs };
};

const streamOf = (q: Node): string => {
  const from = nodeList(q.from);
  if (from.length === 0) at('needs a stream in FROM');
  if (from.length > 1) at(from[1]!.join ? 'JOIN is not supported' : 'FROM must name exactly one stream');
  const f = from[0]!;
  if (f.expr || typeof f.table !== 'string') at('FROM must name a stream, not a subquery or expression');
  return f.db ? `${String(f.db)}.${String(f.table)}` : String(f.table);
};

const functionName = (n: Node): string =>
  nodeList((n.name as Node | null)?.name)
    .map((p) => String(p.value))
    .join('.')
    .toLowerCase();

const windowOf = (name: string, g: Node): WindowSpec => {
  const args = nodeList((g.args as Node | null)?.value);
  const want = name === 'tumble' ? 1 : 2;
  if (args.length !== want) {
    at(
      `${name.toUpperCase()} takes ${want === 1 ? 'one size' : 'a size and a slide'}, got ${args.length}`,
      g,
    );
  }
  const ms = args.map((a) => {
    const unit = String(a.unit ?? '').toLowerCase();
    const n = Number((a.expr as Node | null)?.value);
    if (a.type !== 'interval' || !(unit in UNIT_MS) || !Number.isFinite(n)) {
      at(`${name.toUpperCase()} sizes are written like 30 seconds or 1 minute`, g);
    }
    const v = n * UNIT_MS[unit]!;
    const { minWindowMs: lo, maxWindowMs: hi } = LOG_RULE_LIMITS;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      at(`${name.toUpperCase()} size must be a whole number of ms from 1 second to 7 days`, g);
    }
    return v;
  });
  const sizeMs = ms[0]!;
  const slideMs = ms[1] ?? sizeMs;
  if (want === 2) {
    if (slideMs > sizeMs || sizeMs % slideMs !== 0)
      at(`${name.toUpperCase()} size must be a multiple of its slide`, g);
    if (sizeMs / slideMs > LOG_RULE_LIMITS.maxWindowsPerRecord) {
      at(`${name.toUpperCase()} size / slide must be at most ${LOG_RULE_LIMITS.maxWindowsPerRecord}`, g);
    }
  }
  return { kind: want === 1 ? 'tumble' : 'hop', sizeMs, slideMs };
};

/** Walks SELECT/WHERE/HAVING expressions, collecting aggregates. */
class Checker {
  readonly aggregates: AggregateSpec[] = [];
  groupBy: readonly string[] = [];
  private readonly at = at;

  fieldPath(n: Node): string {
    const parts = [n.schema, n.table, n.column]
      .map(str)
      .filter((p): p is string => p !== undefined && p !== '');
    return parts.join('.');
  }

  aggregate(n: Node, alias?: string, hidden = false): string {
    const fn = String(n.name).toLowerCase();
    if (!AGGREGATES.has(fn)) this.at(`unknown function '${fn}'`, n);
    const args = n.args as Node | null;
    const e = args?.expr as Node | null | undefined;
    const distinct = String(args?.distinct ?? '').toUpperCase() === 'DISTINCT';
    if (distinct && fn !== 'count') this.at(`DISTINCT is only supported in count(), not in ${fn}()`, n);
    if (n.over) this.at('OVER is not supported', n);
    let field: string | undefined;
    if (e?.type === 'star') {
      if (fn !== 'count' || distinct) this.at(`${fn}(*) is not supported`, n);
    } else if (e?.type === 'column_ref') field = this.fieldPath(e);
    else this.at(`${fn}() takes one field`, n);
    const written = `${fn}(${distinct ? 'DISTINCT ' : ''}${field ?? '*'})`;
    const same = this.aggregates.find((a) => a.fn === fn && a.field === field && !!a.distinct === distinct);
    if (same && !alias) return same.alias;
    const spec: AggregateSpec = {
      fn: fn as AggregateFn,
      ...(field !== undefined ? { field } : {}),
      ...(distinct ? { distinct: true as const } : {}),
      alias: alias ?? (hidden ? `$having${this.aggregates.length}` : written),
      ...(hidden ? { hidden: true as const } : {}),
    };
    if (this.aggregates.some((a) => a.alias === spec.alias))
      this.at(`output name '${spec.alias}' is used twice`, n);
    this.aggregates.push(spec);
    return spec.alias;
  }

  expr(n: Node, where: 'where' | 'having', depth: number): Expr {
    if (depth > LOG_RULE_LIMITS.maxDepth) this.at('expression is nested too deeply', n);
    try {
      return this.condition(n, where, depth);
    } catch (e) {
      // Column refs and literals carry no location: point at the nearest enclosing condition.
      const offset = offsetOf(n);
      if (e instanceof Refusal && e.offset === undefined && offset !== undefined)
        throw new Refusal(e.message, offset);
      throw e;
    }
  }

  private condition(n: Node, where: 'where' | 'having', depth: number): Expr {
    // node-sql-parser reads `NOT (a AND b)` as a call of a function named not.
    const call = n.type === 'function' ? nodeList((n.args as Node | null)?.value) : [];
    if (n.type === 'function' && functionName(n) === 'not' && call.length === 1) {
      return { op: 'not', arg: this.expr(call[0]!, where, depth + 1) };
    }
    const op = String(n.operator ?? '').toUpperCase();
    if (n.type === 'unary_expr' && op === 'NOT')
      return { op: 'not', arg: this.expr(n.expr as Node, where, depth + 1) };
    if (n.type !== 'binary_expr') {
      if (n.type === 'function' || n.type === 'aggr_func') this.operand(n, where);
      return this.at(`expected a condition in ${where.toUpperCase()}, got ${describe(n)}`, n);
    }
    const left = n.left as Node;
    const right = n.right as Node;
    if (op === 'AND' || op === 'OR') {
      for (const side of [left, right]) {
        if (
          op === 'AND' &&
          side.type === 'binary_expr' &&
          String(side.operator).toUpperCase() === 'OR' &&
          !side.parentheses
        ) {
          this.at('mixing AND and OR needs parentheses around the OR', side);
        }
      }
      const args = [left, right].flatMap((s) => {
        const e = this.expr(s, where, depth + 1);
        return (e.op === 'and' || e.op === 'or') && e.op === op.toLowerCase() && !s.parentheses
          ? e.args
          : [e];
      });
      return { op: op === 'AND' ? 'and' : 'or', args };
    }
    if (op in COMPARISONS) {
      return {
        op: 'cmp',
        cmp: COMPARISONS[op]!,
        left: this.operand(left, where),
        right: this.operand(right, where),
      };
    }
    if (op === 'LIKE' || op === 'NOT LIKE') {
      const pattern = this.stringLiteral(right, op);
      compileLike(pattern);
      return { op: 'like', negate: op !== 'LIKE', arg: this.operand(left, where), pattern };
    }
    if (op === '~' || op === '!~' || op === '~*' || op === '!~*') {
      const pattern = this.stringLiteral(right, op);
      try {
        new RegExp(pattern, 'u');
      } catch (e) {
        this.at(`invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`, n);
      }
      return {
        op: 'regex',
        negate: op.startsWith('!'),
        ignoreCase: op.endsWith('*'),
        arg: this.operand(left, where),
        pattern,
      };
    }
    if (op === 'IN' || op === 'NOT IN') {
      if (right.type !== 'expr_list') this.at(`${op} takes a list of literals`, n);
      const values = nodeList(right.value).map((v) => {
        const o = this.operand(v, where);
        return o.kind === 'literal'
          ? o.value
          : this.at(`${op} takes a list of literals, not ${describe(v)}`, n);
      });
      return { op: 'in', negate: op === 'NOT IN', arg: this.operand(left, where), values };
    }
    if ((op === 'IS' || op === 'IS NOT') && right.type === 'null') {
      return { op: 'null', negate: op === 'IS NOT', arg: this.operand(left, where) };
    }
    return this.at(`operator ${op} is not supported`, n);
  }

  private stringLiteral(n: Node, op: string): string {
    const o = this.operand(n, 'where');
    if (o.kind !== 'literal' || typeof o.value !== 'string') this.at(`${op} takes a string pattern`, n);
    return (o as { value: string }).value;
  }

  operand(n: Node, where: string): Operand {
    switch (n?.type) {
      case 'column_ref': {
        const path = this.fieldPath(n);
        if (where !== 'having') return { kind: 'field', path };
        if (this.aggregates.some((a) => a.alias === path)) return { kind: 'aggregate', alias: path };
        if (this.groupBy.includes(path)) return { kind: 'field', path };
        return this.at(
          `HAVING refers to '${path}', which is neither an aggregate alias nor a GROUP BY field`,
          n,
        );
      }
      case 'number': {
        const v = Number(n.value);
        return Number.isFinite(v)
          ? { kind: 'literal', value: v }
          : this.at(`number ${String(n.value)} is out of range`, n);
      }
      case 'single_quote_string':
      case 'string':
        return { kind: 'literal', value: String(n.value).replaceAll("''", "'") };
      case 'bool':
        return { kind: 'literal', value: n.value === true };
      case 'null':
        return { kind: 'literal', value: null };
      case 'aggr_func':
        if (where !== 'having')
          return this.at(
            `aggregate ${String(n.name).toLowerCase()}() is only allowed in SELECT and HAVING`,
            n,
          );
        return { kind: 'aggregate', alias: this.aggregate(n, undefined, true) };
      case 'function': {
        const name = functionName(n);
        if (WINDOWS.has(name)) return this.at(`${name.toUpperCase()} is only allowed in GROUP BY`, n);
        return this.at(`unknown function '${name}'`, n);
      }
      default:
        return this.at(`${describe(n)} is not supported in ${where.toUpperCase()}`, n);
    }
  }
}

const describe = (n: Node): string => {
  if (n?.ast || n?.type === 'select') return 'a subquery';
  if (n?.type === 'binary_expr' || n?.type === 'unary_expr') return `operator ${String(n.operator)}`;
  return `a ${String(n?.type ?? 'value').replaceAll('_', ' ')}`;
};
