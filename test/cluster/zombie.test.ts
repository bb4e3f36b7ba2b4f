/**
 * A zombie: a node frozen (SIGSTOP) in the middle of its work for longer than its lease — the GC-pause
 * case etcd alone cannot handle. The others take its shards. When it thaws (SIGCONT) it still believes
 * for a moment that it owns them; whatever it tries to commit then must be refused by Kafka (the new
 * owners opened the shards' writers, which fenced it), it must stop those shards, and rejoin. The
 * final state is exact and no shard was processed by two nodes at overlapping times.
 */
import { describe, expect, it } from 'vitest';
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
const TTL_S = 2;

const track = closeAfterEach();

describe('cluster: a frozen node (zombie)', () => {
  it('cannot commit anything after its shards were taken over, and rejoins cleanly', async () => {
    const { setup, cluster, sender, ids, settled } = await startCluster(track, {
      name: 'zombie',
      shards: SHARDS,
      cluster: { leaseTtlS: TTL_S, fenceMarginMs: 500 },
    });
    const zombie = 'n2';
    const itsShards = settled.placement.flatMap((o, s) => (o === zombie ? [s] : []));

    const stream = sender.stream(60, 10, 90_000);
    await sleep(1_500);
    const node = cluster.nodes.get(zombie)!;
    const frozenAt = Date.now();
    node.proc.kill('SIGSTOP');
    try {
      await waitForSettled(
        setup,
        ids.filter((id) => id !== zombie),
        20_000,
      );
      await waitFor(
        'the others to process its shards',
        () =>
          itsShards.every((s) =>
            cluster.batches().some((b) => b.partition === s && b.node !== zombie && b.startedAt > frozenAt),
          ),
        20_000,
        50,
      );
    } finally {
      node.proc.kill('SIGCONT');
    }
    // The zombie emits nothing while stopped, so every event of its stamped after the freeze comes from
    // after the thaw. (Stamping the thaw in this process instead raced the zombie: on another core it can
    // fence itself in the same instant SIGCONT lands, before this process reads its clock.)
    await waitFor(
      'the zombie to rejoin',
      () => cluster.clusterEvents(zombie).some((e) => e.event === 'rejoined' && e.at >= frozenAt),
      20_000,
      50,
    );
    await waitForSettled(setup, ids, 20_000);
    await sleep(1_000);
    await stream.stop();
    await waitForDrained(sender.mailbox, SHARDS);

    // Nothing the zombie committed after the freeze overlaps the new owners' work (Kafka refused it).
    const batches = cluster.batches();
    expect(ownershipViolations(batches)).toEqual([]);
    expect(replayedOffsets(batches)).toEqual([]);
    const zombieEvents = cluster.clusterEvents(zombie).filter((e) => e.at >= frozenAt);
    expect(zombieEvents.some((e) => e.event === 'fenced')).toBe(true);
    expect(await exactStateProblems(setup, sender.sent)).toEqual([]);
    expect(node.proc.exitCode).toBe(null);
  }, 180_000);
});
