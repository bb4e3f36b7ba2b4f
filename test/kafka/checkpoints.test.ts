import { afterEach, describe, expect, it } from 'vitest';
import type {
  Checkpoint,
  DeadLetter,
  KindTopology,
  ShardWriter,
  Snapshot,
} from '../../runtime/boundaries.ts';
import { isArgusError } from '../../runtime/errors.ts';
import {
  isFencedError,
  KafkaCheckpointStore,
  type KafkaCheckpointStoreOptions,
  shardTransactionalId,
} from '../../runtime/kafka/checkpoints.ts';
import { createKafka } from '../../runtime/kafka/client.ts';
import { deadLetterMessage, KafkaDeadLetterStore } from '../../runtime/kafka/deadletters.ts';
import { KafkaMailbox } from '../../runtime/kafka/mailbox.ts';
import { KafkaSnapshotStore, snapshotMessage } from '../../runtime/kafka/snapshots.ts';
import { deadLetterTopic, mailboxTopic, stateTopic } from '../../runtime/kafka/topics.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { bytes } from './support.ts';

const cleanups: (() => Promise<void>)[] = [];
const later = <T extends { close(): Promise<void> }>(closable: T): T => {
  cleanups.push(() => closable.close());
  return closable;
};

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const connection = (topicPrefix: string) => ({
  brokers: kafkaBrokers(),
  clientId: 'checkpoints-test',
  topicPrefix,
});

/** A fresh cluster prefix with the kinds' mailbox and state topics and the dead-letter topic. */
const cluster = async (name: string, kinds: readonly KindTopology[]) => {
  const prefix = uniquePrefix(name);
  const mailbox = later(new KafkaMailbox(connection(prefix)));
  const snapshots = later(new KafkaSnapshotStore(connection(prefix)));
  const deadLetters = later(new KafkaDeadLetterStore(connection(prefix)));
  await Promise.all([mailbox.ensureKinds(kinds), snapshots.ensureKinds(kinds), deadLetters.ensure()]);
  return {
    prefix,
    checkpoints: (options: Partial<KafkaCheckpointStoreOptions> = {}): KafkaCheckpointStore =>
      later(new KafkaCheckpointStore({ ...connection(prefix), ...options })),
  };
};

/**
 * What a new owner of the shards finds: it opens their writers first (the broker answers once every
 * earlier transaction of the shard is complete, commit markers included), then reads with fresh stores.
 */
const takeOver = async (prefix: string, kind: string, partitions: readonly number[]) => {
  const owner = new KafkaCheckpointStore(connection(prefix));
  try {
    await Promise.all(partitions.map((p) => owner.open(kind, p)));
  } finally {
    await owner.close();
  }
  const snapshots = later(new KafkaSnapshotStore(connection(prefix)));
  const deadLetters = later(new KafkaDeadLetterStore(connection(prefix)));
  const mailbox = later(new KafkaMailbox(connection(prefix)));
  return {
    shards: await Promise.all(partitions.map((p) => snapshots.openShard(kind, p))),
    deadLetters: await deadLetters.list(),
    offsets: await Promise.all(partitions.map((p) => mailbox.committed(kind, p))),
  };
};

const snap = (key: string, partition: number, offset: number, state: string): Snapshot => ({
  key,
  partition,
  offset,
  state: bytes(state),
});

const letter = (kind: string, partition: number, offset: number, error: string): DeadLetter => ({
  kind,
  partition,
  offset,
  key: `key-${offset}`,
  reason: 'crashed',
  error,
  attempts: 3,
  at: 1_767_225_600_000 + offset,
  value: bytes(`{"offset":${offset}}`),
});

const checkpoint = (
  nextOffset: number,
  snapshots: Snapshot[] = [],
  deadLetters: DeadLetter[] = [],
): Checkpoint => ({ snapshots, deadLetters, nextOffset });

const failureOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );

describe('KafkaCheckpointStore', () => {
  it('makes the snapshots, the dead letters and the offset of a checkpoint durable together', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-basic', [{ kind: 'host', partitions: 2 }]);
    const writer = await checkpoints().open('host', 1);
    const crashed = letter('host', 1, 3, 'TypeError: boom');
    await writer.write(
      checkpoint(6, [snap('web-1', 1, 4, 'cpu=10'), snap('web-2', 1, 5, 'cpu=20')], [crashed]),
    );
    await writer.write(checkpoint(8, [snap('web-1', 1, 7, 'cpu=15')]));
    await writer.write(checkpoint(9)); // only the offset, right after a transaction

    const found = await takeOver(prefix, 'host', [0, 1]);
    expect(found.shards[0]!.size).toBe(0);
    expect(found.shards[1]!.size).toBe(2);
    expect(found.shards[1]!.get('web-1')).toEqual(snap('web-1', 1, 7, 'cpu=15'));
    expect(found.shards[1]!.get('web-2')).toEqual(snap('web-2', 1, 5, 'cpu=20'));
    expect(found.deadLetters).toEqual([crashed]);
    expect(found.offsets).toEqual([0, 9]);
  });

  it('fences the earlier writer of a shard: its writes fail with ARGUS_ERR_FENCED and land nothing', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-fence', [{ kind: 'host', partitions: 2 }]);
    const zombie = await checkpoints().open('host', 0);
    await zombie.write(checkpoint(2, [snap('web-1', 0, 1, 'a')]));

    const owner = await checkpoints().open('host', 0);
    const fenced = await failureOf(
      zombie.write(
        checkpoint(
          51,
          [snap('web-1', 0, 50, 'zombie'), snap('web-9', 0, 50, 'zombie')],
          [letter('host', 0, 50, 'z')],
        ),
      ),
    );
    expect(isArgusError(fenced, 'ARGUS_ERR_FENCED')).toBe(true);
    expect((fenced as Error).message).toContain(`'${prefix}.shard.host.0' was fenced`);
    // Fenced for good: the next write fails the same way.
    expect(isArgusError(await failureOf(zombie.write(checkpoint(52))), 'ARGUS_ERR_FENCED')).toBe(true);

    await owner.write(checkpoint(4, [snap('web-2', 0, 3, 'b')]));
    await zombie.close(); // closing fences nobody
    await owner.write(checkpoint(5, [snap('web-2', 0, 4, 'c')]));

    const found = await takeOver(prefix, 'host', [0]);
    expect(found.shards[0]!.size).toBe(2);
    expect(found.shards[0]!.get('web-1')).toEqual(snap('web-1', 0, 1, 'a'));
    expect(found.shards[0]!.get('web-2')).toEqual(snap('web-2', 0, 4, 'c'));
    expect(found.shards[0]!.get('web-9')).toBeUndefined();
    expect(found.deadLetters).toEqual([]);
    expect(found.offsets).toEqual([5]);
  });

  it('aborts the transaction a fenced writer left open when the shard is opened', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-open-txn', [{ kind: 'host', partitions: 1 }]);
    // The zombie is in the middle of a write: records sent, offset added, not committed yet.
    const kafka = createKafka(connection(prefix));
    const zombie = kafka.producer({
      transactionalId: shardTransactionalId(prefix, 'host', 0),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await zombie.connect();
    cleanups.push(() => zombie.disconnect());
    const transaction = await zombie.transaction();
    const sent = await transaction.sendBatch({
      acks: -1,
      topicMessages: [
        { topic: stateTopic(prefix, 'host'), messages: [snapshotMessage(snap('web-1', 0, 90, 'zombie'))] },
        { topic: deadLetterTopic(prefix), messages: [deadLetterMessage(letter('host', 0, 90, 'zombie'))] },
      ],
    });
    expect(sent.map((m) => [m.topicName, m.baseOffset])).toEqual(
      expect.arrayContaining([
        [stateTopic(prefix, 'host'), '0'],
        [deadLetterTopic(prefix), '0'],
      ]),
    );
    await transaction.sendOffsets({
      consumerGroupId: `${prefix}.mailbox`,
      topics: [{ topic: mailboxTopic(prefix, 'host'), partitions: [{ partition: 0, offset: '91' }] }],
    });

    const owner = await checkpoints().open('host', 0);
    const refused = await failureOf(transaction.commit());
    expect(isFencedError(refused)).toBe(true);
    expect((refused as { type?: string }).type).toBe('INVALID_PRODUCER_EPOCH');
    await owner.write(checkpoint(3, [snap('web-2', 0, 2, 'owner')]));

    const found = await takeOver(prefix, 'host', [0]);
    expect(found.shards[0]!.size).toBe(1);
    expect(found.shards[0]!.get('web-2')).toEqual(snap('web-2', 0, 2, 'owner'));
    expect(found.deadLetters).toEqual([]);
    expect(found.offsets).toEqual([3]);
  });

  it('leaves nothing of a failed transaction visible, and writes again afterwards', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-abort', [{ kind: 'host', partitions: 1 }]);
    const writer = await checkpoints().open('host', 0);
    // The snapshot is sent in a first request and lands in the transaction; the dead letter, too big for
    // the broker (message.max.bytes, 1 MiB), fails the second request: the transaction is aborted.
    const huge = { ...letter('host', 0, 7, 'too big'), value: new Uint8Array(1_200_000) };
    const failed = await failureOf(writer.write(checkpoint(8, [snap('web-1', 0, 7, 'lost')], [huge])));
    expect(isArgusError(failed, 'ARGUS_ERR_TRANSPORT')).toBe(true);
    expect((failed as Error).message).toContain('writing a checkpoint of shard host/0 (offset 8) failed');

    const found = await takeOver(prefix, 'host', [0]);
    expect(found.shards[0]!.size).toBe(0);
    expect(found.deadLetters).toEqual([]); // the partition holds an aborted record and its marker only
    expect(found.offsets).toEqual([0]);

    const again = await checkpoints().open('host', 0);
    await again.write(checkpoint(9, [snap('web-1', 0, 8, 'kept')]));
    const after = await takeOver(prefix, 'host', [0]);
    expect(after.shards[0]!.size).toBe(1);
    expect(after.shards[0]!.get('web-1')).toEqual(snap('web-1', 0, 8, 'kept'));
    expect(after.offsets).toEqual([9]);
  });

  it('keeps a writer usable after a write that failed and was aborted', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-reuse', [{ kind: 'host', partitions: 1 }]);
    const writer = await checkpoints().open('host', 0);
    const huge = { ...letter('host', 0, 1, 'too big'), value: new Uint8Array(1_200_000) };
    expect(
      isArgusError(
        await failureOf(writer.write(checkpoint(2, [snap('a', 0, 1, 'x')], [huge]))),
        'ARGUS_ERR_TRANSPORT',
      ),
    ).toBe(true);
    await writer.write(checkpoint(3, [snap('b', 0, 2, 'y')]));
    const found = await takeOver(prefix, 'host', [0]);
    expect(found.shards[0]!.size).toBe(1);
    expect(found.shards[0]!.get('b')).toEqual(snap('b', 0, 2, 'y'));
    expect(found.offsets).toEqual([3]);
  });

  it('refuses unknown kinds, partitions out of range, misplaced snapshots and a closed store', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-misuse', [{ kind: 'host', partitions: 2 }]);
    const store = checkpoints();
    await expect(store.open('log', 0)).rejects.toThrow(
      `ARGUS_ERR_UNKNOWN_KIND: no '${prefix}.state.log' and '${prefix}.mailbox.log' for kind 'log'`,
    );
    await expect(store.open('host', 2)).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: partition 2 of kind 'host' does not exist: the kind has partitions 0..1",
    );
    const writer = await store.open('host', 0);
    await expect(writer.write(checkpoint(2, [snap('web-1', 1, 1, 'x')]))).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: the snapshot of 'web-1' is for partition 1, but this writer writes shard host/0",
    );
    await expect(writer.write(checkpoint(-1))).rejects.toThrow(
      'ARGUS_ERR_INVALID_CONFIG: cannot commit offset -1',
    );
    await writer.write(checkpoint(2, [snap('web-1', 0, 1, 'x')]));
    await store.close();
    await expect(writer.write(checkpoint(3))).rejects.toThrow('ARGUS_ERR_STORE_CLOSED');
    await expect(store.open('host', 1)).rejects.toThrow('ARGUS_ERR_STORE_CLOSED');
    expect((await takeOver(prefix, 'host', [0])).offsets).toEqual([2]);
  });

  it('does not fence the writers of other shards', async () => {
    const kinds = [
      { kind: 'host', partitions: 2 },
      { kind: 'rule', partitions: 2 },
    ];
    const { prefix, checkpoints } = await cluster('checkpoints-shards', kinds);
    const one = checkpoints();
    const other = checkpoints();
    const writers: [string, number, ShardWriter][] = [
      ['host', 0, await one.open('host', 0)],
      ['host', 1, await other.open('host', 1)],
      ['rule', 0, await one.open('rule', 0)],
      ['rule', 1, await other.open('rule', 1)],
    ];
    for (const round of [1, 2]) {
      for (const [kind, partition, writer] of writers) {
        await writer.write(
          checkpoint(10 * round + partition, [snap(`${kind}-${round}`, partition, round, kind)]),
        );
      }
    }
    for (const kind of ['host', 'rule']) {
      const found = await takeOver(prefix, kind, [0, 1]);
      expect(found.offsets).toEqual([20, 21]);
      for (const partition of [0, 1]) {
        expect(found.shards[partition]!.size).toBe(2);
        expect(found.shards[partition]!.get(`${kind}-2`)).toEqual(snap(`${kind}-2`, partition, 2, kind));
      }
    }
  });

  it('writes 16 shards concurrently', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-many', [{ kind: 'host', partitions: 16 }]);
    const store = checkpoints();
    const partitions = [...Array(16).keys()];
    const writers = await Promise.all(partitions.map((p) => store.open('host', p)));
    await Promise.all(
      writers.map(async (writer, p) => {
        for (let i = 1; i <= 5; i++) {
          await writer.write(
            checkpoint(
              i * 10,
              [snap(`web-${p}`, p, i * 10 - 1, `round ${i}`), snap(`db-${p}-${i}`, p, i, 'x')],
              [letter('host', p, i, `shard ${p}`)],
            ),
          );
        }
      }),
    );
    const found = await takeOver(prefix, 'host', partitions);
    expect(found.offsets).toEqual(partitions.map(() => 50));
    for (const p of partitions) {
      expect(found.shards[p]!.size).toBe(6);
      expect(found.shards[p]!.get(`web-${p}`)).toEqual(snap(`web-${p}`, p, 49, 'round 5'));
    }
    expect(found.deadLetters.length).toBe(80);
    for (const p of partitions) {
      expect(found.deadLetters.filter((l) => l.partition === p).map((l) => l.offset)).toEqual([
        1, 2, 3, 4, 5,
      ]);
    }
  });

  it("keeps the snapshot store's live view in step, and still sees what others wrote in between", async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-live', [{ kind: 'host', partitions: 2 }]);
    const snapshots = later(new KafkaSnapshotStore(connection(prefix)));
    const writer = await checkpoints({ snapshots }).open('host', 0);
    const view = await snapshots.openShard('host', 0);
    expect(view.size).toBe(0);

    await writer.write(checkpoint(2, [snap('web-1', 0, 1, 'a')]));
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 1, 'a'));
    await writer.write(checkpoint(3, [snap('web-1', 0, 2, 'b'), snap('web-2', 0, 2, 'c')]));
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 2, 'b'));
    expect(view.size).toBe(2);

    const foreign = later(new KafkaSnapshotStore(connection(prefix)));
    await foreign.save('host', [snap('web-3', 0, 7, 'from elsewhere')]);
    await writer.write(checkpoint(4, [snap('web-1', 0, 3, 'd')]));
    await writer.write(checkpoint(5, [snap('web-2', 0, 4, 'e')]));
    expect(view.get('web-3')).toBeUndefined(); // not ours: seen on the next openShard

    const again = await snapshots.openShard('host', 0);
    expect(again.get('web-3')).toEqual(snap('web-3', 0, 7, 'from elsewhere'));
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 3, 'd'));
    expect(view.get('web-2')).toEqual(snap('web-2', 0, 4, 'e'));
    expect(view.size).toBe(3);
  });

  it('measures the latency of one checkpoint write', async () => {
    const { prefix, checkpoints } = await cluster('checkpoints-latency', [{ kind: 'host', partitions: 1 }]);
    const store = checkpoints();
    const openStarted = performance.now();
    const writer = await store.open('host', 0);
    const openMs = performance.now() - openStarted;
    const writes = 200;
    const durations: number[] = [];
    for (let i = 1; i <= writes; i++) {
      const started = performance.now();
      await writer.write(
        checkpoint(i, [snap(`web-${i % 10}`, 0, i - 1, `state ${i}`), snap('db-1', 0, i - 1, 'x')]),
      );
      durations.push(performance.now() - started);
    }
    durations.sort((a, b) => a - b);
    const at = (q: number): string => durations[Math.min(writes - 1, Math.floor(q * writes))]!.toFixed(1);
    console.log(
      `checkpoint write latency over ${writes} writes (2 snapshots + offset): ` +
        `p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms; open ${openMs.toFixed(1)} ms`,
    );
    expect((await takeOver(prefix, 'host', [0])).offsets).toEqual([writes]);
  });
});
