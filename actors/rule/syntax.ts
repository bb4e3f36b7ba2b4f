/**
 * The small syntaxes inside rule documents, each a pure parser returning data: durations (`1h30m`),
 * conditions (`>= 1e3`), and the YAML/JSON text itself (the first problem with its line and column,
 * and a hint where YAML syntax catches people: an unquoted `> 90` is a block scalar, `!= 1` a tag).
 */
import { parseDocument } from 'yaml';
import type { Operator } from './types.ts';

/** A value as people write it: strings quoted, the rest as JSON. */
export const show = (v: unknown): string => {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || v === undefined) return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
};

// ── durations ─────────────────────────────────────────────────────────────────────────────────────

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** `1h30m` → 5,400,000; undefined when not a duration. */
export const parseDuration = (text: string): number | undefined => {
  const t = text.trim();
  if (!DURATION.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
};

// ── conditions ────────────────────────────────────────────────────────────────────────────────────

const OPERATORS: readonly Operator[] = ['>', '>=', '<', '<=', '==', '!='];
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export type ConditionResult =
  | { readonly ok: true; readonly op: Operator; readonly threshold: number }
  | { readonly ok: false; readonly message: string };

/** `> 90`, `>= 1e3`, `== 0`, `!= 1`: an operator and a finite number. */
export const parseCondition = (text: string): ConditionResult => {
  const m = /^\s*([^\s\d+\-.]*)\s*(.*?)\s*$/.exec(text)!;
  const [, op = '', number = ''] = m;
  if (op === '')
    return { ok: false, message: `must start with an operator (>, >=, <, <=, == or !=), got ${show(text)}` };
  if (!(OPERATORS as readonly string[]).includes(op))
    return { ok: false, message: `unknown operator '${op}' (use >, >=, <, <=, == or !=)` };
  if (number === '') return { ok: false, message: `needs a threshold after '${op}', like '${op} 90'` };
  const threshold = Number(number);
  if (!NUMBER.test(number) || !Number.isFinite(threshold))
    return { ok: false, message: `threshold must be a finite number, got ${show(number)}` };
  return { ok: true, op: op as Operator, threshold };
};

// ── YAML / JSON text ──────────────────────────────────────────────────────────────────────────────

/** A condition starting with `>` or `!` unquoted is YAML syntax (block scalar, tag): say so. */
const hintFor = (text: string, line: number | undefined): string => {
  const l = line === undefined ? '' : (text.split('\n')[line - 1] ?? '');
  const m = /^\s*(?:-\s*)?condition\s*:\s*([>!|&*].*?)\s*$/.exec(l);
  return m ? ` (quote the condition in YAML: condition: '${m[1]}')` : '';
};

export type YamlResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly message: string };

/** YAML (so JSON) text to plain data, or the first problem with its line and column. Never logs. */
export const readYaml = (text: string): YamlResult => {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, logLevel: 'silent' });
  // Warnings too: an unresolved tag (`condition: != 1`) would otherwise quietly become another value.
  const first = doc.errors[0] ?? doc.warnings[0];
  if (first) {
    const message = (first.message.split('\n')[0] ?? '').replace(/:\s*$/, '');
    return {
      ok: false,
      message: `is not valid YAML or JSON: ${message}${hintFor(text, first.linePos?.[0]?.line)}`,
    };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    return { ok: false, message: `is not valid YAML or JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
};
