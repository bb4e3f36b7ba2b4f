/**
 * Metric-set documents: what the hosts of one service collect, stored as the etcd value under
 * `/<prefix>/metricsets/<service>` (JSON or YAML). Validated on write and on load with one error that
 * lists every problem by field path (`tables[1].columns[0].type: must be 'gauge' or 'counter', got
 * 'count'`), so a person fixing a document sees all of it at once; nothing half-valid is applied.
 *
 * Document format:
 *   { extends?: 'default',
 *     scalars: [{ name, oid, type, unit?, scale? }],
 *     tables:  [{ name, oid, tag: { column, name }, columns: [{ column, name, type, unit?, scale? }] }],
 *     derived: [{ kind: 'ratio', name, numerator, denominator, factor?, unit? }
 *             | { kind: 'cpu', name, ticks: { <state>: <counter metric> }, idle?: [<state>] }] }
 * Every list may be left out. `factor` defaults to 1, `idle` to []. `extends: 'default'` takes the
 * default set and adds these entries; an own scalar, table or derived metric replaces the default one of
 * the same name (tables by table name). A ratio may divide gauges or counter rates (`if.in_errors.rate`)
 * of the same series: two scalars, or columns of tables tagged by the same tag.
 *
 * Checks beyond shape: numeric dotted OIDs (a leading dot is tolerated and stripped), names that fit
 * in a metric path, unique metric names (including what counters and derivations emit), unique column
 * numbers per table, derivations that refer to metrics of the set.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ArgusError } from '../../runtime/errors.ts';
import { formatPath, type Path, Problems, show } from '../../runtime/problems.ts';
import { DEFAULT_METRIC_SET } from './default-metricset.ts';
import type { DerivedMetric, MetricSet, MetricType, ScalarMetric, TableMetric } from './types.ts';

const NAME = /^[a-zA-Z_][a-zA-Z0-9_.]*$/;
const STATE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const OID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, {
    error: (iss) =>
      iss.input === undefined
        ? 'is required'
        : `must be ${values.map((v) => `'${v}'`).join(' or ')}, got ${show(iss.input)}`,
  });

const name = z
  .string()
  .regex(NAME, 'must be a name like mem.total (letters, digits, _ and ., not starting with a digit)');
const oid = z
  .string()
  .refine((s) => {
    const bare = s.startsWith('.') ? s.slice(1) : s;
    return OID.test(bare) && bare.split('.').every((arc) => Number(arc) <= 4294967295);
  }, 'must be a numeric OID like 1.3.6.1.2.1.1.3.0')
  .transform((s) => (s.startsWith('.') ? s.slice(1) : s));
const column = z.number().int('must be a positive integer').min(1, 'must be a positive integer');
const scale = z.number().positive('must be a number above 0').finite('must be a finite number');
const unit = z.string().min(1, 'must not be empty');
const metricType = oneOf(['gauge', 'counter']);

const scalarSchema = z.strictObject({
  name,
  oid,
  type: metricType,
  unit: unit.optional(),
  scale: scale.optional(),
});
const tableSchema = z.strictObject({
  name,
  oid,
  tag: z.strictObject({ column, name }),
  columns: z
    .array(z.strictObject({ column, name, type: metricType, unit: unit.optional(), scale: scale.optional() }))
    .min(1, 'must list at least one column'),
});
const ratioSchema = z.strictObject({
  kind: z.literal('ratio'),
  name,
  numerator: name,
  denominator: name,
  factor: z.number().finite('must be a finite number').default(1),
  unit: unit.optional(),
});
const cpuSchema = z.strictObject({
  kind: z.literal('cpu'),
  name,
  ticks: z
    .record(z.string(), name)
    .refine((t) => Object.keys(t).length > 0, 'must name at least one state')
    .superRefine((t, ctx) => {
      for (const k of Object.keys(t))
        if (!STATE.test(k))
          ctx.addIssue({ code: 'custom', path: [k], message: 'must be a state name (letters, digits, _)' });
    }),
  idle: z.array(z.string()).default([]),
});
const derivedSchema = z.discriminatedUnion('kind', [ratioSchema, cpuSchema], {
  error: (iss) => {
    if (iss.code !== 'invalid_union') return undefined;
    const kind =
      typeof iss.input === 'object' && iss.input !== null
        ? (iss.input as { kind?: unknown }).kind
        : undefined;
    return kind === undefined ? 'is required' : `must be 'ratio' or 'cpu', got ${show(kind)}`;
  },
});
const docSchema = z.strictObject({
  extends: z.literal('default', { error: (iss) => `must be 'default', got ${show(iss.input)}` }).optional(),
  scalars: z.array(z.unknown()).default([]),
  tables: z.array(z.unknown()).default([]),
  derived: z.array(z.unknown()).default([]),
});

/** An entry of the resolved set with where it came from, for errors. */
interface Placed<T> {
  readonly entry: T;
  readonly at: Path;
}

interface Doc {
  readonly extends?: 'default';
  readonly scalars: readonly Placed<ScalarMetric>[];
  readonly tables: readonly Placed<TableMetric>[];
  readonly derived: readonly Placed<DerivedMetric>[];
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** Shape of a document; entries that fail are left out so the cross checks still see the rest. */
const parseShape = (input: unknown, problems: Problems): Doc | undefined => {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = parseYaml(input);
    } catch (e) {
      problems.add([], `is not valid YAML or JSON: ${firstLine(e)}`);
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.add([], `must be an object with scalars, tables and derived, got ${show(value)}`);
    return undefined;
  }
  const doc = problems.parse(docSchema, value, []);
  if (!doc) return undefined;
  const each = <T>(list: readonly unknown[], schema: z.ZodType<T>, field: string): Placed<T>[] =>
    list.flatMap((e, i) => {
      const entry = problems.parse(schema, e, [field, i]);
      return entry === undefined ? [] : [{ entry, at: [field, i] }];
    });
  return {
    ...(doc.extends ? { extends: doc.extends } : {}),
    scalars: each(doc.scalars, scalarSchema, 'scalars'),
    tables: each(doc.tables, tableSchema, 'tables'),
    derived: each(doc.derived, derivedSchema as z.ZodType<DerivedMetric>, 'derived'),
  };
};

/**
 * Own entries over the defaults: the default entries whose name no own entry takes, then the own ones.
 * Cross checks see the defaults first, so a clash is reported on the document's entry.
 */
const place = <T>(
  own: readonly Placed<T>[],
  field: string,
  defaults: readonly T[],
  key: (t: T) => string,
) => {
  const mine = new Set(own.map((p) => key(p.entry)));
  const kept = defaults.flatMap((entry, i) =>
    mine.has(key(entry)) ? [] : [{ entry, at: ['default', field, i] }],
  );
  const placed: Placed<T>[] = [...kept, ...own];
  return { resolved: placed.map((p) => p.entry), placed };
};

interface Metric {
  readonly type: MetricType;
  /** '' for scalars, the tag name for table columns: ratios need both sides in the same series. */
  readonly series: string;
  readonly at: Path;
}

const isOwn = (p: Placed<unknown>) => p.at[0] !== 'default';

/** Cross checks over the resolved set: names, column numbers, references. */
const crossCheck = (
  scalars: readonly Placed<ScalarMetric>[],
  tables: readonly Placed<TableMetric>[],
  derived: readonly Placed<DerivedMetric>[],
  problems: Problems,
  brokenNames: ReadonlySet<string>,
) => {
  const metrics = new Map<string, Metric>();
  const produced = new Map<string, Path>();
  const produce = (metric: string, at: Path, emits: boolean) => {
    const first = produced.get(metric);
    if (!first) produced.set(metric, at);
    else if (emits) problems.add(at, `emits '${metric}', already used by ${formatPath(first)}`);
    else problems.add(at, `'${metric}' is already used by ${formatPath(first)}`);
  };
  const declare = (n: string, type: MetricType, series: string, at: Path) => {
    produce(n, [...at, 'name'], false);
    if (!metrics.has(n)) metrics.set(n, { type, series, at });
    if (type === 'counter') produce(`${n}.rate`, [...at, 'name'], true);
  };

  const tableNames = new Map<string, Path>();
  const declareTable = ({ entry, at }: Placed<TableMetric>) => {
    const first = tableNames.get(entry.name);
    if (first)
      problems.add([...at, 'name'], `table '${entry.name}' is already defined at ${formatPath(first)}`);
    else tableNames.set(entry.name, at);
    const columns = new Map<number, number>();
    entry.columns.forEach((c, i) => {
      const seen = columns.get(c.column);
      if (seen !== undefined)
        problems.add([...at, 'columns', i, 'column'], `${c.column} is already used by columns[${seen}]`);
      else columns.set(c.column, i);
      declare(c.name, c.type, entry.tag.name, [...at, 'columns', i]);
    });
  };
  // The defaults first (of both kinds), so a clash with a default is reported on the document's entry.
  for (const own of [false, true]) {
    for (const p of scalars) if (isOwn(p) === own) declare(p.entry.name, p.entry.type, '', p.at);
    for (const p of tables) if (isOwn(p) === own) declareTable(p);
  }

  const resolve = (ref: string): Metric | undefined => {
    const direct = metrics.get(ref);
    if (direct) return direct;
    if (!ref.endsWith('.rate')) return undefined;
    const base = metrics.get(ref.slice(0, -'.rate'.length));
    return base?.type === 'counter' ? base : undefined;
  };
  const unknown = (ref: string) =>
    brokenNames.has(ref) || brokenNames.has(ref.replace(/\.rate$/, ''))
      ? undefined
      : `'${ref}' is not a metric of this set (nor a counter's .rate)`;
  const tickUsers = new Map<string, Path>();

  for (const { entry: d, at } of derived) {
    switch (d.kind) {
      case 'ratio': {
        produce(d.name, [...at, 'name'], false);
        const num = resolve(d.numerator);
        const den = resolve(d.denominator);
        for (const [field, ref, m] of [
          ['numerator', d.numerator, num],
          ['denominator', d.denominator, den],
        ] as const) {
          const why = m ? undefined : unknown(ref);
          if (why) problems.add([...at, field], why);
        }
        if (num && den && num.series !== den.series)
          problems.add(
            at,
            `numerator and denominator never share a series (${num.series ? `tagged by ${num.series}` : 'scalar'} vs ${den.series ? `tagged by ${den.series}` : 'scalar'})`,
          );
        break;
      }
      case 'cpu': {
        for (const [state, metric] of Object.entries(d.ticks)) {
          produce(`${d.name}.${state}_pct`, [...at, 'name'], true);
          const m = metrics.get(metric);
          if (!m) {
            const why = unknown(metric);
            if (why) problems.add([...at, 'ticks', state], why.replace(" (nor a counter's .rate)", ''));
          } else if (m.type !== 'counter')
            problems.add([...at, 'ticks', state], `'${metric}' must be a counter (ticks)`);
          const user = tickUsers.get(metric);
          if (user)
            problems.add([...at, 'ticks', state], `'${metric}' is already used by ${formatPath(user)}`);
          else tickUsers.set(metric, at);
        }
        produce(`${d.name}.busy_pct`, [...at, 'name'], true);
        d.idle.forEach((s, i) => {
          if (!(s in d.ticks)) problems.add([...at, 'idle', i], `'${s}' is not one of the states in ticks`);
        });
        break;
      }
      default: {
        const never: never = d;
        problems.add(at, `unknown derived metric ${show(never)}`);
      }
    }
  }
};

/** Names given by entries that failed their shape check: references to them are not reported again. */
const namesOfBrokenEntries = (input: unknown): Set<string> => {
  const names = new Set<string>();
  let value = input;
  try {
    if (typeof input === 'string') value = parseYaml(input);
  } catch {
    return names;
  }
  if (typeof value !== 'object' || value === null) return names;
  const v = value as Record<string, unknown>;
  const visit = (e: unknown) => {
    if (typeof e !== 'object' || e === null) return;
    const n = (e as { name?: unknown }).name;
    if (typeof n === 'string') names.add(n);
    const cols = (e as { columns?: unknown }).columns;
    if (Array.isArray(cols)) cols.forEach(visit);
  };
  for (const field of ['scalars', 'tables'])
    if (Array.isArray(v[field])) (v[field] as unknown[]).forEach(visit);
  return names;
};

/**
 * Validates a metric-set document (an object, or its JSON/YAML text) and resolves `extends: 'default'`
 * against `defaults`. Throws ARGUS_ERR_INVALID_CONFIG listing every problem (`detail.problems`).
 */
export const resolveMetricSet = (doc: unknown, defaults: MetricSet): MetricSet => {
  const problems = new Problems();
  const shape = parseShape(doc, problems);
  if (shape) {
    const base: MetricSet = shape.extends === 'default' ? defaults : { scalars: [], tables: [], derived: [] };
    const scalars = place(shape.scalars, 'scalars', base.scalars, (s) => s.name);
    const tables = place(shape.tables, 'tables', base.tables, (t) => t.name);
    const derived = place(shape.derived, 'derived', base.derived, (d) => d.name);
    const broken = problems.list.length > 0 ? namesOfBrokenEntries(doc) : new Set<string>();
    crossCheck(scalars.placed, tables.placed, derived.placed, problems, broken);
    if (problems.list.length === 0)
      return { scalars: scalars.resolved, tables: tables.resolved, derived: derived.resolved };
  }
  throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `invalid metric set: ${problems.list.join('; ')}`, {
    problems: problems.list,
  });
};

/** `resolveMetricSet` against the built-in default set. */
export const parseMetricSet = (doc: unknown): MetricSet => resolveMetricSet(doc, DEFAULT_METRIC_SET);
