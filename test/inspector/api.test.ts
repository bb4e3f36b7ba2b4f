/**
 * The inspector's JSON API on one embedded node (real journal, real HTTP server): members, placement,
 * the supervisor tree one level at a time, the entity search, one entity in detail, and the admin
 * actions with the events they publish. Exact values throughout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CounterMessage, counter } from '../../actors/counter/counter.ts';
import { defineEntity } from '../../runtime/entity.ts';
import type { AdminEvent, ArgusEvent } from '../../runtime/events.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { inspector } from '../../runtime/inspector/index.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { ADMIN_TOKEN, api, READ_TOKEN, testAuth } from '../helpers/api.ts';
import { waitFor } from '../helpers/wait.ts';

const SHARDS = 4;
const ENTITIES = 300;

/** A kind that crashes on 'boom' (after 'n' messages it counts) and summarizes itself. */
const fragile = defineEntity<{ n: number }, { type: 'n' } | { type: 'boom' }>({
  kind: 'fragile',
  initialState: () => ({ n: 0 }),
  receive: (s, m) => {
    if (m.type === 'boom') throw new Error('boom on purpose');
    return { n: s.n + 1 };
  },
  summary: (s, key) => ({ key, n: s.n }),
});

let dir: string;
let rt: Runtime;
let http: HttpServer;
const events: ArgusEvent[] = [];

const get = <T = Record<string, unknown>>(path: string, token: string | null = READ_TOKEN) =>
  api<T>(http.url, path, { token });
const post = <T = Record<string, unknown>>(path: string, body?: unknown) =>
  api<T>(http.url, path, { method: 'POST', ...(body === undefined ? {} : { body }) });

const inc = (k: string, by: number) => {
  const m: CounterMessage = { type: 'inc', by };
  return rt.send('counter', k, m);
};

const key = (i: number) => `c-${String(i).padStart(4, '0')}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'argus-inspector-'));
  rt = createRuntime({
    nodeId: 'solo',
    mode: 'embedded',
    dataDir: dir,
    shards: SHARDS,
    auth: testAuth(),
    // Fast restarts so the admin restart returns quickly.
    supervision: { shard: { backoff: { minMs: 10, maxMs: 10 } } },
  });
  rt.register(counter);
  rt.register(fragile);
  const ext = inspector({ webDir: false });
  rt.use(ext);
  rt.subscribe((e) => {
    if (e.type !== '@argus.batch') events.push(e);
  });
  await rt.start();
  http = await startHttp(rt, '127.0.0.1', 0);
  await Promise.all(Array.from({ length: ENTITIES }, (_, i) => inc(key(i), 1)));
  for (let i = 0; i < 3; i++) await inc(key(7), 10);
  await rt.send('fragile', 'f-1', { type: 'n' });
  await waitFor(
    'every message applied',
    async () =>
      (await rt.entityState('counter', key(7))).offset >= 0 && rt.entities.count('counter') === ENTITIES,
    10_000,
  );
  await waitFor('f-1 active', () => rt.entities.count('fragile') === 1, 10_000);
  await waitFor('every checkpoint landed', async () => (await rt.lag()).every((l) => l.lag === 0), 10_000);
});

afterAll(async () => {
  await http?.close();
  await rt?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('inspector API: members and placement', () => {
  it('GET /api/v1/cluster answers the one member, its shards and the placement', async () => {
    const { status, body } = await get<Record<string, unknown>>('/api/v1/cluster');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      partial: false,
      missing: [],
      self: 'solo',
      coordinator: 'local',
    });
    const members = body.members as Record<string, unknown>[];
    expect(members).toHaveLength(1);
    expect(members[0]).toMatchObject({
      id: 'solo',
      health: 'running',
      shards: SHARDS * 2,
      entities: ENTITIES + 1,
      lag: 0,
    });
    const placement = body.placement as Record<string, { shard: number; node: string; lag: number }[]>;
    expect(Object.keys(placement).sort()).toEqual(['counter', 'fragile']);
    expect(placement.counter!.map((p) => [p.shard, p.node, p.lag])).toEqual([
      [0, 'solo', 0],
      [1, 'solo', 0],
      [2, 'solo', 0],
      [3, 'solo', 0],
    ]);
  });

  it('GET /api/v1/placement answers shard → node for every kind', async () => {
    const { status, body } = await get<{ placement: Record<string, { shard: number; node: string }[]> }>(
      '/api/v1/placement',
    );
    expect(status).toBe(200);
    expect(body.placement.fragile!.map((p) => p.node)).toEqual(['solo', 'solo', 'solo', 'solo']);
  });
});

describe('inspector API: the supervisor tree', () => {
  it('answers one level at a time, with child counts and the entities of a shard paged', async () => {
    const root = await get<{ children: { id: string; children: number }[]; total: number }>(
      '/api/v1/nodes/self/tree',
    );
    expect(root.status).toBe(200);
    expect(root.body.children.map((c) => [c.id, c.children])).toEqual([['shards', SHARDS * 2]]);
    const shards = await get<{ children: { id: string; type: string }[] }>(
      '/api/v1/nodes/self/tree?path=node/shards',
    );
    expect(shards.body.children.map((c) => c.id)).toEqual([
      'counter-0',
      'counter-1',
      'counter-2',
      'counter-3',
      'fragile-0',
      'fragile-1',
      'fragile-2',
      'fragile-3',
    ]);
    const shardOf7 = rt.shardOf('counter', key(7));
    const expected = Array.from({ length: ENTITIES }, (_, i) => key(i))
      .filter((k) => rt.shardOf('counter', k) === shardOf7)
      .sort();
    const page = await get<{
      node: string;
      total: number;
      children: { id: string; path: string; type: string; entity: { kind: string; key: string } }[];
    }>(`/api/v1/nodes/solo/tree?path=node/shards/counter-${shardOf7}&offset=2&limit=5`);
    expect(page.status).toBe(200);
    expect(page.body.node).toBe('solo');
    expect(page.body.total).toBe(expected.length);
    expect(page.body.children.map((c) => c.id)).toEqual(expected.slice(2, 7));
    expect(page.body.children[0]).toEqual({
      id: expected[2],
      path: `node/shards/counter-${shardOf7}/${expected[2]}`,
      type: 'worker',
      status: 'running',
      restarts: 0,
      children: 0,
      entity: { kind: 'counter', key: expected[2] },
    });
  });

  it('answers 404 for a path that is not there, and 400 for a bad limit', async () => {
    const missing = await get('/api/v1/nodes/self/tree?path=node/nothing');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      error: "ARGUS_ERR_UNKNOWN_KIND: node 'solo' has no supervisor at 'node/nothing'",
    });
    const bad = await get('/api/v1/nodes/self/tree?limit=5000');
    expect(bad).toMatchObject({ status: 400, body: { error: 'limit: must be at most 1000, got 5000' } });
    const unknownNode = await get('/api/v1/nodes/n9/tree');
    expect(unknownNode).toMatchObject({
      status: 503,
      body: { error: "ARGUS_ERR_UNREACHABLE: node 'n9' is not a member of the cluster" },
    });
  });
});

describe('inspector API: entities', () => {
  it('searches keys by substring, filters by kind and status, and pages in kind/key order', async () => {
    const all = await get<{ total: number; items: { kind: string; key: string }[] }>(
      '/api/v1/entities?limit=3',
    );
    expect(all.body.total).toBe(ENTITIES + 1);
    expect(all.body.items.map((i) => `${i.kind}/${i.key}`)).toEqual([
      'counter/c-0000',
      'counter/c-0001',
      'counter/c-0002',
    ]);
    // c-0010 … c-0019, c-0100 … c-0109 contain "c-001" or "01": ask for a precise one.
    const q = await get<{ total: number; offset: number; items: { key: string; node: string }[] }>(
      '/api/v1/entities?q=C-01&offset=5&limit=4',
    );
    expect(q.status).toBe(200);
    // c-0100 … c-0199 (100 keys) match "c-01" case-insensitively.
    expect(q.body.total).toBe(100);
    expect(q.body.items.map((i) => i.key)).toEqual(['c-0105', 'c-0106', 'c-0107', 'c-0108']);
    expect(q.body.items.every((i) => i.node === 'solo')).toBe(true);
    const kind = await get<{ total: number; items: { key: string }[] }>('/api/v1/entities?kind=fragile');
    expect(kind.body.total).toBe(1);
    expect(kind.body.items.map((i) => i.key)).toEqual(['f-1']);
    const bad = await get('/api/v1/entities?status=sleepy');
    expect(bad).toMatchObject({
      status: 400,
      body: { error: "status: must be one of active, restarting, passivated, stopped, got 'sleepy'" },
    });
  });

  it('answers one entity: status, processed, offset, mailbox, summary and its lifecycle events', async () => {
    const { status, body } = await get<Record<string, unknown>>(`/api/v1/entities/counter/${key(7)}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      kind: 'counter',
      key: key(7),
      node: 'solo',
      partition: rt.shardOf('counter', key(7)),
      status: 'active',
      active: true,
      restarts: 0,
      processed: 4,
      lastError: null,
      mailbox: { lag: 0 },
      summary: { count: 31, applied: 0 },
    });
    expect((body.events as { phase: string }[]).map((e) => e.phase)).toEqual(['started']);
    const f = await get<Record<string, unknown>>('/api/v1/entities/fragile/f-1');
    expect(f.body.summary).toEqual({ key: 'f-1', n: 1 });
    const unknown = await get('/api/v1/entities/nope/x');
    expect(unknown).toMatchObject({
      status: 404,
      body: { error: expect.stringContaining("no entity kind 'nope'") },
    });
  });

  it('answers an entity never seen here as passivated, from its initial state', async () => {
    const { body } = await get<Record<string, unknown>>('/api/v1/entities/counter/never-seen');
    expect(body).toMatchObject({
      status: 'passivated',
      active: false,
      processed: 0,
      restarts: 0,
      offset: -1,
      summary: { count: 0, applied: 0 },
      events: [],
    });
  });

  it('records a crash as the last error with its time', async () => {
    const before = Date.now();
    await rt.send('fragile', 'f-1', { type: 'boom' });
    await waitFor(
      'the crash',
      () => rt.entities.get('fragile', rt.shardOf('fragile', 'f-1'), 'f-1')?.lastError,
      10_000,
    );
    const { body } = await get<{ lastError: { message: string; at: number }; restarts: number }>(
      '/api/v1/entities/fragile/f-1',
    );
    expect(body.lastError.message).toBe('boom on purpose');
    expect(body.lastError.at).toBeGreaterThanOrEqual(before);
    expect(body.restarts).toBeGreaterThanOrEqual(1);
  });
});

describe('inspector API: admin actions', () => {
  it('restart: the restart count goes up by one, the last error stays, and an admin event names who', async () => {
    const k = key(42);
    const before = await get<{ restarts: number; lastError: unknown }>(`/api/v1/entities/counter/${k}`);
    expect(before.body.restarts).toBe(0);
    const { status, body } = await post(`/api/v1/entities/counter/${k}/restart`);
    expect(status).toBe(200);
    expect(body).toEqual({ action: 'restart', node: 'solo', restarts: 1 });
    const after = await get<{
      restarts: number;
      lastError: unknown;
      status: string;
      events: { phase: string; action?: string; by?: string }[];
    }>(`/api/v1/entities/counter/${k}`);
    expect(after.body.restarts).toBe(1);
    expect(after.body.status).toBe('active');
    expect(after.body.lastError).toBe(null);
    expect(after.body.events.map((e) => e.phase)).toEqual(['started', 'admin', 'crashed', 'restarted']);
    expect(after.body.events[1]).toMatchObject({ phase: 'admin', action: 'restart', by: 'ops' });
    const admin = events.filter((e): e is AdminEvent => e.type === '@argus.admin' && e.key === k);
    expect(admin.map(({ action, kind, key, node, by }) => ({ action, kind, key, node, by }))).toEqual([
      { action: 'restart', kind: 'counter', key: k, node: 'solo', by: 'ops' },
    ]);
    // The state is intact: it restarted from its snapshot.
    expect((await rt.entityState('counter', k)).state).toMatchObject({ count: 1 });
  });

  it('stop passivates; restart or stop of an entity that is not active answer 409', async () => {
    const k = key(43);
    const stop = await post(`/api/v1/entities/counter/${k}/stop`);
    expect(stop).toMatchObject({ status: 200, body: { action: 'stop', node: 'solo', status: 'passivated' } });
    const detail = await get<{ status: string; active: boolean }>(`/api/v1/entities/counter/${k}`);
    expect([detail.body.status, detail.body.active]).toEqual(['passivated', false]);
    const again = await post(`/api/v1/entities/counter/${k}/restart`);
    expect(again).toMatchObject({
      status: 409,
      body: { error: `ARGUS_ERR_NOT_ACTIVE: entity counter/${k} is not active: nothing to restart` },
    });
    expect((await post(`/api/v1/entities/counter/${k}/stop`)).status).toBe(409);
    // The entity comes back with its next message, with its state.
    await inc(k, 5);
    await waitFor('reactivated', async () => (await rt.entityState('counter', k)).active, 10_000);
    expect((await rt.entityState('counter', k)).state).toMatchObject({ count: 6 });
  });

  it('messages: appends a test message to the mailbox (202) and names who sent it', async () => {
    const k = key(44);
    const { status, body } = await post(`/api/v1/entities/counter/${k}/messages`, { type: 'inc', by: 100 });
    expect(status).toBe(202);
    expect(body).toEqual({ action: 'message', accepted: true, node: 'solo' });
    await waitFor(
      'applied',
      async () => ((await rt.entityState('counter', k)).state as { count: number }).count === 101,
      10_000,
    );
    const admin = events.filter((e): e is AdminEvent => e.type === '@argus.admin' && e.key === k);
    expect(admin.map((e) => [e.action, e.by, e.messageType])).toEqual([['message', 'ops', 'inc']]);
    const bad = await post(`/api/v1/entities/counter/${k}/messages`, { by: 1 });
    expect(bad).toMatchObject({
      status: 400,
      body: { error: "body must be one message: a JSON object with a string 'type'" },
    });
    const invalid = await post(`/api/v1/entities/counter/${k}/messages`, { type: 'dance' });
    expect(invalid.status).toBe(400);
    expect((invalid.body as { error: string }).error).toContain(
      "counter message type must be 'inc' or 'reset'",
    );
  });

  it('answers 405 with Allow for a wrong method, and the read token may not act', async () => {
    const wrong = await api(http.url, `/api/v1/entities/counter/${key(1)}/restart`, { method: 'GET' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    const reader = await api(http.url, `/api/v1/entities/counter/${key(1)}/restart`, {
      method: 'POST',
      token: READ_TOKEN,
    });
    expect(reader).toMatchObject({
      status: 403,
      body: { error: "token 'reader' does not have the 'admin' scope" },
    });
    const none = await api(http.url, '/api/v1/entities', { token: null });
    expect(none.status).toBe(401);
    expect((await api(http.url, '/api/v1/entities', { token: ADMIN_TOKEN })).status).toBe(200);
  });
});

describe('inspector API: summaries', () => {
  it('uses the kind’s summary, else its answer to the summary query, else the state cut to 4 KB', async () => {
    const { summarize } = await import('../../runtime/inspector/node.ts');
    const bare = defineEntity<{ big: string; m: Map<string, number>; b: Uint8Array }, { type: 'x' }>({
      kind: 'bare',
      initialState: () => ({ big: '', m: new Map(), b: new Uint8Array(0) }),
      receive: (s) => s,
    });
    const queried = defineEntity<{ n: number }, { type: 'x' }>({
      kind: 'queried',
      initialState: () => ({ n: 0 }),
      receive: (s) => s,
      query: (s, q) => (q === 'summary' ? { n: s.n, via: 'query' } : { state: s }),
    });
    const fake = {
      definitionOf: (kind: string) => ({ bare, queried, fragile })[kind],
    } as unknown as Runtime;
    expect(summarize(fake, 'fragile', 'f', { n: 3 })).toEqual({ key: 'f', n: 3 });
    expect(summarize(fake, 'queried', 'q', { n: 4 })).toEqual({ n: 4, via: 'query' });
    expect(summarize(fake, 'bare', 'b', { big: 'x', m: new Map([['a', 1]]), b: new Uint8Array(9) })).toEqual({
      big: 'x',
      m: { a: 1 },
      b: { bytes: 9 },
    });
    const cut = summarize(fake, 'bare', 'b', {
      big: 'y'.repeat(10_000),
      m: new Map(),
      b: new Uint8Array(0),
    }) as {
      truncated: boolean;
      json: string;
    };
    expect(cut.truncated).toBe(true);
    expect(cut.json).toHaveLength(4_096);
    expect(cut.json.startsWith('{"big":"yyy')).toBe(true);
  });
});
