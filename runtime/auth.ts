/**
 * Bearer tokens for the node's user-facing endpoints: every HTTP route of `startHttp` (the gate in
 * http.ts, which asks `accessFor` what a request needs) and the live feed's WebSocket.
 *
 * Principles:
 * - Tokens are hashed at rest: the configuration holds the hex SHA-256 of each token (`auth.tokens`),
 *   never the token. A presented token is hashed and compared with every configured hash by
 *   `timingSafeEqual`, all of them, so neither the answer nor its timing says which hash was close.
 * - Two scopes, closed: `read` (watch) and `admin` (change; implies read).
 * - A token is never logged and never appears in an error: errors name the token's `name` at most.
 * - No tokens configured means nobody gets in (401 saying so), not "open to all".
 * - Closed by default: a path is open only if `accessFor` lists it (health, the web page's static files,
 *   push ingest); everything else needs `read` to look (`GET`, `HEAD`) and `admin` to do anything else,
 *   including routes added later.
 * - Who asked is known to routes by the token's name (`principalOf`), for "who did it" on admin actions.
 *
 * A token may come from `Authorization: Bearer <token>`, from a `Sec-WebSocket-Protocol` entry
 * `bearer.<token>` (browsers cannot set headers on a WebSocket), or from the `access_token` query
 * parameter (last resort: URLs end up in proxy logs).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type Scope = 'read' | 'admin';

/** One configured token (`auth.tokens[]`): a name for logs and errors, the token's hash, its scopes. */
export interface TokenEntry {
  readonly name: string;
  /** Hex SHA-256 of the token's UTF-8 bytes (`hashToken`). */
  readonly sha256: string;
  readonly scopes: readonly Scope[];
}

export type Authorization =
  | { readonly ok: true; readonly name: string }
  | { readonly ok: false; readonly status: 401 | 403; readonly error: string };

/**
 * What a request needs: `'open'` (no token) or a scope. Open, because they hold no data:
 * - `GET`/`HEAD /health` (load balancers and orchestrators probe it);
 * - the web page's static files, `GET`/`HEAD /`, `/index.html`, `/favicon.ico`, `/assets/*` (the page asks
 *   its user for a token and sends it with each API call);
 * - push ingest, `POST /write`, `/api/v2/write`, `/api/v1/push`, and the InfluxDB handshake Telegraf
 *   makes, `GET`/`HEAD /ping`, `POST /query` (runtime/ingest/http.ts): metric agents rarely can send a
 *   bearer token, and such receivers are kept behind network ACLs — a known gap (docs/API.md);
 * - log push ingest, `POST /api/v1/logs/<stream>` (one segment; runtime/logs/http-logs.ts), for the same reason.
 * `pathname` is the parsed URL's (dot segments resolved), so `/assets/../api/v1/rules` is not open.
 */
export type Access = 'open' | Scope;

const OPEN_TO_READ: ReadonlySet<string> = new Set(['/health', '/', '/index.html', '/favicon.ico', '/ping']);
const OPEN_TO_POST: ReadonlySet<string> = new Set(['/write', '/api/v2/write', '/api/v1/push', '/query']);
const ASSETS = '/assets/';
/** `POST /api/v1/logs/<stream>`: one segment, so no deeper path under it is opened by accident. */
const LOGS_PUSH = /^\/api\/v1\/logs\/[^/]+$/;

export const accessFor = (method: string, pathname: string): Access => {
  const reads = method === 'GET' || method === 'HEAD';
  if (
    reads &&
    (OPEN_TO_READ.has(pathname) || (pathname.startsWith(ASSETS) && pathname.length > ASSETS.length))
  )
    return 'open';
  if (method === 'POST' && (OPEN_TO_POST.has(pathname) || LOGS_PUSH.test(pathname))) return 'open';
  return reads ? 'read' : 'admin';
};

// The name of the token each request was let in with, filled by the HTTP gate (http.ts). A WeakMap: it
// goes with the request, and holds the name only, never the token.
const principals = new WeakMap<IncomingMessage, string>();

/** Records that `req` was let in with the token named `name` (the HTTP gate does; nothing else should). */
export const setPrincipal = (req: IncomingMessage, name: string): void => {
  principals.set(req, name);
};

/**
 * The name (`auth.tokens[].name`) of the token `req` was let in with — "who did it" for admin actions;
 * undefined for a request to an open endpoint, or one that did not pass the gate.
 */
export const principalOf = (req: IncomingMessage): string | undefined => principals.get(req);

/** The subprotocol prefix that carries a token in `Sec-WebSocket-Protocol`. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** Hex SHA-256 of a token, as `auth.tokens[].sha256` holds it. */
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** Whether `scopes` grant `wanted` (admin implies read). */
export const grants = (scopes: readonly Scope[], wanted: Scope): boolean =>
  scopes.includes(wanted) || scopes.includes('admin');

const HASH_BYTES = 32;

/**
 * Decides whether `presented` may act with `scope`: 401 when no token is configured, none was
 * presented or it matches none; 403 when it matches a token without the scope.
 */
export const authorize = (
  tokens: readonly TokenEntry[],
  presented: string | undefined,
  scope: Scope,
): Authorization => {
  if (tokens.length === 0)
    return {
      ok: false,
      status: 401,
      error: 'no tokens are configured (auth.tokens): every client is refused until one is',
    };
  if (presented === undefined || presented === '')
    return {
      ok: false,
      status: 401,
      error:
        'a bearer token is required: Authorization: Bearer <token>, a Sec-WebSocket-Protocol entry bearer.<token>, or ?access_token=<token>',
    };
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let match: TokenEntry | undefined;
  // Every entry is compared, matched or not, so the time taken does not depend on which one matched.
  for (const entry of tokens) {
    const expected = Buffer.from(entry.sha256, 'hex');
    const equal = expected.length === HASH_BYTES && timingSafeEqual(expected, digest);
    if (equal && match === undefined) match = entry;
  }
  if (!match) return { ok: false, status: 401, error: 'the bearer token is not valid' };
  if (!grants(match.scopes, scope))
    return { ok: false, status: 403, error: `token '${match.name}' does not have the '${scope}' scope` };
  return { ok: true, name: match.name };
};

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), if any. */
export const bearerFromHeader = (header: string | undefined): string | undefined => {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
};

/** The token of the `access_token` query parameter, if any. */
export const tokenFromQuery = (url: URL): string | undefined =>
  url.searchParams.get('access_token') ?? undefined;

/** The token of the first `bearer.<token>` entry of a `Sec-WebSocket-Protocol` header, if any. */
export const tokenFromProtocols = (header: string | readonly string[] | undefined): string | undefined => {
  const values = typeof header === 'string' ? [header] : (header ?? []);
  for (const value of values) {
    for (const entry of value.split(',')) {
      const p = entry.trim();
      if (p.startsWith(BEARER_PROTOCOL_PREFIX) && p.length > BEARER_PROTOCOL_PREFIX.length)
        return p.slice(BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return undefined;
};

/** The token a request presents: the Authorization header, else a subprotocol entry, else the query. */
export const tokenOf = (req: IncomingMessage, url: URL): string | undefined =>
  bearerFromHeader(req.headers.authorization) ??
  tokenFromProtocols(req.headers['sec-websocket-protocol']) ??
  tokenFromQuery(url);
