/**
 * Network cut: one node reaches etcd through a loopback proxy the test controls, and Kafka directly.
 * The proxy goes silent (a blackhole: packets vanish, nothing is refused). The cut node must stop its
 * shards — and say so — before any other node takes them, while it can still reach Kafka; no shard
 * is ever processed by two nodes at once. When the network heals the node joins again with a new
 * lease, gets its shards back, and the final state is exact.
 */
import { describe, expect, it } from 'vitest';
import { etcdEndpoints } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import {
  closeAfterEach,
  exactStateProblems,
  ownershipViolations,
  replayedOffsets,
  startCluster,
  waitForDrained,
  waitForSettled,
} from './support.ts';

const SHARDS = 12;
const TTL_S = 3;

const track = closeAfterEach();

describe('cluster: a node cut off from etcd only', () => {
  it('stops its shards before another node takes them, and comes back cleanly', async () => {
    const etcd = etcdEndpoints();
    const proxy: TcpProxy = await startTcpProxy(etcd[0]!);
    track(proxy);
    const cut = 'n3';
    const { setup, cluster, sender, ids, settled } = await startCluster(track, {
      name: 'net-cut',
      shards: SHARDS,
      cluster: { leaseTtlS: TTL_S, fenceMarginMs: 1_000 },
      etcdOf: (node) => (node === cut ? [proxy.url] : etcd),
    });
    const itsShards = settled.placement.flatMap((o, s) => (o === cut ? [s] : []));
    expect(itsShards.length).toBeGreaterThan(0);

    const stream = sender.stream(30, 20, 90_000);
    await sleep(1_500);
    const cutAt = Date.now();
    await proxy.cut('blackhole');

    // The others take its shards once its lease expired...
    const others = ids.filter((id) => id !== cut);
    await waitForSettled(setup, others, 20_000);
    const takenAt = await waitFor(
      'the others to run its shards',
      () => {
        const acquired = cluster
          .clusterEvents()
          .filter(
            (e) =>
              e.event === 'shard-acquired' &&
              e.node !== cut &&
              e.at >= cutAt &&
              itsShards.includes(e.partition!),
          );
        return new Set(acquired.map((e) => e.partition)).size === itsShards.length
          ? Math.min(...acquired.map((e) => e.at))
          : false;
      },
      20_000,
      50,
    );
    // ...and it had stopped them before that, and said so.
    const fenced = cluster.clusterEvents(cut).find((e) => e.event === 'fenced' && e.at >= cutAt);
    expect(fenced).toBeDefined();
    expect(fenced!.at).toBeLessThan(takenAt);
    const released = cluster
      .clusterEvents(cut)
      .filter((e) => e.event === 'shard-released' && e.at >= cutAt)
      .map((e) => e.partition)
      .sort((a, b) => a! - b!);
    expect(released).toEqual(itsShards);
    expect(
      Math.max(
        ...cluster
          .clusterEvents(cut)
          .filter((e) => e.event === 'shard-released' && e.at >= cutAt)
          .map((e) => e.at),
      ),
    ).toBeLessThan(takenAt);
    expect(cluster.batches().filter((b) => b.node === cut && b.startedAt > fenced!.at)).toEqual([]);
    expect(cluster.nodes.get(cut)!.proc.exitCode).toBe(null);

    // The network heals: the node joins again (its old lease expired) and gets its shards back.
    const healAt = Date.now();
    await proxy.restore({ resetHeld: true });
    await waitFor(
      `${cut} to rejoin`,
      () => cluster.clusterEvents(cut).some((e) => e.event === 'rejoined' && e.at >= healAt),
      20_000,
      50,
    );
    const back = await waitForSettled(setup, ids, 20_000);
    expect(back.placement).toEqual(settled.placement);
    await waitFor(
      `${cut} to process again`,
      () => cluster.batches().some((b) => b.node === cut && b.startedAt > healAt),
      20_000,
      50,
    );
    await sleep(1_000);
    await stream.stop();
    await waitForDrained(sender.mailbox, SHARDS);
    expect(ownershipViolations(cluster.batches())).toEqual([]);
    expect(replayedOffsets(cluster.batches())).toEqual([]);
    expect(await exactStateProblems(setup, sender.sent)).toEqual([]);
  }, 180_000);
});
