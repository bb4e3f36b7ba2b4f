/**
 * The node's HTTP surface:
 *   GET  /health                      200 when running, 503 otherwise
 *   GET  /inspect                     the supervisor tree, kinds and shards, as JSON
 *   GET  /entities/:kind/:key         an entity's state and offset
 *   POST /entities/:kind/:key         body: one JSON message ({"type": …}); 202 once durable
 *   GET  /deadletters[?kind=]         dead letters, bytes as base64
 *   GET  /cluster                     members, leader, placement with epochs, the shards running here
 *   GET  /lag                         committed offset, log end and lag of each shard running here
 * (`HEAD` is answered as `GET`.) Bad input gets a 4xx with a JSON `{ error }` naming what is wrong; it
 * never takes the node down.
 *
 * One gate before every route (`handle`), so no route can forget it and routes added later are covered:
 * `accessFor` (auth.ts) says what the request needs — open (health, the web page's static files, push
 * ingest), else `read` for `GET`/`HEAD` and `admin` for any other method — and the request's bearer
 * token is checked against `runtime.config.auth.tokens`: 401 (with `WWW-Authenticate`) without a valid
 * one, 403 without the scope. A request let in carries its token's name (`principalOf`), and its
 * `access_token` query parameter is removed from the URL the routes see, so no route can echo it.
 * WebSocket upgrades are not gated here: each upgrade route checks its own (the feed needs `read`).
 * Extensions add routes (`HttpRoute`) and WebSocket upgrades (`UpgradeRoute`: the live feed); an upgrade
 * no route takes is answered 404 and its socket destroyed.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { accessFor, authorize, setPrincipal, tokenOf } from './auth.ts';
import { readBody } from './body.ts';
import { describeError, isArgusError } from './errors.ts';
import type { Runtime } from './runtime.ts';

const MAX_BODY = 1 << 20;

const send = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void => {
  const text = JSON.stringify(body, (_k, v) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
  );
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
};

/** The challenge of a 401 (RFC 6750). */
export const BEARER_CHALLENGE = 'Bearer realm="argus"';

/**
 * The gate: true when the request may go on to the routes (open, or its token has the scope needed,
 * whose name is then recorded for `principalOf`); otherwise it answers 401/403 and returns false.
 */
const admit = (runtime: Runtime, req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
  const access = accessFor(req.method ?? 'GET', url.pathname);
  if (access === 'open') return true;
  const auth = authorize(runtime.config.auth.tokens, tokenOf(req, url), access);
  url.searchParams.delete('access_token');
  if (auth.ok) {
    setPrincipal(req, auth.name);
    return true;
  }
  send(
    res,
    auth.status,
    { error: auth.error },
    auth.status === 401
      ? { 'www-authenticate': BEARER_CHALLENGE }
      : { 'www-authenticate': `${BEARER_CHALLENGE}, error="insufficient_scope", scope="${access}"` },
  );
  return false;
};

const statusOf = (e: unknown): number => {
  if (isArgusError(e, 'ARGUS_ERR_UNKNOWN_KIND')) return 404;
  if (isArgusError(e, 'ARGUS_ERR_NOT_STARTED')) return 503;
  if (isArgusError(e, 'ARGUS_ERR_INVALID_KEY') || isArgusError(e, 'ARGUS_ERR_INVALID_MESSAGE')) return 400;
  return 500;
};

/**
 * A route added by a subsystem (push ingest, the inspector): resolves true when it answered the
 * request, false to let the next route try.
 */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/**
 * An upgrade taken by a subsystem (the live feed): returns true when it took the socket (it answers
 * the handshake, or refuses it and destroys the socket), false to let the next route try. It owns the
 * socket from then on, and closes it at its stop.
 */
export type UpgradeRoute = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => boolean;

/** Answers an upgrade request with a plain HTTP status and a JSON `{ error }`, then destroys the socket. */
export const refuseUpgrade = (
  socket: Duplex,
  status: number,
  error: string,
  headers: Readonly<Record<string, string>> = {},
): void => {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  socket.once('finish', () => socket.destroy());
};

const dispatchUpgrade = (
  upgrades: readonly UpgradeRoute[],
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  for (const route of upgrades) {
    try {
      if (route(req, socket, head, url)) return;
    } catch (e) {
      refuseUpgrade(socket, 500, describeError(e).message);
      return;
    }
  }
  refuseUpgrade(socket, 404, `no upgrade route ${url.pathname}`);
};

export const handle = async (
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
  routes: readonly HttpRoute[] = [],
): Promise<void> => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!admit(runtime, req, res, url)) return;
  for (const route of routes) {
    try {
      if (await route(req, res, url)) return;
    } catch (e) {
      if (!res.headersSent) send(res, statusOf(e), { error: describeError(e).message });
      return;
    }
  }
  const parts = url.pathname
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  const reads = req.method === 'GET' || req.method === 'HEAD';
  try {
    if (reads && url.pathname === '/health') {
      const ok = runtime.status === 'running';
      return send(res, ok ? 200 : 503, {
        status: runtime.status,
        nodeId: runtime.nodeId,
        mode: runtime.config.mode,
      });
    }
    if (reads && url.pathname === '/inspect') return send(res, 200, runtime.inspect());
    if (reads && url.pathname === '/cluster') return send(res, 200, runtime.cluster());
    if (reads && url.pathname === '/lag') return send(res, 200, await runtime.lag());
    if (reads && url.pathname === '/deadletters') {
      return send(res, 200, await runtime.deadLetters(url.searchParams.get('kind') ?? undefined));
    }
    if (parts[0] === 'entities' && parts.length === 3) {
      const [, kind, key] = parts as [string, string, string];
      if (reads) return send(res, 200, await runtime.entityState(kind, key));
      if (req.method === 'POST') {
        let message: unknown;
        try {
          message = JSON.parse((await readBody(req, MAX_BODY)).toString('utf8'));
        } catch (e) {
          return send(res, 400, { error: `body is not JSON: ${describeError(e).message}` });
        }
        if (
          typeof message !== 'object' ||
          message === null ||
          typeof (message as { type?: unknown }).type !== 'string'
        )
          return send(res, 400, { error: "body must be a JSON object with a string 'type'" });
        await runtime.send(kind, key, message as { type: string });
        return send(res, 202, { accepted: true });
      }
    }
    send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  } catch (e) {
    send(res, statusOf(e), { error: describeError(e).message });
  }
};

export interface HttpServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the runtime's endpoint and the extensions' routes and upgrades. `close` stops accepting and
 * waits for requests in flight; upgraded sockets still open then (their route did not close them
 * first) are destroyed, so a WebSocket never keeps the server from closing.
 */
export const startHttp = (
  runtime: Runtime,
  host: string,
  port: number,
  routes: readonly HttpRoute[] = runtime.routes(),
  upgrades: readonly UpgradeRoute[] = runtime.upgrades(),
): Promise<HttpServer> =>
  new Promise((resolve, reject) => {
    const server: Server = createServer((req, res) => {
      handle(runtime, req, res, routes).catch((e) => {
        if (!res.headersSent) send(res, 500, { error: describeError(e).message });
      });
    });
    const upgraded = new Set<Duplex>();
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      // A socket error after the handshake is the route's business; before it, nobody listens.
      socket.on('error', () => socket.destroy());
      dispatchUpgrade(upgrades, req, socket, head);
    });
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve({
        url: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeIdleConnections();
            for (const socket of upgraded) socket.destroy();
          }),
      });
    });
  });
