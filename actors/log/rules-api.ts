/**
 * The log rules JSON API on the node's HTTP endpoint (as actors/rule/api.ts for metric rules):
 *
 *   GET    /api/v1/logrules            every rule in force, and the documents refused (with why)
 *   GET    /api/v1/logrules/:id        one rule, with its plan
 *   PUT    /api/v1/logrules/:id        body: the SQL, or a YAML/JSON document; 201 created, 200 replaced
 *   DELETE /api/v1/logrules/:id        204, or 404 when there was none
 *   POST   /api/v1/logrules/validate   body as PUT (`?id=` names it in messages); checks, stores nothing
 *
 * A bad rule is refused with 400: the ARGUS_ERR_INVALID_LOG_RULE message, its `problems` and, for SQL
 * the parser located, `position` `{ line, column }`; nothing is written. The body is stored as sent, and
 * the watch reads it back with no content type, so a document must say what it is by itself (rules.ts:
 * SQL when its first token is SELECT, else YAML/JSON). A content type is therefore only checked:
 * `application/sql` with a body that is not SQL is refused. The route answers every request it takes —
 * it never throws.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError, isArgusError } from '../../runtime/errors.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import {
  failure,
  pathParts,
  problem,
  Refusal,
  type Reply,
  readText,
  reply,
  writeJson,
} from '../../runtime/json-api.ts';
import { show } from '../rule/syntax.ts';
import type { Labels, Severity } from '../rule/types.ts';
import { isLogRuleId, type LogRule, type LogRuleSet, looksLikeSql, parseLogRuleDocument } from './rules.ts';
import type { LogRulePlan, WindowSpec } from './sql.ts';

const PREFIX = '/api/v1/logrules';

const NOT_RUNNING = 'log rules are not running yet (the logs extension has not started)';

/** A rule as the list answers it. */
export interface LogRuleEntry {
  readonly id: string;
  readonly version: string;
  readonly stream: string;
  readonly sql: string;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly description: string | null;
  readonly window: WindowSpec;
}

/** One rule as GET, PUT and validate answer it: the entry, the document as stored, and the plan. */
export interface LogRuleDetail extends LogRuleEntry {
  readonly text: string;
  readonly plan: LogRulePlan;
}

export const logRuleEntry = (r: LogRule): LogRuleEntry => ({
  id: r.id,
  version: r.version,
  stream: r.plan.stream,
  sql: r.sql,
  severity: r.severity,
  labels: r.labels,
  annotations: r.annotations,
  description: r.description ?? null,
  window: r.plan.window,
});

export const logRuleDetail = (r: LogRule): LogRuleDetail => ({
  ...logRuleEntry(r),
  text: r.text,
  plan: r.plan,
});

const byId = <T extends { readonly id: string }>(a: T, b: T): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

const notFound = (rules: LogRuleSet, id: string): Reply => {
  const why = rules.rejected.get(id);
  return problem(
    404,
    why === undefined
      ? `no log rule ${show(id)}`
      : `no log rule ${show(id)} in force: its document is refused: ${why}`,
  );
};

/** The rule document in the body: not empty, and SQL when the content type says so. */
const readRuleText = async (req: IncomingMessage, what: string): Promise<string> => {
  const text = await readText(req);
  if (text.trim() === '') throw new Refusal(400, `body is empty: send ${what} as SQL, YAML or JSON`);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/sql' && !looksLikeSql(text))
    throw new Refusal(400, 'content-type is application/sql but the body does not start with SELECT');
  return text;
};

/** A thrown error as a reply; a bad rule 400 with its problems and position. */
const answerError = (e: unknown): Reply => {
  if (isArgusError(e, 'ARGUS_ERR_INVALID_LOG_RULE')) {
    const { problems, position } = e.detail as { problems?: unknown; position?: unknown };
    return reply(400, {
      error: describeError(e).message,
      problems: Array.isArray(problems) ? problems : [],
      ...(position === undefined ? {} : { position }),
    });
  }
  return failure(e, []);
};

const list = async (rules: LogRuleSet): Promise<Reply> =>
  reply(200, {
    rules: [...rules.all()].sort(byId).map(logRuleEntry),
    rejected: [...rules.rejected].map(([id, error]) => ({ id, error })).sort(byId),
  });

const validate = async (_rules: LogRuleSet, req: IncomingMessage, url: URL): Promise<Reply> => {
  const id = url.searchParams.get('id') ?? 'validate';
  try {
    const rule = parseLogRuleDocument(id, await readRuleText(req, 'a log rule'));
    return reply(200, { ok: true, plan: rule.plan, rule: logRuleDetail(rule) });
  } catch (e) {
    const r = answerError(e);
    return r.status === 400 ? reply(400, { ok: false, ...(r.body as object) }) : r;
  }
};

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';
type Handler = (rules: LogRuleSet, req: IncomingMessage, url: URL) => Promise<Reply>;
type Handlers = Partial<Record<Method, Handler>>;

/** The handlers of a known path, by method; undefined for a path this API does not serve. */
const endpoint = (parts: readonly string[]): Handlers | undefined => {
  if (parts.length === 0) return { GET: list };
  const [id] = parts;
  if (parts.length !== 1 || id === undefined) return undefined;
  return {
    GET: async (rules) => {
      const rule = rules.get(id);
      return rule ? reply(200, logRuleDetail(rule)) : notFound(rules, id);
    },
    PUT: async (rules, req) => {
      const text = await readRuleText(req, `log rule ${show(id)}`);
      const existed = rules.get(id) !== undefined || rules.rejected.has(id);
      return reply(existed ? 200 : 201, logRuleDetail(await rules.put(id, text)));
    },
    DELETE: async (rules) =>
      isLogRuleId(id) && (await rules.delete(id)) ? reply(204, undefined) : notFound(rules, id),
    ...(id === 'validate' ? { POST: validate } : {}),
  };
};

const answer = async (
  req: IncomingMessage,
  url: URL,
  handlers: Handlers,
  rules: LogRuleSet | undefined,
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
    return await handler(rules, req, url);
  } catch (e) {
    return answerError(e);
  }
};

export const logRulesApi =
  (getRules: () => LogRuleSet | undefined): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const parts = pathParts(url.pathname, PREFIX);
    if (parts === undefined) return false;
    let r: Reply;
    if (parts === 'bad') r = problem(400, `path ${show(url.pathname)} is not valid percent-encoding`);
    else {
      const handlers = endpoint(parts);
      if (!handlers) return false;
      try {
        r = await answer(req, url, handlers, getRules());
      } catch (e) {
        r = answerError(e);
      }
    }
    if (res.headersSent) return true;
    if (r.status === 204) {
      res.writeHead(204);
      res.end();
    } else writeJson(res, r);
    return true;
  };
