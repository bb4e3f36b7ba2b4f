/**
 * What the notify documents (route tree, receivers, silences) share at the edge: reading YAML or
 * JSON text, collecting every problem by field path (`routes[1].group_wait: must be a duration …`) so
 * a person fixing a document sees all of it at once, Prometheus durations, and one coded error that
 * carries the list (`detail.problems`). Nothing here knows what a route or a receiver is.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Problems, show } from '../../runtime/problems.ts';

export { formatPath, type Path, Problems, show } from '../../runtime/problems.ts';

/**
 * The document as a value: text is read as YAML (which JSON is a subset of); objects are taken as
 * they are. Undefined (with the problem recorded) when the text does not parse.
 */
export const readDocument = (input: unknown, problems: Problems): unknown => {
  if (typeof input !== 'string') return input;
  try {
    return parseYaml(input);
  } catch (e) {
    // The parser's first line names the place (`… at line 1, column 20:`); the excerpt after it is not kept.
    const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/:$/, '');
    problems.add([], `is not valid YAML or JSON: ${first}`);
    return undefined;
  }
};

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const UNIT_MS = {
  y: 365 * 86_400_000,
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};
/** Prometheus' duration syntax: units in decreasing order, each at most once (`1h30m`, `500ms`). */
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/**
 * A duration as Prometheus and Alertmanager write it (`30s`, `5m`, `4h`, `1h30m`, `1d`, `500ms`), or
 * `0`, in ms. Undefined when it is not one. A bare number other than 0 is refused: `group_wait: 30`
 * could mean seconds or milliseconds, and guessing wrong delays a page by 1000×.
 */
export const parseDuration = (v: unknown): number | undefined => {
  if (v === 0 || v === '0') return 0;
  if (typeof v !== 'string' || v === '') return undefined;
  const m = DURATION.exec(v);
  if (!m) return undefined;
  const units = [UNIT_MS.y, UNIT_MS.w, UNIT_MS.d, UNIT_MS.h, UNIT_MS.m, UNIT_MS.s, UNIT_MS.ms];
  let ms = 0;
  for (let i = 0; i < units.length; i++) if (m[i + 1] !== undefined) ms += Number(m[i + 1]) * units[i]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
};

export const DURATION_HINT = 'must be a duration like 30s, 5m or 1h30m';

/** A zod schema for a duration field (ms out); `positive`: 0 is refused too. */
export const durationSchema = (positive: boolean) =>
  z
    .union([z.string(), z.number()], { error: (iss) => `${DURATION_HINT}, got ${show(iss.input)}` })
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined || (positive && ms === 0)) {
        const message = ms === 0 ? 'must be longer than 0' : `${DURATION_HINT}, got ${show(v)}`;
        ctx.addIssue({ code: 'custom', message, input: v });
        return z.NEVER;
      }
      return ms;
    });

/** `5m` for 300000: the shortest Prometheus duration for a ms count (for docs, summaries, errors). */
export const formatDuration = (ms: number): string => {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['d', UNIT_MS.d],
    ['h', UNIT_MS.h],
    ['m', UNIT_MS.m],
    ['s', UNIT_MS.s],
    ['ms', UNIT_MS.ms],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
};

/** Keys of receivers and silences (etcd key segments, entity keys). */
export const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const ID_HINT = 'must be 1-128 letters, digits, ., _ or -, starting with a letter or digit';
