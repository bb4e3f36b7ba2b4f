/**
 * The route tree (etcd `/<prefix>/routes/tree`, YAML or JSON), shaped like Alertmanager's `route`:
 *
 *   receiver: infra                 # or receivers: [infra, payments-owners] (fan-out, ours)
 *   group_by: [alertname, service]  # '...' alone groups by every label (each alert by itself)
 *   group_wait: 30s                 # defaults at the root: 30s, 5m, 4h, no grouping labels
 *   group_interval: 5m
 *   repeat_interval: 4h
 *   routes:
 *     - severity: 1-3               # a number, a range 1-3, or a bound '>=4' (quote it in YAML)
 *       receiver: infra
 *     - severity: 4-5
 *       matchers: ['service=~".+"'] # Alertmanager matcher strings, all must match
 *       continue: false             # true: keep trying the next siblings after this one matched
 *       routes: [...]
 *
 * Semantics are Alertmanager's: the root matches every alert (so it takes no matchers, severity or
 * continue, and must name its receiver(s)); an alert descends depth-first into the first child that
 * matches, or into every matching child up to and including the first without `continue`; a route none
 * of whose children match is itself the match. Children inherit receivers, group_by and the three
 * timings from their parent unless they set them; matchers and severity are not inherited, but a child
 * is only tried when its parent matched.
 *
 * Each matched route gives one `RouteMatch` per receiver, with the group key
 * `<route id><group labels>` — `root.1{service="pay"}` — stable for the same labels (sorted, quoted),
 * so the same alerts always land in the same group of the same receiver entity.
 */
import { z } from 'zod';
import type { Labels } from '../rule/types.ts';
import {
  durationSchema,
  ID,
  ID_HINT,
  isPlainObject,
  type Path,
  Problems,
  readDocument,
  show,
} from './document.ts';
import { isLabelName, matchesAll, parseMatcher } from './matchers.ts';
import type { GroupTiming, LabelMatcher, Route, RouteMatch } from './types.ts';

/** Alertmanager's defaults for the root route. */
export const ROUTE_DEFAULTS: GroupTiming & { readonly receivers: readonly string[] } = {
  receivers: [],
  groupBy: [],
  groupWaitMs: 30_000,
  groupIntervalMs: 300_000,
  repeatIntervalMs: 14_400_000,
};

/** `group_by: ['...']`: every label of the alert. */
export const GROUP_BY_ALL = '...';

const SEVERITY_HINT = "must be a severity 1-5, a range like 1-3 or a bound like '>=4'";

/** A severity restriction as written: `4`, `'4'`, `1-3`, `'>=4'`, `'<3'`. Undefined if it is not one. */
export const parseSeverity = (v: unknown): { min: number; max: number } | undefined => {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 5 ? { min: v, max: v } : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  const range = /^([1-5])\s*-\s*([1-5])$/.exec(s);
  if (range) {
    const min = Number(range[1]);
    const max = Number(range[2]);
    return min <= max ? { min, max } : undefined;
  }
  const bound = /^(>=|<=|>|<|==|=)?\s*([1-5])$/.exec(s);
  if (!bound) return undefined;
  const n = Number(bound[2]);
  const r = (() => {
    switch (bound[1]) {
      case '>=':
        return { min: n, max: 5 };
      case '<=':
        return { min: 1, max: n };
      case '>':
        return { min: n + 1, max: 5 };
      case '<':
        return { min: 1, max: n - 1 };
      default:
        return { min: n, max: n };
    }
  })();
  return r.min <= r.max ? r : undefined;
};

const receiverId = z.string().regex(ID, ID_HINT);
const duration = durationSchema(false);
const positiveDuration = durationSchema(true);

const nodeSchema = z.strictObject({
  receiver: receiverId.optional(),
  receivers: z
    .array(receiverId)
    .refine((r) => new Set(r).size === r.length, 'must not name a receiver twice')
    .optional(),
  group_by: z
    .array(
      z.string().refine((n) => n === GROUP_BY_ALL || isLabelName(n), {
        error: (iss) => `must be a label name or '...', got ${show(iss.input)}`,
      }),
    )
    .refine((g) => !g.includes(GROUP_BY_ALL) || g.length === 1, "'...' must be alone (it means every label)")
    .refine((g) => new Set(g).size === g.length, 'must not name a label twice')
    .optional(),
  group_wait: duration.optional(),
  group_interval: positiveDuration.optional(),
  repeat_interval: positiveDuration.optional(),
  matchers: z.array(z.unknown()).optional(),
  severity: z.unknown().optional(),
  continue: z.boolean().optional(),
  routes: z.array(z.unknown()).optional(),
});

type Inherited = GroupTiming & { readonly receivers: readonly string[] };

const resolveNode = (
  value: unknown,
  parent: Inherited,
  id: string,
  at: Path,
  problems: Problems,
): Route | undefined => {
  const isRoot = at.length === 0;
  if (!isPlainObject(value)) {
    problems.add(at, `must be a route (an object with receiver, matchers, routes, …), got ${show(value)}`);
    return undefined;
  }
  // The shape is checked as a whole; matchers, severity and children are checked from the raw value
  // even when the shape failed, so one pass reports every problem of the document.
  const node = problems.parse(nodeSchema, value, at);
  if (node && node.receiver !== undefined && node.receivers !== undefined)
    problems.add([...at, 'receivers'], 'use receiver or receivers, not both');
  if (isRoot) {
    if (value.receiver === undefined && value.receivers === undefined)
      problems.add(['receiver'], 'is required at the root (where alerts no child route matches go)');
    for (const field of ['matchers', 'severity', 'continue'] as const)
      if (value[field] !== undefined)
        problems.add([field], 'is not allowed at the root, which matches every alert');
  }
  const matchers: LabelMatcher[] = [];
  (Array.isArray(value.matchers) ? value.matchers : []).forEach((m: unknown, i) => {
    const r = typeof m === 'string' ? parseMatcher(m) : undefined;
    if (r?.ok) matchers.push(r.matcher);
    else
      problems.add(
        [...at, 'matchers', i],
        r ? r.error : `must be a matcher string like team="infra", got ${show(m)}`,
      );
  });
  let severity = { min: 1, max: 5 };
  if (value.severity !== undefined && !isRoot) {
    const sev = parseSeverity(value.severity);
    if (sev) severity = sev;
    else problems.add([...at, 'severity'], `${SEVERITY_HINT}, got ${show(value.severity)}`);
  }
  const own: Inherited = {
    receivers: node?.receivers ?? (node?.receiver !== undefined ? [node.receiver] : parent.receivers),
    groupBy: node?.group_by ?? parent.groupBy,
    groupWaitMs: node?.group_wait ?? parent.groupWaitMs,
    groupIntervalMs: node?.group_interval ?? parent.groupIntervalMs,
    repeatIntervalMs: node?.repeat_interval ?? parent.repeatIntervalMs,
  };
  const routes = (Array.isArray(value.routes) ? value.routes : []).flatMap((child: unknown, i) => {
    const r = resolveNode(child, own, `${id}.${i}`, [...at, 'routes', i], problems);
    return r ? [r] : [];
  });
  if (!node) return undefined;
  return {
    id,
    ...own,
    matchers,
    minSeverity: severity.min,
    maxSeverity: severity.max,
    continue: node.continue ?? false,
    routes,
  };
};

/**
 * Validates a route tree document (text or object) and applies defaults and inheritance. Throws
 * ARGUS_ERR_INVALID_CONFIG listing every problem by path (`routes[1].group_wait: …`).
 */
export const parseRoutes = (doc: unknown): Route => {
  const problems = new Problems();
  const value = readDocument(doc, problems);
  const root =
    problems.list.length === 0 ? resolveNode(value, ROUTE_DEFAULTS, 'root', [], problems) : undefined;
  problems.throwIfAny('invalid route tree');
  return root!;
};

const matchesRoute = (route: Route, labels: Labels, severity: number): boolean =>
  severity >= route.minSeverity && severity <= route.maxSeverity && matchesAll(route.matchers, labels);

/** The routes an alert ends at (Alertmanager's `Route.Match`), in tree order. */
export const matchRoutes = (route: Route, labels: Labels, severity: number): Route[] => {
  if (!matchesRoute(route, labels, severity)) return [];
  const all: Route[] = [];
  for (const child of route.routes) {
    const found = matchRoutes(child, labels, severity);
    all.push(...found);
    if (found.length > 0 && !child.continue) break;
  }
  return all.length > 0 ? all : [route];
};

/** The labels an alert is grouped by on a route: the group_by labels it has (all of them for '...'). */
export const groupLabelsOf = (groupBy: readonly string[], labels: Labels): Labels => {
  const names = groupBy[0] === GROUP_BY_ALL ? Object.keys(labels) : groupBy;
  const out: Record<string, string> = {};
  for (const n of [...names].sort()) {
    const v = labels[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
};

/** `{alertname="cpu",service="pay"}`: labels sorted by name, values quoted. */
export const formatLabels = (labels: Labels): string =>
  `{${Object.keys(labels)
    .sort()
    .map((n) => `${n}=${JSON.stringify(labels[n])}`)
    .join(',')}}`;

/** Where an alert goes: one match per (matched route, receiver). A root with no receivers routes nowhere. */
export const routeAlert = (root: Route, labels: Labels, severity: number): RouteMatch[] =>
  matchRoutes(root, labels, severity).flatMap((route) => {
    const groupLabels = groupLabelsOf(route.groupBy, labels);
    const groupKey = `${route.id}${formatLabels(groupLabels)}`;
    const timing: GroupTiming = {
      groupBy: route.groupBy,
      groupWaitMs: route.groupWaitMs,
      groupIntervalMs: route.groupIntervalMs,
      repeatIntervalMs: route.repeatIntervalMs,
    };
    return route.receivers.map((receiver) => ({
      receiver,
      routeId: route.id,
      groupKey,
      groupLabels,
      timing,
    }));
  });
