/**
 * The log streams' read API (docs/API.md, "Logs"):
 *
 *   GET /api/v1/logs                          streams with log rules, and the sub-stream count
 *   GET /api/v1/logs/<stream>                 one stream: records applied, newest record time, its rules'
 *                                             open windows and firing alerts (summed over sub-streams)
 *   GET /api/v1/logs/<stream>/records?from=&to=&q=&limit=&cursor=
 *                                             recent records, newest first (search.ts): `from`/`to` as
 *                                             RFC 3339 or epoch ms, `q` a filter expression (filter.ts),
 *                                             `limit` 1-1000 (default 100), `cursor` from the last page
 *
 * `POST /api/v1/logs/<stream>` (NDJSON ingest) is runtime/logs/http-logs.ts; log rules are rules-api.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../../runtime/http.ts';
import {
  failure,
  pathParts,
  problem,
  Refusal,
  type Reply,
  reply,
  writeJson,
} from '../../runtime/json-api.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { LOG_KIND } from './entity.ts';
import { parseLogFilter } from './filter.ts';
import type { LogRuleSet } from './rules.ts';
import { searchLogs } from './search.ts';
import { isStreamName } from './types.ts';

const PREFIX = '/api/v1/logs';

/**
 * The entity keys of a stream: itself and, when split, its sub-streams — the stream's own key too, so
 * records taken in before the stream was split are still found.
 */
export const streamKeys = (stream: string, subStreams: number): string[] =>
  subStreams <= 1 ? [stream] : [stream, ...Array.from({ length: subStreams }, (_, i) => `${stream}#${i}`)];

/** A time bound: RFC 3339 text or epoch ms. */
export const parseTime = (name: string, text: string | null): number | undefined => {
  if (text === null || text === '') return undefined;
  if (/^-?\d+$/.test(text)) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new Refusal(400, `${name}: must be RFC 3339 (2026-12-01T10:00:00Z) or epoch ms, got '${text}'`);
  return t;
};

const serve = async (
  rt: Runtime,
  rules: LogRuleSet | undefined,
  subStreams: number,
  parts: readonly string[],
  url: URL,
): Promise<Reply> => {
  if (parts.length === 0) {
    const streams = [...new Set((rules?.all() ?? []).map((r) => r.plan.stream))].sort();
    return reply(200, { subStreams, streams });
  }
  const stream = parts[0]!;
  if (!isStreamName(stream))
    return problem(
      400,
      `stream name '${stream}' must be 1-128 letters, digits, . _ - (not starting with . or -)`,
    );
  const keys = streamKeys(stream, subStreams);
  if (parts.length === 1) {
    const answers = await Promise.all(keys.map((k) => rt.ask(LOG_KIND, k, 'summary')));
    let records = 0;
    let newest: number | null = null;
    for (const a of answers as { records: number; newest: number | null }[]) {
      records += a.records;
      if (a.newest !== null && (newest === null || a.newest > newest)) newest = a.newest;
    }
    // keys[0] is the stream entity itself, which holds the rules' windows and alerts.
    const aggregator = (answers[0] ?? {}) as { rules?: unknown };
    return reply(200, {
      stream,
      subStreams,
      records,
      newest,
      rules: aggregator.rules ?? {},
    });
  }
  if (parts.length === 2 && parts[1] === 'records') {
    const p = url.searchParams;
    const limitText = p.get('limit') ?? '100';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 1000)
      throw new Refusal(400, `limit: must be an integer 1-1000, got '${limitText}'`);
    const filter = parseLogFilter(p.get('q') ?? '');
    if (!filter.ok) throw new Refusal(400, `q: ${filter.error}`);
    const from = parseTime('from', p.get('from'));
    const to = parseTime('to', p.get('to'));
    const cursor = p.get('cursor') ?? undefined;
    const page = await searchLogs(rt, {
      keys,
      filter: filter.expr,
      limit,
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    return reply(200, {
      stream,
      items: page.items.map((i) => ({
        time: new Date(i.time).toISOString(),
        timeMs: i.time,
        fields: i.fields,
      })),
      ...(page.next !== undefined ? { next: page.next } : {}),
      complete: page.complete,
      scanned: page.scanned,
    });
  }
  return problem(404, `no such log resource: ${url.pathname}`);
};

export const logsApi =
  (runtime: () => Runtime | undefined, rules: () => LogRuleSet | undefined, subStreams: number): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    const parts = pathParts(url.pathname, PREFIX);
    if (parts === undefined) return false;
    const rt = runtime();
    let r: Reply;
    try {
      if (parts === 'bad') r = problem(400, 'the path is not valid percent-encoding');
      else
        r = rt ? await serve(rt, rules(), subStreams, parts, url) : problem(503, 'logs are not running yet');
    } catch (e) {
      r = failure(e, ['ARGUS_ERR_INVALID_LOG']);
    }
    writeJson(res, r);
    return true;
  };
