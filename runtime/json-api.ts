/**
 * The small pieces every JSON API module shares (actors/rule/api.ts, actors/notify/api.ts): a reply as
 * data, writing it, refusing a request with a status and a message, reading a document body, and
 * turning a thrown error into a reply — bad documents 400 with their problems, not-started 503.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from './body.ts';
import { describeError, type ErrorCode, isArgusError } from './errors.ts';

/** Largest body an API takes. */
export const MAX_API_BODY = 1 << 20;

export interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export const reply = (status: number, body: unknown): Reply => ({ status, body });
export const problem = (status: number, error: string): Reply => ({ status, body: { error } });

export const writeJson = (res: ServerResponse, r: Reply): void => {
  const text = JSON.stringify(r.body);
  res.writeHead(r.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...r.headers,
  });
  res.end(text);
};

/** A request that cannot be served as sent: answered `status` with `{ error: message }`. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The body as text (413 past `MAX_API_BODY`). */
export const readText = async (req: IncomingMessage): Promise<string> => {
  try {
    return (await readBody(req, MAX_API_BODY)).toString('utf8');
  } catch (e) {
    throw new Refusal(413, `body refused: ${describeError(e).message}`);
  }
};

/** The document in the body; an empty body is refused with what was expected. */
export const readDocumentText = async (req: IncomingMessage, what: string): Promise<string> => {
  const text = await readText(req);
  if (text.trim() === '') throw new Refusal(400, `body is empty: send ${what} as YAML or JSON`);
  return text;
};

/**
 * A thrown error as a reply: a Refusal as it says; `invalid` codes (a bad document) 400 with the
 * error's `problems`; bad keys and messages 400; not started or unreachable 503; the rest 500.
 */
export const failure = (e: unknown, invalid: readonly ErrorCode[]): Reply => {
  if (e instanceof Refusal) return problem(e.status, e.message);
  const { message } = describeError(e);
  if (invalid.some((code) => isArgusError(e, code))) {
    const problems = (e as { detail: { problems?: unknown } }).detail.problems;
    return reply(400, { error: message, problems: Array.isArray(problems) ? problems : [] });
  }
  if (isArgusError(e, 'ARGUS_ERR_INVALID_KEY') || isArgusError(e, 'ARGUS_ERR_INVALID_MESSAGE'))
    return problem(400, message);
  if (isArgusError(e, 'ARGUS_ERR_NOT_STARTED') || isArgusError(e, 'ARGUS_ERR_UNREACHABLE'))
    return problem(503, message);
  return problem(500, message);
};

/**
 * The decoded path segments after `prefix` (`/api/v1/rules` → `[]`, `/api/v1/rules/a%2Fb` → `['a/b']`);
 * undefined for a path outside it, 'bad' when a segment is not valid percent-encoding.
 */
export const pathParts = (pathname: string, prefix: string): string[] | 'bad' | undefined => {
  if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return undefined;
  try {
    return pathname
      .slice(prefix.length)
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
  } catch {
    return 'bad';
  }
};
