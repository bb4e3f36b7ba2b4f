/**
 * The rules JSON API on the node's HTTP endpoint (docs/API.md, "Rules"):
 *
 *   GET    /api/v1/rules          every rule in force (document + parsed), and the documents refused
 *   POST   /api/v1/rules          body: a rules file (YAML or JSON); every rule written, or none
 *   GET    /api/v1/rules/:id
 *   PUT    /api/v1/rules/:id      body: one rule (YAML or JSON); validated, then stored
 *   DELETE /api/v1/rules/:id
 *
 * A bad rule is refused with 400, the ARGUS_ERR_INVALID_RULE message and its `problems` (`{ path,
 * message }`, the path as written in the document), and nothing is written: the rules in force stay
 * as they were. The route answers every request it takes — it never throws.
 *
 * `document` is the rule as a document, rebuilt from the validated rule (RuleSet keeps rules, not the
 * text they came from): the canonical form — field order, durations and numbers normalised, comments
 * gone. PUT it back unchanged and the rule keeps its version (schema.ts hashes that same form), so its
 * alerts are not touched.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../../runtime/http.ts';
import {
  failure as failureOf,
  pathParts,
  problem,
  type Reply,
  readDocumentText,
  reply,
  writeJson,
} from '../../runtime/json-api.ts';
import { formatDuration } from '../notify/document.ts';
import type { RuleSet } from './rules.ts';
import { isRuleId, show } from './schema.ts';
import { formatSelector } from './selector.ts';
import type { Aggregate, Labels, NoDataPolicy, Operator, Rule, Scope, Severity } from './types.ts';

const PREFIX = '/api/v1/rules';

const NOT_RUNNING = 'rules are not running yet (the alerting extension has not started)';

/** A rule as the document format writes it (schema.ts), canonical. */
export interface RuleDocument {
  readonly metric: string;
  readonly scope: Scope;
  readonly aggregate?: Aggregate;
  readonly services?: readonly string[];
  readonly condition: string;
  readonly clear?: number;
  readonly for: string;
  readonly keep_firing_for: string;
  readonly no_data: 'ignore' | { readonly policy: 'alert'; readonly after: number };
  readonly interval: string;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Labels;
}

export const ruleDocument = (r: Rule): RuleDocument => ({
  metric: formatSelector(r.selector),
  scope: r.scope,
  ...(r.aggregate !== undefined ? { aggregate: r.aggregate } : {}),
  ...(r.services.length > 0 ? { services: r.services } : {}),
  condition: `${r.op} ${r.threshold}`,
  ...(r.clear !== r.threshold ? { clear: r.clear } : {}),
  for: formatDuration(r.forMs),
  keep_firing_for: formatDuration(r.keepFiringForMs),
  no_data: r.noData.policy === 'ignore' ? 'ignore' : { policy: 'alert', after: r.noData.after },
  interval: formatDuration(r.intervalMs),
  severity: r.severity,
  labels: r.labels,
  annotations: r.annotations,
});

/** A rule as JSON: the validated `Rule`, its selector as text (the matchers' RegExps do not serialise). */
export interface RuleView {
  readonly id: string;
  readonly version: string;
  readonly metric: string;
  readonly scope: Scope;
  readonly aggregate: Aggregate | null;
  readonly services: readonly string[];
  readonly op: Operator;
  readonly threshold: number;
  readonly clear: number;
  readonly forMs: number;
  readonly keepFiringForMs: number;
  readonly noData: NoDataPolicy;
  readonly intervalMs: number;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Labels;
}

export const ruleView = (r: Rule): RuleView => ({
  id: r.id,
  version: r.version,
  metric: formatSelector(r.selector),
  scope: r.scope,
  aggregate: r.aggregate ?? null,
  services: r.services,
  op: r.op,
  threshold: r.threshold,
  clear: r.clear,
  forMs: r.forMs,
  keepFiringForMs: r.keepFiringForMs,
  noData: r.noData,
  intervalMs: r.intervalMs,
  severity: r.severity,
  labels: r.labels,
  annotations: r.annotations,
});

/** One rule as every endpoint answers it. */
const entry = (r: Rule) => ({
  id: r.id,
  version: r.version,
  document: ruleDocument(r),
  rule: ruleView(r),
});

const byId = <T extends { readonly id: string }>(a: T, b: T): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

const notFound = (rules: RuleSet, id: string): Reply => {
  const why = rules.rejected.get(id);
  return problem(
    404,
    why === undefined
      ? `no rule ${show(id)}`
      : `no rule ${show(id)} in force: its document is refused: ${why}`,
  );
};

const listRules = async (rules: RuleSet): Promise<Reply> =>
  reply(200, {
    rules: [...rules.all()].sort(byId).map(entry),
    rejected: [...rules.rejected].map(([id, error]) => ({ id, error })).sort(byId),
  });

const applyFile = async (rules: RuleSet, req: IncomingMessage): Promise<Reply> => {
  const result = await rules.apply(await readDocumentText(req, 'a rules file'));
  if (result.applied) return reply(200, { written: result.rules });
  const fileError = result.errors.length === 1 && result.errors[0]!.id === '(file)';
  const error = fileError
    ? `nothing was written: ${result.errors[0]!.message}`
    : `nothing was written: ${result.errors.length} invalid rule(s): ${result.errors.map((e) => show(e.id)).join(', ')}`;
  return reply(400, { error, errors: result.errors });
};

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';
type Handlers = Partial<Record<Method, (rules: RuleSet, req: IncomingMessage) => Promise<Reply>>>;

/** The handlers of a known path, by method; undefined for a path this API does not serve. */
const endpoint = (parts: readonly string[]): Handlers | undefined => {
  if (parts.length === 0) return { GET: listRules, POST: applyFile };
  const [id] = parts;
  if (parts.length !== 1 || id === undefined) return undefined;
  return {
    GET: async (rules) => {
      const rule = rules.get(id);
      return rule ? reply(200, entry(rule)) : notFound(rules, id);
    },
    PUT: async (rules, req) =>
      reply(200, entry(await rules.put(id, await readDocumentText(req, `rule ${show(id)}`)))),
    DELETE: async (rules) =>
      isRuleId(id) && (await rules.delete(id)) ? reply(200, { deleted: true }) : notFound(rules, id),
  };
};

const answer = async (
  req: IncomingMessage,
  handlers: Handlers,
  rules: RuleSet | undefined,
): Promise<Reply> => {
  const allowed = Object.keys(handlers).join(', ');
  const handler = handlers[req.method as Method];
  if (!handler)
    return {
      status: 405,
      body: { error: `method ${req.method} is not allowed here (allowed: ${allowed})` },
      headers: { allow: allowed },
    };
  if (!rules) return problem(503, NOT_RUNNING);
  try {
    return await handler(rules, req);
  } catch (e) {
    return failure(e);
  }
};

const failure = (e: unknown): Reply => failureOf(e, ['ARGUS_ERR_INVALID_RULE']);

export const ruleApi =
  (rules: () => RuleSet | undefined): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const parts = pathParts(url.pathname, PREFIX);
    if (parts === undefined) return false;
    let r: Reply;
    if (parts === 'bad') r = problem(400, `path ${show(url.pathname)} is not valid percent-encoding`);
    else {
      const handlers = endpoint(parts);
      if (!handlers) return false;
      try {
        r = await answer(req, handlers, rules());
      } catch (e) {
        r = failure(e);
      }
    }
    if (!res.headersSent) writeJson(res, r);
    return true;
  };
