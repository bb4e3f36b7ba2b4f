/**
 * Routing and visibility: `send` works from any node (it goes through the mailbox), `ask` reaches the
 * entity's owning node and returns its answer, and fails with a clear error naming the node when that
 * node is gone; placement, members, epochs and lag are readable through the runtime's API. The test
 * process itself is one of the cluster's nodes here (an embedded runtime), beside two node processes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { counter } from '../../actors/counter/counter.ts';
import { placeKind } from '../../cluster/placement.ts';
import { shardOf } from '../../runtime/envelope.ts';
import { isArgusError } from '../../runtime/errors.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';
import { type ClusterSetup, KIND, TestCluster, waitForSettled } from './support.ts';

const SHARDS = 8;

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close().catch(() => undefined);
});

describe('cluster: routing and visibility', () => {
  it('sends from any node, asks the owning node, and names the node when it is gone', async () => {
    const setup: ClusterSetup = {
      brokers: kafkaBrokers(),
      etcd: etcdEndpoints(),
      prefix: uniquePrefix('routing'),
      shards: SHARDS,
      cluster: { leaseTtlS: 3, fenceMarginMs: 1_000, askTimeoutMs: 1_500 },
    };
    const cluster = new TestCluster(setup);
    open.push(cluster);
    await Promise.all(['n1', 'n2'].map((id) => cluster.start(id)));

    const rt: Runtime = createRuntime(cluster.config('here'));
    const counters = rt.register({
      ...counter,
      query: (state, query) =>
        query === 'count' ? state.count : { count: state.count, applied: state.applied },
    });
    await rt.start();
    open.push({ close: () => rt.stop() });
    const members = ['here', 'n1', 'n2'];
    const settled = await waitForSettled(setup, members);

    // 40 entities, 1..5 increments each, sent from this node.
    const keys = Array.from({ length: 40 }, (_, i) => `k-${i}`);
    let seq = 0;
    for (const [i, key] of keys.entries()) {
      for (let n = 0; n <= i % 5; n++) await counters.send(key, { type: 'inc', by: 1, seq: ++seq });
    }
    const expected = (i: number) => (i % 5) + 1;
    const owners = new Set<string>();
    for (const [i, key] of keys.entries()) {
      owners.add(settled.placement[shardOf(key, SHARDS)]!);
      await waitFor(
        `${key} to count ${expected(i)}`,
        async () => (await rt.ask(KIND, key, 'count')) === expected(i),
        15_000,
        20,
      );
    }
    expect([...owners].sort()).toEqual(members);
    expect(await rt.ask(KIND, 'k-3')).toEqual({ count: 4, applied: [7, 8, 9, 10] });

    // What this node knows of the cluster.
    const view = rt.cluster();
    expect(view.coordinator).toBe('etcd');
    expect(view.status).toBe('active');
    expect(view.members.map((m) => m.id)).toEqual(members);
    expect(view.members.every((m) => typeof m.address === 'string' && m.version === '0.1.0')).toBe(true);
    expect(members).toContain(view.leader);
    expect(view.placement[KIND]!.map((o) => o.node)).toEqual(
      placeKind(
        KIND,
        SHARDS,
        members.map((id) => ({ id, weight: 1 })),
      ),
    );
    expect(view.epoch).toBe(Math.max(...view.placement[KIND]!.map((o) => o.epoch)));
    const mine = settled.placement.flatMap((o, s) => (o === 'here' ? [s] : []));
    expect(view.running.map((r) => r.partition).sort((a, b) => a - b)).toEqual(mine);
    expect(
      rt
        .inspect()
        .shards.map((s) => s.partition)
        .sort((a, b) => a - b),
    ).toEqual(mine);

    // Lag of this node's shards: everything sent was processed, so once the checkpoints in flight have
    // landed (they are pipelined behind processing) committed = end, lag 0.
    const lag = await waitFor(
      'the last checkpoints of this node to land',
      async () => {
        const l = await rt.lag();
        return l.every((s) => s.lag === 0) && l;
      },
      5_000,
      20,
    );
    expect(lag.map((l) => l.partition).sort((a, b) => a - b)).toEqual(mine);
    for (const l of lag) {
      expect(l.lag).toBe(0);
      expect(l.committed).toBe(l.end);
    }
    expect(lag.reduce((n, l) => n + l.end, 0)).toBe(
      keys
        .filter((k) => mine.includes(shardOf(k, SHARDS)))
        .reduce((n, k) => n + expected(keys.indexOf(k)), 0),
    );

    // The owner of an entity on another node is killed: until its lease expires, asking fails fast
    // and names it.
    const key = keys.find((k) => settled.placement[shardOf(k, SHARDS)] !== 'here')!;
    const owner = settled.placement[shardOf(key, SHARDS)]!;
    await cluster.kill(owner);
    const started = Date.now();
    const error = await rt.ask(KIND, key, 'count').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isArgusError(error, 'ARGUS_ERR_UNREACHABLE')).toBe(true);
    expect((error as Error).message).toContain(`node '${owner}'`);
    expect(Date.now() - started).toBeLessThan(2_000);

    // After failover the entity answers again, from its new owner, with its state intact.
    const survivors = members.filter((m) => m !== owner);
    await waitForSettled(setup, survivors, 20_000);
    const i = keys.indexOf(key);
    await waitFor(
      `${key} to answer again`,
      async () => (await rt.ask(KIND, key, 'count').catch(() => -1)) === expected(i),
      15_000,
      50,
    );
    expect(rt.cluster().members.map((m) => m.id)).toEqual(survivors);
  }, 120_000);

  it('refuses asks for unknown kinds and bad keys with clear errors', async () => {
    const rt = createRuntime({
      nodeId: 'lonely',
      mode: 'kafka',
      shards: 2,
      kafka: { brokers: kafkaBrokers(), topicPrefix: uniquePrefix('ask-errors') },
      http: false,
    });
    rt.register(counter);
    await rt.start();
    open.push({ close: () => rt.stop() });
    await expect(rt.ask('nope', 'k')).rejects.toThrow(/ARGUS_ERR_UNKNOWN_KIND.*'nope'/);
    await expect(rt.ask(KIND, '')).rejects.toThrow(/ARGUS_ERR_INVALID_KEY/);
    // Without a cluster the node owns everything: ask answers locally.
    expect(await rt.ask(KIND, 'fresh')).toEqual({ state: { count: 0, applied: [] }, offset: -1 });
    expect(rt.cluster()).toMatchObject({
      coordinator: 'local',
      status: 'active',
      leader: 'lonely',
      epoch: 0,
    });
  }, 60_000);
});
