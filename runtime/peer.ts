/**
 * The peer endpoint: how one node asks another for an entity's answer (`runtime.ask`). Plain HTTP/1.1
 * with msgpack bodies, so states keep their types (byte arrays, maps) across nodes:
 *   POST /peer/v1/ask   { kind, key, query } → { ok: true, answer } | { ok: false, code, error }
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

export const startPeerServer = (
  host: string,
  port: number,
  answer: (ask: AskRequest) => Promise<unknown>,
): Promise<PeerServer> =>
  new Promise((resolve, reject) => {
    const server: Server = createServer((req, res) => {
      const reply = (status: number, body: AskReply) => {
        const bytes = pack(body);
        res.writeHead(status, { 'content-type': 'application/msgpack', 'content-length': bytes.length });
        res.end(bytes);
      };
      if (req.method !== 'POST' || req.url !== '/peer/v1/ask') {
        reply(404, { ok: false, code: undefined, error: `no route ${req.method} ${req.url}` });
        return;
      }
      readBody(req, MAX_BODY)
        .then(async (body) => {
          let ask: AskRequest;
          try {
            ask = parseAsk(body);
          } catch (e) {
            return reply(400, { ok: false, code: undefined, error: describeError(e).message });
          }
          try {
            reply(200, { ok: true, answer: await answer(ask) });
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
  new Promise((resolve, reject) => {
    const unreachable = (why: string) =>
      reject(
        new ArgusError(
          'ARGUS_ERR_UNREACHABLE',
          `node '${node}' (${address}) owns ${ask.kind}/${ask.key} but ${why}`,
          {
            node,
            address,
            kind: ask.kind,
            key: ask.key,
          },
        ),
      );
    const sep = address.lastIndexOf(':');
    const body = pack(ask);
    const req = request(
      {
        host: address.slice(0, sep).replace(/^\[|\]$/g, ''),
        port: Number(address.slice(sep + 1)),
        method: 'POST',
        path: '/peer/v1/ask',
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
