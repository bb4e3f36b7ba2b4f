/**
 * The notification JSON API on the node's HTTP endpoint (docs/API.md, "Routes, receivers and silences"):
 *
 *   GET    /api/v1/routes                                 the stored tree document + the tree in force
 *   PUT    /api/v1/routes                                 body: the tree (YAML or JSON); validated, then stored
 *   DELETE /api/v1/routes
 *   GET    /api/v1/receivers                              every receiver (secret shown as "***") + its entity's summary
 *   GET    /api/v1/receivers/:id
 *   PUT    /api/v1/receivers/:id                          body: the receiver (YAML or JSON)
 *   DELETE /api/v1/receivers/:id
 *   GET    /api/v1/receivers/:id/deadletters
 *   POST   /api/v1/receivers/:id/deadletters/replay       body (optional): {"id": "<notification id>"}; 202
 *   POST   /api/v1/receivers/:id/deadletters/discard      body (optional): {"id": "<notification id>"}; 202
 *   GET    /api/v1/silences                               every silence with its state (pending/active/expired)
 *   POST   /api/v1/silences                               body: a silence document; 201 {"id"}
 *   DELETE /api/v1/silences/:id                           expires it now
 *
 * Principles: a write is validated before it is stored, so a bad document is refused (400, every wrong
 * field in `problems`) and nothing changes; a receiver's secret and credential-like header values never
 * leave the node; a receiver is known while it is configured or its entity still holds something (a
 * deleted receiver's dead letters can still be read and discarded); the route answers every request it
 * takes — it never throws — with a JSON `{ error }` naming the problem.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { realClock } from '../../runtime/clock.ts';
import { describeError } from '../../runtime/errors.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import {
  failure as failureOf,
  problem,
  Refusal,
  type Reply,
  readDocumentText,
  readText,
  reply,
  writeJson,
} from '../../runtime/json-api.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { type NotifyConfig, RECEIVERS_SECTION, ROUTES_KEY, ROUTES_SECTION } from './config.ts';
import { ID, isPlainObject, show } from './document.ts';
import { formatMatcher } from './matchers.ts';
import { RECEIVER_KIND } from './receiver.ts';
import { silenceState } from './silences.ts';
import type { ReceiverConfig, ReceiverMessage, Route, Silence } from './types.ts';

const PREFIX = '/api/v1/';
export const REDACTED = '***';

const failure = (e: unknown): Reply => failureOf(e, ['ARGUS_ERR_INVALID_CONFIG']);

/** Header names whose values are credentials: shown as "***" like the secret. */
const CREDENTIAL_HEADER = /authorization|cookie|token|secret|password|api[-_]?key/i;

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** The body of replay/discard: empty (every dead letter), or `{ "id": "<notification id>" }`. */
const readNotificationId = async (req: IncomingMessage): Promise<string | undefined> => {
  const text = await readText(req);
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Refusal(400, `body is not JSON: ${describeError(e).message}`);
  }
  if (!isPlainObject(value))
    throw new Refusal(400, `body must be a JSON object like {"id": "<notification id>"}, got ${show(value)}`);
  const unknown = Object.keys(value).filter((k) => k !== 'id');
  if (unknown.length > 0) throw new Refusal(400, `body: unknown field(s) ${unknown.map(show).join(', ')}`);
  const id = value.id;
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || id === '')
    throw new Refusal(400, `id: must be a notification id (a non-empty string), got ${show(id)}`);
  return id;
};

/** A route as JSON: matchers as Alertmanager strings (a RegExp does not serialise). */
export interface RouteView {
  readonly id: string;
  readonly receivers: readonly string[];
  readonly matchers: readonly string[];
  readonly minSeverity: number;
  readonly maxSeverity: number;
  readonly continue: boolean;
  readonly groupBy: readonly string[];
  readonly groupWaitMs: number;
  readonly groupIntervalMs: number;
  readonly repeatIntervalMs: number;
  readonly routes: readonly RouteView[];
}

export const routeView = (r: Route): RouteView => ({
  id: r.id,
  receivers: r.receivers,
  matchers: r.matchers.map(formatMatcher),
  minSeverity: r.minSeverity,
  maxSeverity: r.maxSeverity,
  continue: r.continue,
  groupBy: r.groupBy,
  groupWaitMs: r.groupWaitMs,
  groupIntervalMs: r.groupIntervalMs,
  repeatIntervalMs: r.repeatIntervalMs,
  routes: r.routes.map(routeView),
});

/** A receiver as the API shows it: the secret and credential-like header values as "***". */
export const redactReceiver = (r: ReceiverConfig): ReceiverConfig => ({
  ...r,
  ...(r.secret !== undefined ? { secret: REDACTED } : {}),
  headers: Object.fromEntries(
    Object.entries(r.headers).map(([name, value]) => [name, CREDENTIAL_HEADER.test(name) ? REDACTED : value]),
  ),
});

/** A silence as the API shows it: its document (the shape POST takes, times in RFC 3339), id and state. */
export const silenceView = (s: Silence, at: number) => ({
  id: s.id,
  matchers: s.matchers.map(formatMatcher),
  starts_at: new Date(s.startsAt).toISOString(),
  ends_at: new Date(s.endsAt).toISOString(),
  created_by: s.createdBy,
  comment: s.comment,
  state: silenceState(s, at),
});

/** Documents of a section the config refused (written around the API), with why. */
const rejectedOf = (config: NotifyConfig, section: string) =>
  [...config.rejected]
    .filter(([where]) => where.startsWith(`${section}/`))
    .map(([where, error]) => ({ id: where.slice(section.length + 1), error }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/** True when a receiver entity's summary shows it still holds notifications or groups. */
const holdsAnything = (summary: unknown): boolean => {
  if (!isPlainObject(summary)) return false;
  const { queue, deadLetters, groups, inFlight } = summary;
  return queue !== 0 || deadLetters !== 0 || groups !== 0 || (inFlight !== null && inFlight !== undefined);
};

/** What one request needs: the config and runtime in force, the clock. */
interface Context {
  readonly config: NotifyConfig;
  readonly runtime: () => Runtime | undefined;
  readonly now: () => number;
  readonly req: IncomingMessage;
}

const NOT_RUNNING = 'notifications are not running yet (the alerting extension has not started)';
const RUNTIME_NOT_RUNNING = 'the runtime is not running yet: receiver entities cannot be asked';

const needRuntime = (ctx: Context): Runtime => {
  const rt = ctx.runtime();
  if (!rt) throw new Refusal(503, RUNTIME_NOT_RUNNING);
  return rt;
};

const summaryOf = (rt: Runtime, id: string): Promise<unknown> => rt.ask(RECEIVER_KIND, id, 'summary');

/** 404 unless the receiver is configured or its entity still holds something; answers its summary. */
const knownReceiver = async (ctx: Context, rt: Runtime, id: string) => {
  const config = ctx.config.receiver(id);
  const unknown = new Refusal(404, `no receiver ${show(id)}`);
  if (!config && !ID.test(id)) throw unknown;
  const summary = await summaryOf(rt, id);
  if (!config && !holdsAnything(summary)) throw unknown;
  return { config, summary };
};

const getRoutes = async (ctx: Context): Promise<Reply> => {
  const stored = await needRuntime(ctx).configSource.list(ROUTES_SECTION);
  const root = ctx.config.routes();
  return reply(200, {
    text: stored.get(ROUTES_KEY) ?? null,
    routes: root ? routeView(root) : null,
    rejected: ctx.config.rejected.get(`${ROUTES_SECTION}/${ROUTES_KEY}`) ?? null,
  });
};

const listReceivers = async (ctx: Context): Promise<Reply> => {
  const rt = needRuntime(ctx);
  // One receiver whose shard cannot answer does not hide the others: its summary is null with why.
  const receivers = await Promise.all(
    ctx.config.receivers().map(async (r) => {
      try {
        return { id: r.id, config: redactReceiver(r), summary: await summaryOf(rt, r.id) };
      } catch (e) {
        return { id: r.id, config: redactReceiver(r), summary: null, error: describeError(e).message };
      }
    }),
  );
  return reply(200, { receivers, rejected: rejectedOf(ctx.config, RECEIVERS_SECTION) });
};

const receiverMessage = async (ctx: Context, id: string, type: 'replay' | 'discard'): Promise<Reply> => {
  const rt = needRuntime(ctx);
  const notification = await readNotificationId(ctx.req);
  await knownReceiver(ctx, rt, id);
  const at = ctx.now();
  const message: ReceiverMessage =
    type === 'replay'
      ? { type: 'receiver.replay', ...(notification ? { id: notification } : {}), at }
      : { type: 'receiver.discard', ...(notification ? { id: notification } : {}), at };
  await rt.send(RECEIVER_KIND, id, message);
  return reply(202, { accepted: true });
};

const expireSilence = async (ctx: Context, id: string): Promise<Reply> => {
  const silence = ctx.config.silences().find((s) => s.id === id);
  if (!silence) return problem(404, `no silence ${show(id)}`);
  if (!(await ctx.config.expireSilence(id)))
    return problem(409, `silence ${show(id)} already expired at ${new Date(silence.endsAt).toISOString()}`);
  return reply(200, { expired: true });
};

type Handlers = Partial<Record<Method, (ctx: Context) => Promise<Reply>>>;

/** The handlers of a known path, by method; undefined for a path this API does not serve. */
const endpoint = (parts: readonly string[]): Handlers | undefined => {
  const [what, id, sub, action] = parts;
  const n = parts.length;
  if (what === 'routes' && n === 1)
    return {
      GET: getRoutes,
      PUT: async (ctx) => {
        const text = await readDocumentText(ctx.req, 'the route tree');
        return reply(200, { routes: routeView(await ctx.config.putRoutes(text)) });
      },
      DELETE: async (ctx) =>
        (await ctx.config.deleteRoutes())
          ? reply(200, { deleted: true })
          : problem(404, 'no route tree is stored'),
    };
  if (what === 'receivers' && n === 1) return { GET: listReceivers };
  if (what === 'receivers' && id !== undefined && n === 2)
    return {
      GET: async (ctx) => {
        const { config, summary } = await knownReceiver(ctx, needRuntime(ctx), id);
        return reply(200, { id, config: config ? redactReceiver(config) : null, summary });
      },
      PUT: async (ctx) => {
        const text = await readDocumentText(ctx.req, `receiver ${show(id)}`);
        return reply(200, { receiver: redactReceiver(await ctx.config.putReceiver(id, text)) });
      },
      DELETE: async (ctx) =>
        (await ctx.config.deleteReceiver(id))
          ? reply(200, { deleted: true })
          : problem(404, `no receiver ${show(id)}`),
    };
  if (what === 'receivers' && id !== undefined && sub === 'deadletters' && n === 3)
    return {
      GET: async (ctx) => {
        const rt = needRuntime(ctx);
        await knownReceiver(ctx, rt, id);
        return reply(200, await rt.ask(RECEIVER_KIND, id, 'deadletters'));
      },
    };
  if (what === 'receivers' && id !== undefined && sub === 'deadletters' && n === 4) {
    if (action === 'replay' || action === 'discard')
      return { POST: (ctx) => receiverMessage(ctx, id, action) };
    return undefined;
  }
  if (what === 'silences' && n === 1)
    return {
      GET: async (ctx) => {
        const at = ctx.now();
        return reply(200, { silences: ctx.config.silences().map((s) => silenceView(s, at)) });
      },
      POST: async (ctx) => {
        const text = await readDocumentText(ctx.req, 'the silence');
        return reply(201, { id: await ctx.config.addSilence(text) });
      },
    };
  if (what === 'silences' && id !== undefined && n === 2) return { DELETE: (ctx) => expireSilence(ctx, id) };
  return undefined;
};

const SECTIONS: readonly string[] = ['routes', 'receivers', 'silences'];

/** The decoded segments after /api/v1/; undefined for a path of another API; 'bad' when not decodable. */
const pathParts = (pathname: string): string[] | 'bad' | undefined => {
  const raw = pathname
    .slice(PREFIX.length)
    .split('/')
    .filter((p) => p !== '');
  if (!SECTIONS.includes(raw[0] ?? '')) return undefined;
  try {
    return raw.map(decodeURIComponent);
  } catch {
    return 'bad';
  }
};

const answer = async (
  req: IncomingMessage,
  handlers: Handlers,
  config: NotifyConfig | undefined,
  runtime: () => Runtime | undefined,
  now: () => number,
): Promise<Reply> => {
  const allowed = Object.keys(handlers);
  const handler = handlers[req.method as Method];
  if (!handler)
    return {
      status: 405,
      body: { error: `method ${req.method} is not allowed here (allowed: ${allowed.join(', ')})` },
      headers: { allow: allowed.join(', ') },
    };
  if (!config) return problem(503, NOT_RUNNING);
  try {
    return await handler({ config, runtime, now, req });
  } catch (e) {
    return failure(e);
  }
};

/**
 * The notification API. `now` (wall-clock ms) stamps replay/discard messages and decides silence
 * states; the config's own clock decides a new silence's default start and an expiry's end.
 */
export const notifyApi =
  (
    config: () => NotifyConfig | undefined,
    runtime: () => Runtime | undefined,
    now: () => number = () => realClock.now(),
  ): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (!url.pathname.startsWith(PREFIX)) return false;
    const parts = pathParts(url.pathname);
    if (parts === undefined) return false;
    if (parts === 'bad') {
      writeJson(res, problem(400, `path ${show(url.pathname)} is not valid percent-encoding`));
      return true;
    }
    const handlers = endpoint(parts);
    if (!handlers) return false;
    let r: Reply;
    try {
      r = await answer(req, handlers, config(), runtime, now);
    } catch (e) {
      r = failure(e);
    }
    if (!res.headersSent) writeJson(res, r);
    return true;
  };
