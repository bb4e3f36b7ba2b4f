/**
 * The inspector across a real cluster: two node processes (runtime/main.ts, Kafka mailboxes, etcd
 * placement). One node answers for both — members with their health, the entities of both gathered,
 * an entity owned by the other asked of its owner, the other's supervisor tree, an admin restart
 * carried out by the owner — and when the other is SIGKILLed, the next answers come back within the
 * gather timeout marked partial, naming the member that did not answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FEED_PROTOCOL } from '../../runtime/feed/protocol.ts';
import { api, READ_TOKEN } from '../helpers/api.ts';
import { killIfRunning, type MainNode, startClusterNode } from '../helpers/child.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const SHARDS = 6;
const KEYS = 40;
const GATHER_MS = 1_500;

const dir = mkdtempSync(join(tmpdir(), 'argus-inspector-cluster-'));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const startNode = (id: string, prefix: string): Promise<MainNode> =>
  startClusterNode(
    {
      id,
      prefix,
      shards: SHARDS,
      dir,
      brokers: kafkaBrokers(),
      etcd: etcdEndpoints(),
      extra: { inspector: { gatherTimeoutMs: GATHER_MS }, hosts: false, alerts: false },
    },
    (node) => cleanups.push(() => killIfRunning(node)),
  );

interface Member {
  id: string;
  health: string;
  shards: number | null;
}
interface ClusterAnswer {
  partial: boolean;
  missing: { node: string; error: string }[];
  members: Member[];
  placement: Record<string, { shard: number; node: string | null }[]>;
}
interface EntitiesAnswer {
  partial: boolean;
  missing: { node: string }[];
  total: number;
  items: { kind: string; key: string; node: string; partition: number; processed: number }[];
}

const key = (i: number) => `k-${String(i).padStart(2, '0')}`;

/** A feed client on `node` subscribed to admin events; the events it received. */
const adminFeed = async (node: MainNode): Promise<Record<string, unknown>[]> => {
  const ws = new WebSocket(`${node.url.replace(/^http:/, 'ws:')}/api/v1/events/stream`, [
    FEED_PROTOCOL,
    `bearer.${READ_TOKEN}`,
  ]);
  cleanups.push(async () => ws.terminate());
  const events: Record<string, unknown>[] = [];
  let subscribed = false;
  ws.on('message', (d) => {
    const frame = JSON.parse(d.toString());
    if (frame.type === 'subscribed') subscribed = true;
    if (frame.type === 'event') events.push(frame.event);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'subscribe', filter: { types: ['@argus.admin'] } }));
  await waitFor('subscribed', () => subscribed, 10_000);
  return events;
};

describe('inspector in a cluster', () => {
  it('answers for every member from any one, and marks answers partial when a member is killed', async () => {
    const prefix = uniquePrefix('inspector-cluster');
    const n1 = await startNode('n1', prefix);
    const n2 = await startNode('n2', prefix);

    // Both members running, every counter shard placed on one of them.
    let cluster: ClusterAnswer | undefined;
    await waitFor(
      'both members with their shards',
      async () => {
        cluster = (await api<ClusterAnswer>(n1.url, '/api/v1/cluster')).body;
        const owners = cluster.placement.counter?.map((p) => p.node) ?? [];
        return (
          cluster.members.length === 2 &&
          cluster.members.every((m) => m.health === 'running' && (m.shards ?? 0) > 0) &&
          owners.length === SHARDS &&
          owners.includes('n1') &&
          owners.includes('n2')
        );
      },
      30_000,
      200,
    );
    expect(cluster!.partial).toBe(false);
    expect(cluster!.members.map((m) => m.id).sort()).toEqual(['n1', 'n2']);
    const ownerOf = (partition: number) => cluster!.placement.counter![partition]!.node;

    // Messages through n1's API reach entities on both nodes.
    for (let i = 0; i < KEYS; i++) {
      const sent = await api(n1.url, `/api/v1/entities/counter/${key(i)}/messages`, {
        method: 'POST',
        body: { type: 'inc', by: i },
      });
      expect(sent.status).toBe(202);
    }
    let listed: EntitiesAnswer | undefined;
    await waitFor(
      'every counter known, on its owner',
      async () => {
        listed = (await api<EntitiesAnswer>(n2.url, '/api/v1/entities?kind=counter&limit=1000')).body;
        return listed.total === KEYS && listed.items.every((i) => i.processed === 1);
      },
      30_000,
      200,
    );
    expect(listed!.partial).toBe(false);
    expect(listed!.items.map((i) => i.key)).toEqual(Array.from({ length: KEYS }, (_, i) => key(i)));
    for (const item of listed!.items) expect(item.node).toBe(ownerOf(item.partition));
    const onN2 = listed!.items.filter((i) => i.node === 'n2');
    const onN1 = listed!.items.filter((i) => i.node === 'n1');
    expect(onN2.length).toBeGreaterThan(0);
    expect(onN1.length).toBeGreaterThan(0);

    // An entity of n2, asked through n1, answered by its owner; restarted through n1 by its owner.
    const target = onN2[0]!;
    const detail = await api<Record<string, unknown>>(n1.url, `/api/v1/entities/counter/${target.key}`);
    expect(detail.status).toBe(200);
    const index = Number(target.key.slice(2));
    expect(detail.body).toMatchObject({
      key: target.key,
      node: 'n2',
      status: 'active',
      processed: 1,
      restarts: 0,
      summary: { count: index, applied: 0 },
    });
    const feed = await adminFeed(n1);
    const restart = await api(n1.url, `/api/v1/entities/counter/${target.key}/restart`, { method: 'POST' });
    expect(restart).toMatchObject({ status: 200, body: { action: 'restart', node: 'n2', restarts: 1 } });
    // The person on n1 sees the action in n1's feed, though n2 carried it out.
    await waitFor('the admin event on n1', () => feed.length > 0, 10_000);
    expect(
      feed.map(({ type, action, kind, key, node, by }) => ({ type, action, kind, key, node, by })),
    ).toEqual([
      { type: '@argus.admin', action: 'restart', kind: 'counter', key: target.key, node: 'n2', by: 'ops' },
    ]);
    const after = await api<{ restarts: number; events: { phase: string; by?: string }[] }>(
      n1.url,
      `/api/v1/entities/counter/${target.key}`,
    );
    expect(after.body.restarts).toBe(1);
    expect(after.body.events.filter((e) => e.phase === 'admin').map((e) => e.by)).toEqual(['ops']);

    // n2's tree, through n1: its shard supervisors are exactly the shards the placement gives it.
    const tree = await api<{ node: string; children: { id: string }[] }>(
      n1.url,
      '/api/v1/nodes/n2/tree?path=node/shards',
    );
    expect(tree.status).toBe(200);
    const n2Counter = cluster!.placement
      .counter!.filter((p) => p.node === 'n2')
      .map((p) => `counter-${p.shard}`);
    expect(tree.body.children.map((c) => c.id).filter((id) => id.startsWith('counter-'))).toEqual(
      n2Counter.sort(),
    );

    // SIGKILL n2: the next answers (asked together, before its lease runs out) are partial, within the
    // gather timeout, and name n2.
    await n2.child.kill9();
    const t0 = Date.now();
    const [partial, some] = await Promise.all([
      api<ClusterAnswer>(n1.url, '/api/v1/cluster'),
      api<EntitiesAnswer>(n1.url, '/api/v1/entities?kind=counter&limit=1000'),
    ]);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(GATHER_MS + 1_000);
    expect(partial.status).toBe(200);
    expect(partial.body.partial).toBe(true);
    expect(partial.body.missing.map((m) => m.node)).toEqual(['n2']);
    expect(partial.body.missing[0]!.error).toMatch(/n2/);
    expect(partial.body.members.find((m) => m.id === 'n2')?.health).toBe('unreachable');
    expect(partial.body.members.find((m) => m.id === 'n1')?.health).toBe('running');
    expect(some.body.partial).toBe(true);
    expect(some.body.missing.map((m) => m.node)).toEqual(['n2']);
    expect(some.body.total).toBe(onN1.length);
    expect(some.body.items.every((i) => i.node === 'n1')).toBe(true);
  }, 120_000);
});
