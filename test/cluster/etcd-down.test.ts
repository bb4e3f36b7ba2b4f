/**
 * etcd down. The test runs its own etcd (so it can stop it) beside the shared Kafka broker.
 * - A quick restart (well inside the lease TTL) moves nothing: no node fences, no shard changes hands.
 * - An outage longer than the TTL: every node stops processing (self-fences) and says so, before its
 *   lease could have expired; when etcd is back the cluster recovers, and the final state is exact.
 */
import { describe, expect, it } from 'vitest';
import { type RunningEtcd, startEtcd } from '../../scripts/services/etcd.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import {
  closeAfterEach,
  etcdView,
  exactStateProblems,
  ownershipViolations,
  replayedOffsets,
  startCluster,
  waitForDrained,
  waitForSettled,
} from './support.ts';

const SHARDS = 12;
const TTL_S = 5;

const track = closeAfterEach();

describe('cluster: etcd down', () => {
  it('moves nothing on a quick etcd restart; self-fences on a long outage and recovers exactly', async () => {
    const etcd: RunningEtcd = await startEtcd();
    track({ close: () => etcd.stop() });
    const { setup, cluster, sender, ids, settled } = await startCluster(track, {
      name: 'etcd-down',
      shards: SHARDS,
      etcd: etcd.endpoints,
      cluster: { leaseTtlS: TTL_S, fenceMarginMs: 1_000 },
    });
    const stream = sender.stream(30, 20, 120_000);
    await sleep(1_500);

    // 1. A quick restart: etcd is back long before any lease could expire. Nothing moves.
    const quickAt = Date.now();
    await etcd.halt();
    await etcd.resume();
    const quickBack = Date.now();
    await sleep(TTL_S * 1000);
    const quickEvents = cluster.clusterEvents().filter((e) => e.at >= quickAt);
    expect(quickBack - quickAt).toBeLessThan(TTL_S * 1000);
    // Nothing moves: no member leaves, no shard starts anywhere but on its owner.
    expect(quickEvents.filter((e) => e.event === 'member-left')).toEqual([]);
    expect(
      quickEvents.filter((e) => e.event === 'shard-acquired' && settled.placement[e.partition!] !== e.node),
    ).toEqual([]);
    // Renewals go every second and a node fences at TTL − margin = 4 s after the last one: an etcd back
    // within 2.5 s (it usually takes 1.2–1.8 s) fences nobody and stops no shard even for a moment.
    if (quickBack - quickAt < 2_500) {
      expect(quickEvents.filter((e) => e.event === 'fenced' || e.event === 'shard-released')).toEqual([]);
    }
    const afterQuick = await etcdView(setup.etcd, setup.prefix, SHARDS);
    expect(afterQuick.placement).toEqual(settled.placement);
    expect(afterQuick.epochs).toEqual(settled.epochs);
    expect(afterQuick.claims).toEqual(settled.claims);
    // Processing went on on every node after the restart.
    for (const id of ids) {
      expect(cluster.batches().some((b) => b.node === id && b.startedAt > quickBack)).toBe(true);
    }

    // 2. A long outage: every node fences itself within TTL − margin of its last renewal, and stops.
    const haltAt = Date.now();
    await etcd.halt();
    const fences = await waitFor(
      'every node to fence itself',
      () => {
        const f = cluster.clusterEvents().filter((e) => e.event === 'fenced' && e.at >= haltAt);
        return new Set(f.map((e) => e.node)).size === ids.length ? f : false;
      },
      TTL_S * 1000 + 5_000,
      50,
    );
    for (const f of fences) {
      // The last renewal was sent at most TTL/3 before the halt: the fence comes before the lease could end.
      expect(f.at - haltAt).toBeLessThan(TTL_S * 1000 - 1_000 + 200);
      expect(f.detail).toContain('no lease renewal acknowledged');
    }
    await sleep(TTL_S * 1000 + 1_000); // etcd stays down well past the TTL
    const fencedAt = new Map(fences.map((f) => [f.node, f.at]));
    // After its fence a node starts no batch, and the one in flight is committed within the margin,
    // before the lease could have expired.
    const lateBatches = cluster
      .batches()
      .filter((b) => b.startedAt > fencedAt.get(b.node)! || b.committedAt > fencedAt.get(b.node)! + 1_000);
    expect(lateBatches).toEqual([]);
    expect(
      cluster
        .clusterEvents()
        .filter((e) => e.event === 'etcd-unreachable' && e.at >= haltAt)
        .map((e) => e.node)
        .sort(),
    ).toEqual(ids);

    // etcd comes back: every node resumes (its lease was extended by etcd's restart) and processing goes on.
    const resumeAt = Date.now();
    await etcd.resume();
    await waitFor(
      'every node to rejoin',
      () =>
        new Set(
          cluster
            .clusterEvents()
            .filter((e) => e.event === 'rejoined' && e.at >= resumeAt)
            .map((e) => e.node),
        ).size === ids.length,
      20_000,
      50,
    );
    await waitForSettled(setup, ids);
    for (const id of ids) {
      await waitFor(
        `${id} to process again`,
        () => cluster.batches().some((b) => b.node === id && b.startedAt > resumeAt),
        20_000,
        50,
      );
    }
    await sleep(1_000);
    await stream.stop();
    await waitForDrained(sender.mailbox, SHARDS);
    for (const node of cluster.nodes.values()) expect(node.proc.exitCode).toBe(null);
    expect(ownershipViolations(cluster.batches())).toEqual([]);
    expect(replayedOffsets(cluster.batches())).toEqual([]);
    expect(await exactStateProblems(setup, sender.sent)).toEqual([]);
  }, 180_000);
});
