/**
 * The inspector's JSON API on the node's HTTP endpoint (docs/API.md, "Inspector"):
 *
 *   GET  /api/v1/cluster                               members with their health, placement with lag
 *   GET  /api/v1/placement                             shard → node, epoch (what this node's coordinator knows)
 *   GET  /api/v1/nodes/:node/tree?path=&offset=&limit= one level of a node's supervisor tree
 *   GET  /api/v1/entities?q=&kind=&status=&offset=&limit= entities known cluster-wide, searched, paged
 *   GET  /api/v1/entities/:kind/:key                   one entity, from its owner
 *   POST /api/v1/entities/:kind/:key/restart|stop      admin actions, carried out by the owner
 *   POST /api/v1/entities/:kind/:key/messages          appends one message to the entity's mailbox
 *
 * Cluster-wide answers are gathered from every member (node.ts's queries, `runtime.gather`) and say
 * `partial: true` with the members that did not answer in time. The auth gate in http.ts has already
 * checked the token's scope before a request gets here; `principalOf` names who asked.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { principalOf } from '../auth.ts';
import { ArgusError, type ErrorCode, isArgusError } from '../errors.ts';
import type { AdminEvent } from '../events.ts';
import type { HttpRoute } from '../http.ts';
import { failure, pathParts, problem, Refusal, type Reply, readText, reply, writeJson } from '../json-api.ts';
import type { EntityListItem } from '../registry.ts';
import type { Runtime } from '../runtime.ts';
import {
  type ActionRequest,
  type EntityDetail,
  type NodeStats,
  Q_ACTION,
  Q_ENTITIES,
  Q_ENTITY,
  Q_NODE,
  Q_TREE,
  type TreePage,
} from './node.ts';

const PREFIX = '/api/v1';
export const MAX_LIMIT = 1_000;

const NOT_RUNNING = 'the runtime is not running';

/** `?name=` as a non-negative integer within bounds, or the default. */
const intParam = (url: URL, name: string, fallback: number, max: number): number => {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new Refusal(400, `${name}: must be a non-negative integer, got '${raw}'`);
  const n = Number(raw);
  if (n > max) throw new Refusal(400, `${name}: must be at most ${max}, got ${n}`);
  return n;
};

const strParam = (url: URL, name: string): string | undefined => {
  const v = url.searchParams.get(name);
  return v === null || v === '' ? undefined : v;
};

const STATUSES = ['active', 'restarting', 'passivated', 'stopped'];

const codeStatus: Partial<Record<ErrorCode, number>> = {
  ARGUS_ERR_UNKNOWN_KIND: 404,
  ARGUS_ERR_NOT_ACTIVE: 409,
  ARGUS_ERR_TIMEOUT: 504,
};

const failed = (e: unknown): Reply => {
  for (const [code, status] of Object.entries(codeStatus))
    if (isArgusError(e, code as ErrorCode)) return problem(status!, (e as Error).message);
  return failure(e, []);
};

const methodNotAllowed = (method: string, allow: string): Reply => ({
  status: 405,
  body: { error: `method ${method} is not allowed here (allowed: ${allow})` },
  headers: { allow },
});

const gathered = (missing: readonly { node: string; error: string }[]) => ({
  partial: missing.length > 0,
  missing,
});

const cluster = async (rt: Runtime): Promise<Reply> => {
  const view = rt.cluster();
  const { answers, missing } = await rt.gather(Q_NODE);
  const stats = new Map(answers.map((a) => [a.node, a.value as NodeStats]));
  const shardStats = new Map<string, { lag: number; entities: number }>();
  for (const s of stats.values())
    for (const r of s.running)
      shardStats.set(`${r.kind}/${r.partition}`, { lag: r.lag, entities: r.entities });
  const members = view.members.map((m) => {
    const s = stats.get(m.id);
    return {
      id: m.id,
      address: m.address ?? null,
      version: m.version,
      joinedAt: m.joinedAt,
      weight: m.weight,
      health: s ? s.status : 'unreachable',
      uptimeMs: s?.uptimeMs ?? null,
      shards: s?.shards ?? null,
      entities: s?.entities ?? null,
      lag: s?.lag ?? null,
      heapUsedBytes: s?.heapUsedBytes ?? null,
    };
  });
  const placement: Record<string, unknown[]> = {};
  for (const [kind, owners] of Object.entries(view.placement))
    placement[kind] = owners.map((o, shard) => {
      const s = shardStats.get(`${kind}/${shard}`);
      return {
        shard,
        node: o.node ?? null,
        epoch: o.epoch,
        lag: s?.lag ?? null,
        entities: s?.entities ?? null,
      };
    });
  return reply(200, {
    ...gathered(missing),
    self: rt.nodeId,
    leader: view.leader ?? null,
    coordinator: view.coordinator,
    epoch: view.epoch,
    members,
    placement,
  });
};

const placementOf = (rt: Runtime): Reply => {
  const view = rt.cluster();
  const placement: Record<string, unknown[]> = {};
  for (const [kind, owners] of Object.entries(view.placement))
    placement[kind] = owners.map((o, shard) => ({ shard, node: o.node ?? null, epoch: o.epoch }));
  return reply(200, { epoch: view.epoch, placement });
};

const tree = async (rt: Runtime, node: string, url: URL): Promise<Reply> => {
  const target = node === 'self' ? rt.nodeId : node;
  const params = {
    path: strParam(url, 'path') ?? 'node',
    offset: intParam(url, 'offset', 0, Number.MAX_SAFE_INTEGER),
    limit: intParam(url, 'limit', 100, MAX_LIMIT),
  };
  const page = (await rt.queryNode(target, Q_TREE, params)) as TreePage;
  return reply(200, { node: target, ...page });
};

const byKindThenKey = (a: EntityListItem, b: EntityListItem): number =>
  a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;

const entities = async (rt: Runtime, url: URL): Promise<Reply> => {
  const offset = intParam(url, 'offset', 0, Number.MAX_SAFE_INTEGER);
  const limit = intParam(url, 'limit', 100, MAX_LIMIT);
  const status = strParam(url, 'status');
  if (status !== undefined && !STATUSES.includes(status))
    throw new Refusal(400, `status: must be one of ${STATUSES.join(', ')}, got '${status}'`);
  const params = {
    q: strParam(url, 'q'),
    kind: strParam(url, 'kind'),
    status,
    first: offset + limit,
  };
  const { answers, missing } = await rt.gather(Q_ENTITIES, params);
  let total = 0;
  const all: (EntityListItem & { node: string })[] = [];
  for (const a of answers) {
    const v = a.value as { total: number; items: EntityListItem[] };
    total += v.total;
    for (const item of v.items) all.push({ ...item, node: a.node });
  }
  all.sort(byKindThenKey);
  return reply(200, {
    ...gathered(missing),
    total,
    offset,
    limit,
    items: all
      .slice(offset, offset + limit)
      .map(({ kind, key, node, ...rest }) => ({ kind, key, node, ...rest })),
  });
};

const entity = async (rt: Runtime, kind: string, key: string): Promise<Reply> => {
  const owner = rt.ownerOf(kind, key).id;
  const detail = (await rt.queryNode(owner, Q_ENTITY, { kind, key })) as EntityDetail;
  return reply(200, detail);
};

const parseMessage = (text: string): { type: string } => {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch (e) {
    throw new Refusal(400, `body is not JSON: ${(e as Error).message}`);
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    throw new Refusal(400, "body must be one message: a JSON object with a string 'type'");
  const type = (message as { type?: unknown }).type;
  if (typeof type !== 'string' || type === '')
    throw new Refusal(400, "body must be one message: a JSON object with a string 'type'");
  return message as { type: string };
};

const action = async (
  rt: Runtime,
  req: IncomingMessage,
  kind: string,
  key: string,
  what: 'restart' | 'stop' | 'messages',
): Promise<Reply> => {
  const by = principalOf(req) ?? 'unknown';
  if (what === 'messages') {
    const message = parseMessage(await readText(req));
    // Appending goes through this node: any node can write a mailbox.
    const answer = await rt.queryNode(rt.nodeId, Q_ACTION, {
      action: 'message',
      kind,
      key,
      by,
      message,
    } satisfies ActionRequest);
    return reply(202, answer);
  }
  if (rt.definitionOf(kind) === undefined)
    throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered`, { kind });
  const owner = rt.ownerOf(kind, key).id;
  const answer = await rt.queryNode(
    owner,
    Q_ACTION,
    { action: what, kind, key, by } satisfies ActionRequest,
    // A restart waits for the supervisor's backoff: give it longer than a query.
    { timeoutMs: Math.max(rt.config.inspector.gatherTimeoutMs, rt.config.delivery.timeoutMs + 1_000) },
  );
  // The owner published the event on its bus; the feed of the node the person is using shows it too.
  if (owner !== rt.nodeId) {
    const event: AdminEvent = {
      type: '@argus.admin',
      action: what,
      kind,
      key,
      node: owner,
      by,
      at: Date.now(),
    };
    rt.publish(event);
  }
  return reply(200, answer);
};

const route = async (
  rt: Runtime,
  req: IncomingMessage,
  url: URL,
  parts: string[],
): Promise<Reply | undefined> => {
  const method = req.method ?? 'GET';
  const get = method === 'GET' || method === 'HEAD';
  const [what, a, b, c] = parts;
  if (what === 'cluster' && parts.length === 1) return get ? cluster(rt) : methodNotAllowed(method, 'GET');
  if (what === 'placement' && parts.length === 1)
    return get ? placementOf(rt) : methodNotAllowed(method, 'GET');
  if (what === 'nodes' && a && b === 'tree' && parts.length === 3)
    return get ? tree(rt, a, url) : methodNotAllowed(method, 'GET');
  if (what !== 'entities') return undefined;
  if (parts.length === 1) return get ? entities(rt, url) : methodNotAllowed(method, 'GET');
  if (parts.length === 3) return get ? entity(rt, a!, b!) : methodNotAllowed(method, 'GET');
  if (parts.length === 4 && (c === 'restart' || c === 'stop' || c === 'messages'))
    return method === 'POST' ? action(rt, req, a!, b!, c) : methodNotAllowed(method, 'POST');
  return undefined;
};

/** The inspector's routes; `runtime` answers undefined until the node runs. */
export const inspectorApi =
  (runtime: () => Runtime | undefined): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const parts = pathParts(url.pathname, PREFIX);
    if (parts === undefined) return false;
    if (parts === 'bad') {
      writeJson(res, problem(400, `the path ${url.pathname} is not valid percent-encoding`));
      return true;
    }
    const known = ['cluster', 'placement', 'nodes', 'entities'];
    if (!known.includes(parts[0] ?? '')) return false;
    const rt = runtime();
    let answer: Reply | undefined;
    try {
      answer = rt?.status === 'running' ? await route(rt, req, url, parts) : problem(503, NOT_RUNNING);
    } catch (e) {
      answer = failed(e);
    }
    if (!answer) return false;
    writeJson(res, answer);
    return true;
  };
