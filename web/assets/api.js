/**
 * The inspector's JSON API (docs/API.md, "Inspector"), with the bearer token of the session. A 401
 * anywhere signs the user out (back to the login view with the server's message).
 */

const TOKEN_KEY = 'argus.token';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let unauthorized = () => {};

/** Called with the server's message when any request answers 401. */
export const onUnauthorized = (handler) => {
  unauthorized = handler;
};

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

const request = async (method, path, body, signal) => {
  const headers = { accept: 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text === '' ? null : JSON.parse(text);
  } catch {
    data = text;
  }
  const message =
    data && typeof data === 'object' && typeof data.error === 'string'
      ? data.error
      : `${res.status} ${res.statusText}`;
  if (res.status === 401) {
    unauthorized(message);
    throw new ApiError(401, message, data);
  }
  if (!res.ok) throw new ApiError(res.status, message, data);
  return data;
};

export const apiGet = (path, signal) => request('GET', path, undefined, signal);
export const apiPost = (path, body, signal) => request('POST', path, body, signal);
export const apiDelete = (path, signal) => request('DELETE', path, undefined, signal);

/** `/api/v1/entities?q=c-1&limit=100`: a query string from the fields given (empty ones left out). */
export const query = (path, params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
};

export const seg = (s) => encodeURIComponent(s);
