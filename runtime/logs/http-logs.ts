/**
 * `POST /api/v1/logs/<stream>`: NDJSON records pushed over HTTP (one JSON object per line, blank lines
 * skipped; `Content-Encoding: gzip` allowed). Open like the other push ingest paths (auth.ts
 * `accessFor`): log shippers rarely can send a bearer token.
 *
 * The answer comes once the good lines are durable, so a client that got it can forget them:
 *   204                 every line was a JSON object, all stored
 *   400 { error, errors: [{ line, error }], accepted }
 *                       some lines were not (`line 3: not a JSON object`, at most 100 listed); the good
 *                       ones are stored all the same, as InfluxDB does with a partial write
 *   400 ARGUS_ERR_INVALID_LOG  the stream name is not one (`isStreamName`); nothing taken
 *   413                 the body (compressed or not) is over `maxBodyBytes`; nothing taken
 *   503                 logs are not running here, or the sink failed: nothing is known stored, retry
 * The body is read by push ingest's reader (runtime/ingest/http.ts), so limits and gzip behave alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type IncomingLog, isStreamName, type LogSink } from '../../actors/log/types.ts';
import { describeError, isArgusError } from '../errors.ts';
import type { HttpRoute } from '../http.ts';
import { drainRefused, readIngestBody, TooLarge } from '../ingest/http.ts';
import { pathParts, problem, reply, writeJson } from '../json-api.ts';
import { fromNdjson, peerAddress } from './records.ts';

export const LOGS_INGEST_PREFIX = '/api/v1/logs';
const MAX_ERRORS_LISTED = 100;

export interface LogsIngestOptions {
  /** Largest body, compressed and uncompressed. */
  readonly maxBodyBytes: number;
  /** Wall-clock ms: the time of a record that carries none. */
  readonly now: () => number;
}

export interface NdjsonLineError {
  /** 1-based, counting blank lines. */
  readonly line: number;
  readonly error: string;
}

/** The objects of an NDJSON text and the lines that are not objects. Pure. */
export const parseNdjson = (
  text: string,
): { objects: Record<string, unknown>[]; errors: NdjsonLineError[] } => {
  const objects: Record<string, unknown>[] = [];
  const errors: NdjsonLineError[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      errors.push({ line: i + 1, error: `not JSON (${describeError(e).message})` });
      continue;
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      objects.push(value as Record<string, unknown>);
    else errors.push({ line: i + 1, error: 'not a JSON object' });
  }
  return { objects, errors };
};

const describeLines = (errors: readonly NdjsonLineError[], accepted: number): string => {
  const listed = errors.slice(0, MAX_ERRORS_LISTED).map((e) => `line ${e.line}: ${e.error}`);
  const more = errors.length > MAX_ERRORS_LISTED ? `; and ${errors.length - MAX_ERRORS_LISTED} more` : '';
  return `partial write: ${listed.join('; ')}${more}; ${accepted} accepted, ${errors.length} rejected`;
};

/** The route; `getSink()` is undefined while logs are not running on this node (503). */
export const logsIngestRoute =
  (getSink: () => LogSink | undefined, options: LogsIngestOptions): HttpRoute =>
  async (req, res, url) => {
    if (req.method !== 'POST') return false;
    const parts = pathParts(url.pathname, LOGS_INGEST_PREFIX);
    if (parts === undefined || (parts !== 'bad' && parts.length !== 1)) return false;
    await ingest(req, res, parts === 'bad' ? undefined : parts[0]!, getSink, options);
    return true;
  };

/** `message` as ArgusError words it (`ARGUS_ERR_INVALID_LOG: …`). */
const invalidLog = (res: ServerResponse, message: string): void =>
  writeJson(res, reply(400, { error: message, code: 'ARGUS_ERR_INVALID_LOG' }));

const ingest = async (
  req: IncomingMessage,
  res: ServerResponse,
  stream: string | undefined,
  getSink: () => LogSink | undefined,
  options: LogsIngestOptions,
): Promise<void> => {
  if (stream === undefined || !isStreamName(stream)) {
    // Nothing of the body is wanted: read it off so the answer reaches the client.
    req.resume();
    return invalidLog(
      res,
      `ARGUS_ERR_INVALID_LOG: stream name ${JSON.stringify(stream ?? '(bad percent-encoding)')} is not 1-128 letters, digits, '.', '_', '-' (not starting with '.' or '-')`,
    );
  }
  const sink = getSink();
  if (sink === undefined) {
    req.resume();
    return writeJson(res, problem(503, 'logs are not running on this node'));
  }
  let body: Buffer;
  try {
    body = await readIngestBody(req, options.maxBodyBytes);
  } catch (e) {
    if (e instanceof TooLarge) {
      writeJson(res, { ...problem(413, e.message), headers: { connection: 'close' } });
      drainRefused(req);
    } else writeJson(res, problem(400, describeError(e).message));
    return;
  }
  const { objects, errors } = parseNdjson(body.toString('utf8'));
  const peer = peerAddress(req.socket.remoteAddress);
  const now = options.now();
  const records: IncomingLog[] = objects.map((o) => fromNdjson(o, peer, now));
  try {
    if (records.length > 0) await sink.append(stream, records);
  } catch (e) {
    if (isArgusError(e, 'ARGUS_ERR_INVALID_LOG')) return invalidLog(res, describeError(e).message);
    return writeJson(res, problem(503, `records not stored: ${describeError(e).message}`));
  }
  if (errors.length === 0) {
    res.writeHead(204);
    res.end();
    return;
  }
  writeJson(
    res,
    reply(400, {
      error: describeLines(errors, records.length),
      errors: errors.slice(0, MAX_ERRORS_LISTED),
      accepted: records.length,
    }),
  );
};
