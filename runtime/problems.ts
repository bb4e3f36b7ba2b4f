/**
 * Validation at the edge, shared by every document parser (metric sets, route trees, receivers,
 * silences): every problem of a document collected by field path (`routes[1].group_wait: must be a
 * duration …`) so a person fixing it sees all of it at once, zod issues worded for people, and one
 * coded error carrying the list (`detail.problems`).
 */
import type { z } from 'zod';
import { ArgusError } from './errors.ts';

export type Path = readonly (string | number)[];

/** A value as people write it: strings quoted, the rest as JSON. */
export const show = (v: unknown): string => {
  if (typeof v === 'string') return `'${v}'`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
};

/** `routes[1].group_wait`; the document itself is `(root)`. */
export const formatPath = (path: Path): string =>
  path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '') ||
  '(root)';

/** Messages for zod issues no schema words itself. */
const issueMessage = (iss: { code: string; input?: unknown; expected?: unknown; keys?: unknown }) => {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined
        ? 'is required'
        : `must be ${String(iss.expected)}, got ${show(iss.input)}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${(Array.isArray(iss.keys) ? iss.keys : []).map(show).join(', ')}`;
    default:
      return undefined;
  }
};

/** The problems of one document, in the order found. */
export class Problems {
  readonly list: string[] = [];

  add(path: Path, message: string): void {
    this.list.push(`${formatPath(path)}: ${message}`);
  }

  /** Parses one part with a zod schema; its issues are recorded under `at`. */
  parse<T>(schema: z.ZodType<T>, value: unknown, at: Path): T | undefined {
    const r = schema.safeParse(value, { error: issueMessage });
    if (r.success) return r.data;
    for (const i of r.error.issues) this.add([...at, ...(i.path as Path)], i.message);
    return undefined;
  }

  /** Throws ARGUS_ERR_INVALID_CONFIG (`<what>: p1; p2`) when anything was recorded. */
  throwIfAny(what: string, detail: Record<string, unknown> = {}): void {
    if (this.list.length === 0) return;
    throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `${what}: ${this.list.join('; ')}`, {
      ...detail,
      problems: [...this.list],
    });
  }
}
