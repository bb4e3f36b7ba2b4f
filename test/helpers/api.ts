/**
 * Tokens and an HTTP client for tests of the node's API: a configuration section holding the hashes of
 * a read and an admin token, and `api()` that sends one request with a token (or none) and answers the
 * status and the parsed JSON body.
 */
import { hashToken } from '../../runtime/auth.ts';

export const READ_TOKEN = 'test-read-token';
export const ADMIN_TOKEN = 'test-admin-token';

/** `auth` section of a runtime config: token 'reader' (read) and 'ops' (admin). */
export const testAuth = () => ({
  tokens: [
    { name: 'reader', sha256: hashToken(READ_TOKEN), scopes: ['read' as const] },
    { name: 'ops', sha256: hashToken(ADMIN_TOKEN), scopes: ['admin' as const] },
  ],
});

export interface ApiAnswer<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export interface ApiOptions {
  readonly method?: string;
  /** A string is sent as is; anything else as JSON. */
  readonly body?: unknown;
  /** Default the admin token; `null` sends none. */
  readonly token?: string | null;
  readonly timeoutMs?: number;
}

/** One request to `base + path`; the body parsed as JSON when it is JSON, else the text. */
export const api = async <T = unknown>(
  base: string,
  path: string,
  options: ApiOptions = {},
): Promise<ApiAnswer<T>> => {
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, {
    method: options.method ?? 'GET',
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json') && text !== '') parsed = JSON.parse(text);
  return { status: res.status, body: parsed as T, headers: res.headers };
};
