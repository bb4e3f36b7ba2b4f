/**
 * Silences (etcd `/<prefix>/silences/<id>`, YAML or JSON), as in Alertmanager: alerts whose labels
 * match every matcher are not notified while the silence is active (`starts_at <= t < ends_at`).
 *
 *   matchers: ['service="payments"', 'env!="dev"']   # or one string: '{service="payments", env!="dev"}'
 *   starts_at: 2026-05-01T10:00:00Z                  # RFC 3339 with a zone, or epoch ms
 *   ends_at: 2026-05-01T12:00:00Z
 *   created_by: alice
 *   comment: payments maintenance window
 *
 * Like Alertmanager, a silence needs at least one matcher that does not match the empty string, so a
 * typo cannot silence every alert. Silences are evaluated when a receiver flushes a group (groups.ts):
 * a silenced alert is left out of the notification; a group whose every alert is silenced sends nothing.
 */
import { z } from 'zod';
import type { Labels } from '../rule/types.ts';
import { ID, ID_HINT, isPlainObject, Problems, readDocument, show } from './document.ts';
import { formatMatcher, matches, matchesAll, parseMatcher, parseMatchers } from './matchers.ts';
import type { LabelMatcher, Silence } from './types.ts';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i;
const TIME_HINT = 'must be an RFC 3339 time with a zone (2026-05-01T10:00:00Z) or epoch milliseconds';

/** A time as a silence document writes it: RFC 3339 text or epoch ms. Undefined if it is not one. */
export const parseTime = (v: unknown): number | undefined => {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string' || !RFC3339.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
};

const time = z.unknown().transform((v, ctx) => {
  const ms = parseTime(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: v === undefined ? 'is required' : `${TIME_HINT}, got ${show(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const text = z.string().refine((s) => s.trim() !== '', 'must not be empty');

const silenceSchema = z.strictObject({
  matchers: z.union([z.string(), z.array(z.unknown())], {
    error: (iss) =>
      iss.input === undefined ? 'is required' : `must be a list of matcher strings, got ${show(iss.input)}`,
  }),
  starts_at: time,
  ends_at: time,
  created_by: text,
  comment: text,
});

const matchersOf = (value: string | readonly unknown[], problems: Problems): LabelMatcher[] => {
  if (typeof value === 'string') {
    const r = parseMatchers(value);
    if (!r.ok) problems.add(['matchers'], r.error);
    return r.ok ? [...r.matchers] : [];
  }
  const out: LabelMatcher[] = [];
  value.forEach((m, i) => {
    const r = typeof m === 'string' ? parseMatcher(m) : undefined;
    if (r?.ok) out.push(r.matcher);
    else
      problems.add(
        ['matchers', i],
        r ? r.error : `must be a matcher string like team="infra", got ${show(m)}`,
      );
  });
  return out;
};

/**
 * Validates a silence document (text or object). Throws ARGUS_ERR_INVALID_CONFIG listing every
 * problem by field.
 */
export const parseSilence = (id: string, doc: unknown): Silence => {
  const problems = new Problems();
  if (!ID.test(id)) problems.add(['id'], `${ID_HINT}, got ${show(id)}`);
  const value = readDocument(doc, problems);
  if (problems.list.length === 0 && !isPlainObject(value))
    problems.add(
      [],
      `must be an object with matchers, starts_at, ends_at, created_by and comment, got ${show(value)}`,
    );
  const s = problems.list.length === 0 ? problems.parse(silenceSchema, value, []) : undefined;
  let matchers: LabelMatcher[] = [];
  if (s) {
    const before = problems.list.length;
    matchers = matchersOf(s.matchers, problems);
    if (problems.list.length === before) {
      if (matchers.length === 0) problems.add(['matchers'], 'must list at least one matcher');
      else if (matchers.every((m) => matches(m, {})))
        problems.add(
          ['matchers'],
          'must have at least one matcher that does not match the empty string (else it silences every alert)',
        );
    }
    if (s.ends_at <= s.starts_at) problems.add(['ends_at'], 'must be after starts_at');
  }
  problems.throwIfAny(`invalid silence ${show(id)}`, { silence: id });
  const ok = s!;
  return {
    id,
    matchers,
    startsAt: ok.starts_at,
    endsAt: ok.ends_at,
    createdBy: ok.created_by,
    comment: ok.comment,
  };
};

/** The document text a silence is stored as (JSON, times in RFC 3339). */
export const silenceDocument = (s: Omit<Silence, 'id'>): string =>
  JSON.stringify({
    matchers: s.matchers.map(formatMatcher),
    starts_at: new Date(s.startsAt).toISOString(),
    ends_at: new Date(s.endsAt).toISOString(),
    created_by: s.createdBy,
    comment: s.comment,
  });

export type SilenceState = 'pending' | 'active' | 'expired';

export const silenceState = (s: Silence, at: number): SilenceState =>
  at < s.startsAt ? 'pending' : at < s.endsAt ? 'active' : 'expired';

/** True when an active silence matches every one of its matchers against `labels` at `at`. */
export const isSilenced = (silences: readonly Silence[], labels: Labels, at: number): boolean => {
  for (const s of silences)
    if (at >= s.startsAt && at < s.endsAt && matchesAll(s.matchers, labels)) return true;
  return false;
};
