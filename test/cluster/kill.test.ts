/**
 * Kill: three node processes share 16 shards of the counter kind over one etcd and one Kafka; 1,000
 * entities receive a steady stream of uniquely numbered increments; one node is SIGKILLed mid-stream.
 * Its shards must be running on the survivors within the failover bound, and when the stream stops
 * every entity's durable state must hold exactly the numbers sent to it — none lost, none applied
 * twice — and no shard may ever have been processed by two nodes at once. Then the same with the
 * leader as the victim.
 */
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../helpers/wait.ts';
import {
  closeAfterEach,
  etcdView,
  exactStateProblems,
  ownershipViolations,
  replayedOffsets,
  startCluster,
  type TestCluster,
  waitForDrained,
  waitForSettled,
} from './support.ts';

const SHARDS = 16;
const ENTITIES = 1_000;
/** The failover bound with default settings (lease TTL 5 s): the target. */
const FAILOVER_BOUND_MS = 10_000;

const track = closeAfterEach();

/** When each of `shards` first committed a batch on a node other than `victim`, after `since`. */
const resumedAt = (
  cluster: TestCluster,
  victim: string,
  shards: number[],
  since: number,
): Map<number, number> => {
  const at = new Map<number, number>();
  for (const b of cluster.batches()) {
    if (b.node === victim || b.startedAt < since || !shards.includes(b.partition)) continue;
    const prev = at.get(b.partition);
    if (prev === undefined || b.committedAt < prev) at.set(b.partition, b.committedAt);
  }
  return at;
};

describe('cluster: a killed node', () => {
  for (const victimIs of ['a follower', 'the leader'] as const) {
    it(`moves ${victimIs === 'the leader' ? "the leader's" : "a follower's"} shards to the survivors within the bound, losing and repeating nothing`, async () => {
      const {
        setup,
        cluster,
        sender,
        ids,
        settled: before,
      } = await startCluster(track, {
        name: `kill-${victimIs === 'the leader' ? 'leader' : 'follower'}`,
        shards: SHARDS,
        entities: ENTITIES,
      });
      const victim = victimIs === 'the leader' ? before.leader! : ids.find((id) => id !== before.leader)!;
      expect(ids).toContain(victim);
      const moved = before.placement.flatMap((owner, shard) => (owner === victim ? [shard] : []));
      expect(moved.length).toBeGreaterThan(0);

      const stream = sender.stream(40, 20, 60_000);
      await sleep(3_000);
      const killedAt = await cluster.kill(victim);
      const survivors = ids.filter((id) => id !== victim);

      // Every moved shard commits a batch on a survivor within the bound.
      const resumed = await waitFor(
        'every moved shard to run on a survivor',
        () => {
          const at = resumedAt(cluster, victim, moved, killedAt);
          return at.size === moved.length ? at : false;
        },
        FAILOVER_BOUND_MS + 20_000,
        100,
      );
      const failoverMs = Math.max(...[...resumed.values()].map((t) => t - killedAt));
      console.log(`failover (${victimIs}): ${failoverMs} ms for ${moved.length} shards`);
      expect(failoverMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);

      await sleep(2_000);
      await stream.stop();
      await waitForDrained(sender.mailbox, SHARDS);
      const after = await waitForSettled(setup, survivors);
      expect(after.placement.filter((o) => o === victim)).toEqual([]);
      // Shards that did not belong to the victim did not move.
      for (let s = 0; s < SHARDS; s++) {
        if (before.placement[s] !== victim) expect(after.placement[s]).toBe(before.placement[s]);
      }
      if (victimIs === 'the leader') {
        expect(survivors).toContain(after.leader);
      }

      expect(sender.total).toBeGreaterThan(2_000);
      expect(await exactStateProblems(setup, sender.sent)).toEqual([]);
      expect(ownershipViolations(cluster.batches())).toEqual([]);
      // A killed node's uncommitted work is redone, but no committed offset is ever committed again.
      expect(replayedOffsets(cluster.batches())).toEqual([]);
      // Every batch committed by a survivor on a moved shard carries a newer epoch than the victim's.
      const victimEpochs = cluster
        .batches()
        .filter((b) => b.node === victim)
        .map((b) => b.epoch);
      for (const b of cluster.batches()) {
        if (b.node !== victim && moved.includes(b.partition))
          expect(b.epoch).toBeGreaterThan(Math.max(...victimEpochs));
      }
      const view = await etcdView(setup.etcd, setup.prefix, SHARDS);
      expect(view.members).toEqual(survivors);
    }, 180_000);
  }
});
