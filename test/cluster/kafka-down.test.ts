/**
 * Kafka down: the test runs its own broker (so it can stop it) beside the shared etcd. With a backlog
 * being processed, the broker stops for 30 s: every node reports the outage, none crashes for good
 * (no process exits, no shard moves), processing resumes when the broker is back, and the final
 * state is exact.
 */
import { describe, expect, it } from 'vitest';
import { type RunningKafka, startKafka } from '../../scripts/services/kafka.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import {
  closeAfterEach,
  etcdView,
  exactStateProblems,
  ownershipViolations,
  replayedOffsets,
  startCluster,
  waitForDrained,
} from './support.ts';

const SHARDS = 12;
const OUTAGE_MS = 30_000;

const track = closeAfterEach();

describe('cluster: Kafka down', () => {
  it('reports a 30 s broker outage, survives it and resumes with an exact state', async () => {
    const kafka: RunningKafka = await startKafka();
    track({ close: () => kafka.stop() });
    const { setup, cluster, sender, ids, settled } = await startCluster(track, {
      name: 'kafka-down',
      shards: SHARDS,
      brokers: kafka.brokers,
    });
    const settledAt = Date.now();

    const before = sender.stream(30, 20, 60_000);
    await sleep(2_000);
    await before.stop();
    // A backlog the nodes are in the middle of when the broker goes.
    for (let i = 0; i < 10; i++) await sender.sendBatch(300);
    const haltAt = Date.now();
    await kafka.halt();

    await waitFor(
      'every node to report the outage',
      () =>
        new Set(
          cluster
            .clusterEvents()
            .filter((e) => e.event === 'transport-unreachable' && e.at >= haltAt)
            .map((e) => e.node),
        ).size === ids.length,
      OUTAGE_MS,
      100,
    );
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - haltAt)));
    for (const node of cluster.nodes.values()) expect(node.proc.exitCode).toBe(null);

    const resumeAt = Date.now();
    await kafka.resume();
    const after = sender.stream(30, 20, 60_000);
    await waitFor(
      'every node to report Kafka back',
      () =>
        new Set(
          cluster
            .clusterEvents()
            .filter((e) => e.event === 'transport-reachable' && e.at >= resumeAt)
            .map((e) => e.node),
        ).size === ids.length,
      60_000,
      100,
    );
    for (const id of ids) {
      await waitFor(
        `${id} to process again`,
        () => cluster.batches().some((b) => b.node === id && b.startedAt > resumeAt),
        30_000,
        50,
      );
    }
    await sleep(2_000);
    await after.stop();
    await waitForDrained(sender.mailbox, SHARDS, 90_000);

    // Nothing moved: etcd was fine all along.
    const view = await etcdView(setup.etcd, setup.prefix, SHARDS);
    expect(view.placement).toEqual(settled.placement);
    expect(
      cluster
        .clusterEvents()
        .filter((e) => e.at > settledAt && (e.event === 'shard-released' || e.event === 'fenced')),
    ).toEqual([]);
    for (const node of cluster.nodes.values()) expect(node.proc.exitCode).toBe(null);
    expect(ownershipViolations(cluster.batches())).toEqual([]);
    expect(replayedOffsets(cluster.batches())).toEqual([]);
    expect(await exactStateProblems(setup, sender.sent)).toEqual([]);
  }, 240_000);
});
