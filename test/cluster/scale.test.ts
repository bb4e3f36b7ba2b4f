/**
 * Scale out and in, under a steady stream: a 4th node joining takes exactly the shards rendezvous
 * hashing gives it (every other shard stays where it was), and a node stopping gracefully hands its
 * shards off with nothing processed twice (each offset is committed by exactly one batch), and the
 * final state is exact.
 */
import { describe, expect, it } from 'vitest';
import { movedShards, placeKind } from '../../cluster/placement.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import {
  closeAfterEach,
  exactStateProblems,
  KIND,
  ownershipViolations,
  replayedOffsets,
  startCluster,
  type TestCluster,
  waitForDrained,
  waitForSettled,
} from './support.ts';

const SHARDS = 32;
const ENTITIES = 1_000;

const track = closeAfterEach();

const place = (members: string[]) =>
  placeKind(
    KIND,
    SHARDS,
    members.map((id) => ({ id, weight: 1 })),
  );

/** Shards some node released (or acquired) between `from` and `to`, by cluster events. */
const shardEvents = (
  cluster: TestCluster,
  event: 'shard-released' | 'shard-acquired',
  from: number,
  to: number,
) =>
  cluster
    .clusterEvents()
    .filter((e) => e.event === event && e.at >= from && e.at <= to)
    .map((e) => ({ node: e.node, partition: e.partition! }));

describe('cluster: scale out and in', () => {
  it('moves only the minimal set of shards on a join and replays nothing on a graceful leave', async () => {
    const three = ['n1', 'n2', 'n3'];
    const four = [...three, 'n4'];
    const {
      setup,
      cluster,
      sender,
      settled: before,
    } = await startCluster(track, { name: 'scale', shards: SHARDS, ids: three, entities: ENTITIES });
    expect(before.placement).toEqual(place(three));

    const stream = sender.stream(40, 20, 90_000);
    await sleep(1_500);

    // Join: exactly the shards the newcomer wins move, all of them to it.
    const joinAt = Date.now();
    await cluster.start('n4');
    const joined = await waitForSettled(setup, four);
    await sleep(500);
    const expectedMoves = movedShards(place(three), place(four));
    expect(expectedMoves.length).toBeGreaterThan(0);
    expect(expectedMoves.every((s) => place(four)[s] === 'n4')).toBe(true);
    expect(movedShards(before.placement, joined.placement)).toEqual(expectedMoves);
    const releasedOnJoin = shardEvents(cluster, 'shard-released', joinAt, Date.now());
    expect(releasedOnJoin.map((e) => e.partition).sort((a, b) => a - b)).toEqual(expectedMoves);
    for (const e of releasedOnJoin) expect(e.node).toBe(before.placement[e.partition]);
    // A claim is taken just before the shard starts: wait for the starts themselves.
    const acquiredOnJoin = await waitFor(
      'the newcomer to start its shards',
      () => {
        const acquired = shardEvents(cluster, 'shard-acquired', joinAt, Date.now());
        return acquired.filter((e) => e.node === 'n4').length >= expectedMoves.length ? acquired : false;
      },
      10_000,
      50,
    );
    expect(acquiredOnJoin.filter((e) => e.node !== 'n4')).toEqual([]);
    expect(acquiredOnJoin.map((e) => e.partition).sort((a, b) => a - b)).toEqual(expectedMoves);

    await sleep(1_500);

    // Graceful leave: n4's shards go back where rendezvous hashing puts them without n4.
    const leaveAt = Date.now();
    await cluster.stopGracefully('n4');
    const left = await waitForSettled(setup, three);
    expect(left.placement).toEqual(place(three));
    const releasedOnLeave = shardEvents(cluster, 'shard-released', leaveAt, Date.now());
    expect(releasedOnLeave.every((e) => e.node === 'n4')).toBe(true);
    expect(releasedOnLeave.map((e) => e.partition).sort((a, b) => a - b)).toEqual(expectedMoves);

    await sleep(1_500);
    await stream.stop();
    await waitForDrained(sender.mailbox, SHARDS);
    await sleep(300);

    const batches = cluster.batches();
    expect(batches.filter((b) => b.node === 'n4').length).toBeGreaterThan(0);
    expect(replayedOffsets(batches)).toEqual([]);
    expect(ownershipViolations(batches)).toEqual([]);
    expect(await exactStateProblems(setup, sender.sent)).toEqual([]);
  }, 180_000);
});
