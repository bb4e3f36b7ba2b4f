/**
 * Push ingest over HTTP, shaped so that existing clients work unchanged:
 *
 *   POST /write?db=&rp=&precision=          InfluxDB 1.x line protocol (Telegraf `outputs.influxdb`)
 *   POST /api/v2/write?org=&bucket=&precision=  InfluxDB 2.x (Telegraf `outputs.influxdb_v2`)
 *   GET|HEAD /ping                          204, as InfluxDB answers Telegraf's health check
 *   POST /query                             `CREATE DATABASE …` answered as done (Telegraf sends it at start)
 *   POST /api/v1/push                       JSON `{ ts, resource, metrics, tags, counters }` or an array
 *
 * Bodies may be gzip (`Content-Encoding: gzip`). Points are grouped by host and appended to each host's
 * mailbox; the answer comes once they are durable (204 / 202), so a client that got it can forget them.
 * Partial writes follow InfluxDB: the valid lines are kept and the answer is 400 naming each rejected
 * line and why. A body over `maxBodyBytes` (compressed or not) is 413; nothing of it is taken.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGunzip } from 'node:zlib';
import type { PushedPoint } from '../../actors/host/types.ts';
import { describeError } from '../errors.ts';
import { parseJsonPush } from './json-push.ts';
import { type LineError, parseLineProtocol, parsePrecision, type RoutedPoint } from './line-protocol.ts';

/** Where pushed points go: the host entity's mailbox. Resolves when durable. */
export type PushSink = (host: string, points: readonly PushedPoint[]) => Promise<void>;

export interface IngestOptions {
  readonly sink: PushSink;
  readonly now: () => number;
  /** Largest body, compressed and uncompressed (default 32 MiB). */
  readonly maxBodyBytes?: number;
  /** Points per mailbox message at most (default 5,000): a huge batch for one host is split. */
  readonly maxPointsPerMessage?: number;
}

const DEFAULT_MAX_BODY = 32 << 20;
const MAX_ERRORS_LISTED = 100;
const INFLUX_VERSION = '1.8.10-argus';
/** How long the rest of a refused body is read and dropped before the connection is cut. */
const DRAIN_MS = 5_000;

/** A body over the limit (readIngestBody): answer 413 and `drainRefused`. */
export class TooLarge extends Error {}

const json = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-influxdb-version': INFLUX_VERSION,
    ...headers,
  });
  res.end(text);
};

const empty = (res: ServerResponse, status: number): void => {
  res.writeHead(status, { 'x-influxdb-version': INFLUX_VERSION, 'content-length': 0 });
  res.end();
};

/**
 * Reads the body, gunzipping when asked, refusing past `max` bytes either way. A refusal stops reading
 * rather than destroying the request: that would destroy the socket, and the 413 would never reach
 * the client (handleIngest closes the connection once the answer is out).
 */
export const readIngestBody = (req: IncomingMessage, max: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return reject(new TooLarge(`body of ${declared} bytes is over the limit of ${max}`));
    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip')
      return reject(new Error(`content-encoding '${encoding}' is not supported (gzip or identity)`));
    const source = encoding === 'gzip' ? req.pipe(createGunzip()) : req;
    let settled = false;
    const refuse = (e: Error): void => {
      if (settled) return;
      settled = true;
      req.unpipe();
      req.pause();
      if (source !== req) source.destroy();
      reject(e instanceof TooLarge ? e : new Error(`reading the body: ${e.message}`));
    };
    let raw = 0;
    req.on('data', (c: Buffer) => {
      raw += c.length;
      if (raw > max) refuse(new TooLarge(`body is over the limit of ${max} bytes`));
    });
    const chunks: Buffer[] = [];
    let size = 0;
    source.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > max) return refuse(new TooLarge(`decompressed body is over the limit of ${max} bytes`));
      chunks.push(c);
    });
    source.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    source.on('error', refuse);
    req.on('error', refuse);
  });

/** After a 413 sent with `connection: close`: reads the rest unread, cutting off a client that keeps sending. */
export const drainRefused = (req: IncomingMessage): void => {
  const cutOff = setTimeout(() => req.destroy(), DRAIN_MS);
  cutOff.unref();
  req.on('close', () => clearTimeout(cutOff));
  req.resume();
};

/** Groups points by host and hands each host's run to the sink, split into bounded messages. */
const deliver = async (points: readonly RoutedPoint[], options: IngestOptions): Promise<void> => {
  const byHost = new Map<string, PushedPoint[]>();
  for (const { host, point } of points) {
    const list = byHost.get(host);
    if (list) list.push(point);
    else byHost.set(host, [point]);
  }
  const max = options.maxPointsPerMessage ?? 5_000;
  const sends: Promise<void>[] = [];
  for (const [host, list] of byHost) {
    for (let i = 0; i < list.length; i += max) sends.push(options.sink(host, list.slice(i, i + max)));
  }
  await Promise.all(sends);
};

const describeLines = (errors: readonly LineError[]): string => {
  const listed = errors.slice(0, MAX_ERRORS_LISTED).map((e) => `line ${e.line}: ${e.error}`);
  const more = errors.length > MAX_ERRORS_LISTED ? `; and ${errors.length - MAX_ERRORS_LISTED} more` : '';
  return `partial write: ${listed.join('; ')}${more} dropped=${errors.length}`;
};

/**
 * Handles the ingest routes; resolves false for any other request (the caller routes it on). Never
 * throws: every problem is an answer.
 */
export const handleIngest = async (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  options: IngestOptions,
): Promise<boolean> => {
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (path === '/ping' && (method === 'GET' || method === 'HEAD')) {
    empty(res, 204);
    return true;
  }
  if (path === '/query' && (method === 'POST' || method === 'GET')) {
    // Telegraf's v1 output creates its database at start; Argus has none to create.
    json(res, 200, { results: [{ statement_id: 0 }] });
    return true;
  }
  const api =
    path === '/write' ? 'v1' : path === '/api/v2/write' ? 'v2' : path === '/api/v1/push' ? 'json' : undefined;
  if (!api) return false;
  const fail = (status: number, message: string, headers: Record<string, string> = {}) =>
    api === 'v2'
      ? json(res, status, { code: status === 413 ? 'request too large' : 'invalid', message }, headers)
      : json(res, status, { error: message }, headers);
  if (method !== 'POST') {
    fail(405, `${path} takes POST`);
    return true;
  }
  const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  let body: Buffer;
  try {
    body = await readIngestBody(req, max);
  } catch (e) {
    if (e instanceof TooLarge) {
      // Answer, then drain the rest unread and close: closing with unread bytes would reset the
      // connection and lose the answer. A client that keeps sending is cut off after DRAIN_MS.
      fail(413, e.message, { connection: 'close' });
      drainRefused(req);
    } else fail(400, describeError(e).message);
    return true;
  }
  try {
    if (api === 'json') await pushJson(body, res, options);
    else await writeLines(api, url, body, res, options);
  } catch (e) {
    // The mailbox refused (runtime stopping, transport down): nothing was acknowledged, the client retries.
    fail(503, `points not stored: ${describeError(e).message}`);
  }
  return true;
};

const writeLines = async (
  api: 'v1' | 'v2',
  url: URL,
  body: Buffer,
  res: ServerResponse,
  options: IngestOptions,
): Promise<void> => {
  const precision = parsePrecision(url.searchParams.get('precision'), api);
  const fail = (message: string) =>
    api === 'v2' ? json(res, 400, { code: 'invalid', message }) : json(res, 400, { error: message });
  if (!precision.ok) return fail(precision.error);
  if (api === 'v2' && !url.searchParams.get('bucket'))
    return fail("bucket: required (the v2 write API's 'bucket' parameter)");
  const { points, errors } = parseLineProtocol(body.toString('utf8'), {
    precision: precision.precision,
    now: options.now(),
  });
  await deliver(points, options);
  if (errors.length === 0) return empty(res, 204);
  const message = describeLines(errors);
  if (api === 'v2')
    json(res, 400, { code: 'invalid', message, line: errors[0]!.line, accepted: points.length });
  else json(res, 400, { error: message, accepted: points.length });
};

const pushJson = async (body: Buffer, res: ServerResponse, options: IngestOptions): Promise<void> => {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return json(res, 400, { error: `body is not JSON: ${describeError(e).message}`, accepted: 0 });
  }
  const { points, errors } = parseJsonPush(doc, { now: options.now() });
  await deliver(points, options);
  if (errors.length === 0) return json(res, 202, { accepted: points.length });
  json(res, 400, {
    error: errors
      .slice(0, MAX_ERRORS_LISTED)
      .map((e) => e.error)
      .join('; '),
    errors,
    accepted: points.length,
  });
};
