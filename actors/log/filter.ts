/**
 * Filter expressions for the live tail and the search API: the WHERE part of a log rule on its own
 * (`status >= 500 AND path LIKE '/api/%'`), parsed by the same SQL parser and evaluated by the same
 * code as rules' WHERE, so a filter that works in one works in the other. Errors give the line and
 * column in the expression as the user wrote it.
 */
import { type Expr, evaluateExpr } from './expr.ts';
import { parseLogRule } from './sql.ts';

export type FilterResult =
  | { readonly ok: true; readonly expr: Expr | null }
  | { readonly ok: false; readonly error: string };

const PREFIX = 'SELECT count(*) FROM "_" WHERE (';
const SUFFIX = ') GROUP BY TUMBLE(1 minute)';

/** Parses a filter expression; empty or blank text is no filter (`expr: null`). Never throws. */
export const parseLogFilter = (text: string): FilterResult => {
  if (typeof text !== 'string') return { ok: false, error: 'filter: must be text' };
  if (text.trim() === '') return { ok: true, expr: null };
  if (text.length > 4_096)
    return { ok: false, error: `filter: is ${text.length} characters long, more than 4096` };
  const parsed = parseLogRule('filter', `${PREFIX}${text}${SUFFIX}`);
  if (parsed.ok) return { ok: true, expr: parsed.rule.filter };
  // Positions are in the wrapped statement: line 1 is shifted by the prefix; the suffix is ours.
  let message = parsed.error.replace(/^log rule 'filter': /, '');
  const p = parsed.position;
  if (p) {
    const column = p.line === 1 ? Math.max(1, p.column - PREFIX.length) : p.column;
    message = message.replace(/ at line \d+, column \d+/, ` at line ${p.line}, column ${column}`);
  }
  return { ok: false, error: `filter: ${message}` };
};

/** True when the record passes (unknown, as with a missing field, counts as false). */
export const matchesFilter = (expr: Expr | null, fields: unknown): boolean =>
  expr === null || evaluateExpr(expr, fields) === true;
