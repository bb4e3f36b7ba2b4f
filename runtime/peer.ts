/**
 * The peer endpoint: how one node asks another for an entity's answer (`runtime.ask`). Plain HTTP/1.1
 * with msgpack bodies, so states keep their types (byte arrays, maps) across nodes:
 *   POST /peer/v1/ask       { kind, key, query } → { ok: true, answer } | { ok: false, code, error }
 *   POST /peer/v1/inspect   { name, params }     → the same: a node query (`runtime.onNodeQuery`), asked
 *                                                   of every member when an answer is gathered cluster-wide
 * The address each node serves it on is in its etcd membership record. Bad requests get a 400 with a
 * message; nothing a peer sends can take the node down.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pack, unpack } from 'msgpackr';
import { readBody } from './body.ts';
import { ArgusError, describeError, type ErrorCode, ErrorCodes, isArgusError } from './errors.ts';

export interface AskRequest {
  readonly kind: string;
  readonly key: string;
  readonly query: unknown;
}

/** A node query: what one node answers about itself (the inspector gathers them from every member). */
export interface NodeQuery {
  readonly name: string;
  readonly params: unknown;
}

type AskReply = { ok: true; answer: unknown } | { ok: false; code: ErrorCode | undefined; error: string };

const MAX_BODY = 8 << 20;

export interface PeerServer {
  /** host:port it listens on. */
  readonly address: string;
  close(): Promise<void>;
}

const parseAsk = (body: Buffer): AskRequest => {
  let decoded: unknown;
  try {
    decoded = unpack(body);
  } catch {
    throw new Error('body is not msgpack');
  }
  const r = decoded as Partial<AskRequest> | null;
  if (typeof r !== 'object' || r === null) throw new Error('body must be a map { kind, key, query }');
  if (typeof r.kind !== 'string' || r.kind === '') throw new Error("'kind' must be a non-empty string");
  if (typeof r.key !== 'string' || r.key === '') throw new Error("'key' must be a non-empty string");
  return { kind: r.kind, key: r.key, query: r.query };
};

const parseQuery = (body: Buffer): NodeQuery => {
  let decoded: unknown;
  try {
    decoded = unpack(body);
  } catch {
    throw new Error('body is not msgpack');
  }
  const q = decoded as Partial<NodeQuery> | null;
  if (typeof q !== 'object' || q === null) throw new Error('body must be a map { name, params }');
  if (typeof q.name !== 'string' || q.name === '') throw new Error("'name' must be a non-empty string");
  return { name: q.name, params: q.params ?? null };
};

const ROUTES = ['/peer/v1/ask', '/peer/v1/inspect'];

export const startPeerServer = (
  host: string,
  port: number,
  answer: (ask: AskRequest) => Promise<unknown>,
  query: (q: NodeQuery) => Promise<unknown> = (q) =>
    Promise.reject(new Error(`no node query '${q.name}' is served here`)),
): Promise<PeerServer> =>
  new Promise((resolve, reject) => {
    const server: Server = createServer((req, res) => {
      const reply = (status: number, body: AskReply) => {
        const bytes = pack(body);
        res.writeHead(status, { 'content-type': 'application/msgpack', 'content-length': bytes.length });
        res.end(bytes);
      };
      if (req.method !== 'POST' || !ROUTES.includes(req.url ?? '')) {
        reply(404, { ok: false, code: undefined, error: `no route ${req.method} ${req.url}` });
        return;
      }
      readBody(req, MAX_BODY)
        .then(async (body) => {
          let run: () => Promise<unknown>;
          try {
            if (req.url === '/peer/v1/ask') {
              const ask = parseAsk(body);
              run = () => answer(ask);
            } else {
              const q = parseQuery(body);
              run = () => query(q);
            }
          } catch (e) {
            return reply(400, { ok: false, code: undefined, error: describeError(e).message });
          }
          try {
            reply(200, { ok: true, answer: await run() });
          } catch (e) {
            reply(isArgusError(e) ? 409 : 500, {
              ok: false,
              code: isArgusError(e) ? e.code : undefined,
              error: describeError(e).message,
            });
          }
        })
        .catch((e) => {
          if (!res.headersSent) reply(400, { ok: false, code: undefined, error: describeError(e).message });
        });
    });
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve({
        address: `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });

/** Asks the node at `address`; ARGUS_ERR_UNREACHABLE (naming the node) when it does not answer in time. */
export const askPeer = (
  node: string,
  address: string,
  ask: AskRequest,
  timeoutMs: number,
): Promise<unknown> =>
  postPeer(node, address, '/peer/v1/ask', ask, timeoutMs, `owns ${ask.kind}/${ask.key} but`, {
    kind: ask.kind,
    key: ask.key,
  });

/** Asks the node at `address` a node query; ARGUS_ERR_UNREACHABLE when it does not answer in time. */
export const queryPeer = (node: string, address: string, q: NodeQuery, timeoutMs: number): Promise<unknown> =>
  postPeer(node, address, '/peer/v1/inspect', q, timeoutMs, `was asked '${q.name}' and`, { query: q.name });

const postPeer = (
  node: string,
  address: string,
  path: string,
  message: unknown,
  timeoutMs: number,
  what: string,
  details: Record<string, unknown>,
): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const unreachable = (why: string) =>
      reject(
        new ArgusError('ARGUS_ERR_UNREACHABLE', `node '${node}' (${address}) ${what} ${why}`, {
          node,
          address,
          ...details,
        }),
      );
    const sep = address.lastIndexOf(':');
    const body = pack(message);
    const req = request(
      {
        host: address.slice(0, sep).replace(/^\[|\]$/g, ''),
        port: Number(address.slice(sep + 1)),
        method: 'POST',
        path,
        headers: { 'content-type': 'application/msgpack', 'content-length': body.length },
        timeout: timeoutMs,
      },
      (res) => {
        readBody(res, MAX_BODY)
          .then((bytes) => {
            const reply = unpack(bytes) as AskReply;
            if (reply.ok) resolve(reply.answer);
            else if (reply.code && reply.code in ErrorCodes)
              reject(new ArgusError(reply.code, reply.error.replace(/^ARGUS_ERR_[A-Z_]+: /, ''), { node }));
            else reject(new Error(`node '${node}' answered: ${reply.error}`));
          })
          .catch((e) => unreachable(`its answer could not be read (${describeError(e).message})`));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      unreachable(`did not answer within ${timeoutMs} ms`);
    }, timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('timeout', () => {
      req.destroy();
      unreachable(`did not answer within ${timeoutMs} ms`);
    });
    req.on('error', (e) => unreachable(`could not be reached (${describeError(e).message})`));
    req.end(body);
  });
