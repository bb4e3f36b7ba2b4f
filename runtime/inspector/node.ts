/**
 * What every node answers to the inspector (node queries, `runtime.onNodeQuery`): itself, one level of
 * its supervisor tree, the entities it knows, one entity in detail, and admin actions on the entities it
 * owns. The HTTP API (api.ts) gathers these from the members — directly on this node, through the peer
 * endpoint on the others — so a node answers whether or not it serves the inspector's HTTP routes.
 *
 * Every answer is plain data (it crosses nodes as msgpack) and bounded: a tree level and a search return
 * one page, never a whole shard.
 */
import { performance } from 'node:perf_hooks';
import { ArgusError, describeError } from '../errors.ts';
import type { AdminEvent } from '../events.ts';
import type { EntityHistoryEntry, EntityListItem } from '../registry.ts';
import type { Runtime } from '../runtime.ts';

export const Q_NODE = 'inspector.node';
export const Q_TREE = 'inspector.tree';
export const Q_ENTITIES = 'inspector.entities';
export const Q_ENTITY = 'inspector.entity';
export const Q_ACTION = 'inspector.action';

export interface NodeStats {
  readonly id: string;
  readonly status: string;
  readonly uptimeMs: number;
  readonly shards: number;
  readonly entities: number;
  readonly lag: number;
  readonly heapUsedBytes: number;
  /** kind → partition → { lag, entities } of the shards running here. */
  readonly running: readonly {
    kind: string;
    partition: number;
    epoch: number;
    lag: number;
    entities: number;
  }[];
}

export interface TreeChild {
  readonly id: string;
  readonly path: string;
  readonly type: 'worker' | 'supervisor';
  readonly status: string;
  readonly restarts: number;
  readonly children: number;
  readonly entity?: { readonly kind: string; readonly key: string };
}

export interface TreePage {
  readonly path: string;
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly children: readonly TreeChild[];
}

export interface EntityDetail extends EntityListItem {
  readonly node: string;
  readonly epoch: number;
  readonly active: boolean;
  readonly offset: number;
  readonly mailbox: { readonly committed: number; readonly end: number; readonly lag: number } | null;
  readonly summary: unknown;
  readonly events: readonly EntityHistoryEntry[];
}

export type AdminAction = 'restart' | 'stop' | 'message';

export interface ActionRequest {
  readonly action: AdminAction;
  readonly kind: string;
  readonly key: string;
  readonly by: string;
  readonly message?: { readonly type: string };
}

const SUMMARY_BYTES = 4_096;

/** The kind's summary of a state (cut to 4 KB of JSON, like a state without one). */
export const summarize = (rt: Runtime, kind: string, key: string, state: unknown): unknown => {
  const definition = rt.definitionOf(kind);
  let value = state;
  try {
    // The kind's summary; else its answer to the 'summary' query (the convention of host, rule and
    // receiver entities); else the state itself.
    if (definition?.summary) value = definition.summary(state, key);
    else if (definition?.query) value = definition.query(state, 'summary', key);
  } catch (e) {
    return { summaryError: describeError(e).message };
  }
  const safe = jsonSafe(value);
  const text = JSON.stringify(safe) ?? 'null';
  if (text.length <= SUMMARY_BYTES) return safe;
  return { truncated: true, json: text.slice(0, SUMMARY_BYTES) };
};

/** Maps, sets, byte arrays and bigints as JSON can carry them. */
const jsonSafe = (value: unknown, depth = 0): unknown => {
  if (depth > 8) return '…';
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
    return value;
  }
  if (value instanceof Uint8Array) return { bytes: value.length };
  if (value instanceof Map)
    return Object.fromEntries([...value].slice(0, 200).map(([k, v]) => [String(k), jsonSafe(v, depth + 1)]));
  if (value instanceof Set) return [...value].slice(0, 200).map((v) => jsonSafe(v, depth + 1));
  if (Array.isArray(value)) return value.slice(0, 200).map((v) => jsonSafe(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = jsonSafe(v, depth + 1);
  return out;
};

const shardIdPattern = /^(.+)-(\d+)$/;

const treePage = (rt: Runtime, params: { path?: string; offset?: number; limit?: number }): TreePage => {
  const path = params.path || 'node';
  const offset = params.offset ?? 0;
  const limit = params.limit ?? 100;
  const level = rt.treeLevel(path);
  if (!level)
    throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `node '${rt.nodeId}' has no supervisor at '${path}'`, {
      path,
    });
  level.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // Workers directly under a shard supervisor (`node/shards/<kind>-<n>`) are entities.
  const parts = path.split('/');
  const shard = parts.length === 3 && parts[1] === 'shards' ? shardIdPattern.exec(parts[2]!) : null;
  const kind = shard ? shard[1]! : undefined;
  return {
    path,
    total: level.length,
    offset,
    limit,
    children: level.slice(offset, offset + limit).map((c) => ({
      id: c.id,
      path: `${path}/${c.id}`,
      type: c.type,
      status: c.status,
      restarts: c.restarts,
      children: c.children,
      ...(kind !== undefined && c.type === 'worker' ? { entity: { kind, key: c.id } } : {}),
    })),
  };
};

const nodeStats = async (rt: Runtime, started: number): Promise<NodeStats> => {
  const lags = await rt.lag().catch(() => []);
  const lagOf = new Map(lags.map((l) => [`${l.kind}/${l.partition}`, l.lag]));
  const shards = rt.inspect().shards;
  return {
    id: rt.nodeId,
    status: rt.status,
    uptimeMs: Math.round(performance.now() - started),
    shards: shards.length,
    entities: rt.entities.count(),
    lag: lags.reduce((n, l) => n + l.lag, 0),
    heapUsedBytes: process.memoryUsage().heapUsed,
    running: shards.map((s) => ({
      kind: s.kind,
      partition: s.partition,
      epoch: s.epoch,
      lag: lagOf.get(`${s.kind}/${s.partition}`) ?? 0,
      entities: rt.entities.shard(s.kind, s.partition)?.entities.size ?? 0,
    })),
  };
};

const notHere = (rt: Runtime, kind: string, key: string): ArgusError =>
  new ArgusError(
    'ARGUS_ERR_UNREACHABLE',
    `the shard of ${kind}/${key} is not running on node '${rt.nodeId}' (moving or starting)`,
    { kind, key, node: rt.nodeId },
  );

const entityDetail = async (rt: Runtime, kind: string, key: string): Promise<EntityDetail> => {
  const local = rt.localShard(kind, key);
  if (!local) throw notHere(rt, kind, key);
  const { runner, partition, epoch } = local;
  // A live read, or the snapshot when the entity does not answer quickly (it may be crash-looping).
  const { state, offset, active } = await runner.read(key, 500);
  const shard = rt.entities.shard(kind, partition);
  const record = shard?.entities.get(key);
  // This shard's lag only: in Kafka mode each shard's costs a broker round trip.
  const [lag] = await rt.lag({ kind, partition }).catch(() => []);
  const base: EntityListItem =
    shard && record
      ? shard.item(key, record)
      : { kind, key, partition, status: 'passivated', restarts: 0, processed: 0, lastError: null };
  return {
    ...base,
    status: active ? 'active' : base.status === 'active' ? 'passivated' : base.status,
    node: rt.nodeId,
    epoch,
    active,
    offset,
    mailbox: lag ? { committed: lag.committed, end: lag.end, lag: lag.lag } : null,
    summary: summarize(rt, kind, key, state),
    events: shard && record ? shard.historyOf(record) : [],
  };
};

const act = async (rt: Runtime, r: ActionRequest): Promise<Record<string, unknown>> => {
  const now = Date.now();
  const event: AdminEvent = {
    type: '@argus.admin',
    action: r.action,
    kind: r.kind,
    key: r.key,
    node: rt.nodeId,
    by: r.by,
    at: now,
    ...(r.message ? { messageType: r.message.type } : {}),
  };
  if (r.action === 'message') {
    await rt.send(r.kind, r.key, r.message!);
    const here = rt.localShard(r.kind, r.key);
    if (here) rt.entities.admin(r.kind, here.partition, r.key, 'message', r.by, now);
    rt.publish(event);
    return { action: 'message', accepted: true, node: rt.nodeId };
  }
  const local = rt.localShard(r.kind, r.key);
  if (!local) throw notHere(rt, r.kind, r.key);
  if (r.action === 'restart' && !local.runner.isActive(r.key))
    throw new ArgusError(
      'ARGUS_ERR_NOT_ACTIVE',
      `entity ${r.kind}/${r.key} is not active: nothing to restart`,
      {
        kind: r.kind,
        key: r.key,
      },
    );
  if (r.action === 'stop' && !local.runner.isActive(r.key))
    throw new ArgusError('ARGUS_ERR_NOT_ACTIVE', `entity ${r.kind}/${r.key} is not active: nothing to stop`, {
      kind: r.kind,
      key: r.key,
    });
  const record = rt.entities.admin(r.kind, local.partition, r.key, r.action, r.by, now);
  if (r.action === 'restart') {
    rt.entities.shard(r.kind, local.partition)?.adminRestarts.add(r.key);
    rt.publish(event);
    try {
      await local.runner.restartEntity(r.key, r.by);
    } finally {
      rt.entities.shard(r.kind, local.partition)?.adminRestarts.delete(r.key);
    }
    return { action: 'restart', node: rt.nodeId, restarts: record.restarts };
  }
  rt.publish(event);
  await local.runner.stopEntity(r.key);
  return { action: 'stop', node: rt.nodeId, status: 'passivated' };
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Registers the inspector's node queries on `rt`. */
export const installNodeQueries = (rt: Runtime): void => {
  const started = performance.now();
  rt.onNodeQuery(Q_NODE, () => nodeStats(rt, started));
  rt.onNodeQuery(Q_TREE, (p) => treePage(rt, isObject(p) ? p : {}));
  rt.onNodeQuery(Q_ENTITIES, (p) => {
    const params = isObject(p) ? p : {};
    const { total, items } = rt.entities.search({
      ...(typeof params.q === 'string' && params.q !== '' ? { q: params.q } : {}),
      ...(typeof params.kind === 'string' ? { kind: params.kind } : {}),
      ...(typeof params.status === 'string' ? { status: params.status } : {}),
      first: typeof params.first === 'number' ? params.first : 100,
    });
    return { total, items };
  });
  rt.onNodeQuery(Q_ENTITY, (p) => {
    if (!isObject(p) || typeof p.kind !== 'string' || typeof p.key !== 'string')
      throw new Error("an entity query needs 'kind' and 'key'");
    return entityDetail(rt, p.kind, p.key);
  });
  rt.onNodeQuery(Q_ACTION, (p) => {
    if (!isObject(p) || typeof p.kind !== 'string' || typeof p.key !== 'string' || typeof p.by !== 'string')
      throw new Error("an action needs 'action', 'kind', 'key' and 'by'");
    return act(rt, p as unknown as ActionRequest);
  });
};
