/**
 * Reads offset ranges of a topic's partitions — typically "from where I was to the high watermark as of
 * now" — for the snapshot and dead-letter stores.
 *
 * kafkajs has no manual assignment (tulios/kafkajs#373: "fully manual partition assignment is not
 * something we support"; the maintainers point to custom partition assigners). So the read is a
 * throwaway consumer in a group of its own whose assigner hands it exactly the wanted partitions. It
 * never commits, so the broker drops the empty group when the reader leaves.
 *
 * Transactions (checkpoints.ts writes state and dead letters in them). The consumer reads committed
 * records only (kafkajs' default isolation): records of aborted transactions and the control records
 * (commit/abort markers) are never handed to onRecord, though they take offsets. A fetch never returns
 * anything at or past the partition's last stable offset (LSO: the first offset of a transaction still
 * open), so a range should end at or before the LSO — which is what `watermarks()` (client.ts) reports as
 * `high`, since kafkajs' admin lists offsets read_committed. Reads thus stop at the LSO and never wait for
 * another producer's open transaction; a range that does reach past the LSO waits until that transaction
 * ends (commit, abort, or the broker's transaction timeout) or the read times out.
 */
import { randomUUID } from 'node:crypto';
import { AssignerProtocol, type Kafka, type PartitionAssigner } from 'kafkajs';
import { ArgusError } from '../errors.ts';
import { transportError } from './client.ts';

export interface ReadRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Records [from, to) of one partition. */
export interface ReadRange {
  readonly partition: number;
  readonly from: number;
  readonly to: number;
}

export interface ReadOptions {
  readonly topic: string;
  /** What to read; empty ranges (from >= to) are skipped. */
  readonly ranges: readonly ReadRange[];
  /** Group id prefix of the throwaway consumer, so readers are recognisable in the group list. */
  readonly groupPrefix: string;
  /** Called for every record in the ranges, in offset order per partition. */
  readonly onRecord: (record: ReadRecord) => void;
  /** Gives up with ARGUS_ERR_TIMEOUT after this long. Default 60 s. */
  readonly timeoutMs?: number;
}

const ASSIGNER_NAME = 'ArgusReadPartitions';

/** Gives the first member (there is only one) exactly `partitions` of `topic`. */
const assignExactly =
  (topic: string, partitions: readonly number[]): PartitionAssigner =>
  () => ({
    name: ASSIGNER_NAME,
    version: 1,
    async assign({ members }) {
      return members.map((member, i) => ({
        memberId: member.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: i === 0 ? { [topic]: [...partitions] } : {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: ASSIGNER_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
      };
    },
  });

/** Reads the ranges. Resolves when every record in them was handed to onRecord. */
export const readPartitions = async (kafka: Kafka, options: ReadOptions): Promise<void> => {
  const { topic, onRecord } = options;
  const ranges = new Map(options.ranges.filter((r) => r.from < r.to).map((r) => [r.partition, r]));
  if (ranges.size === 0) return;

  const consumer = kafka.consumer({
    groupId: `${options.groupPrefix}.${randomUUID()}`,
    partitionAssigners: [assignExactly(topic, [...ranges.keys()])],
    maxBytesPerPartition: 8 * 1024 * 1024,
    maxBytes: 32 * 1024 * 1024,
    maxWaitTimeInMs: 100,
    retry: { retries: 5 },
  });
  const remaining = new Set(ranges.keys());
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      /** Marks the partition done if the fetch that ended at lastOffset reached its range's end. */
      const reached = (partition: number, lastOffset: number, pause: () => void): void => {
        const range = ranges.get(partition);
        if (range === undefined || !remaining.has(partition) || lastOffset + 1 < range.to) return;
        remaining.delete(partition);
        pause();
        if (remaining.size === 0) resolve();
      };
      timer = setTimeout(
        () =>
          reject(
            new ArgusError(
              'ARGUS_ERR_TIMEOUT',
              `reading '${topic}' partitions ${[...remaining].join(', ')} to their end took longer than ${timeoutMs} ms`,
              { topic, partitions: [...remaining] },
            ),
          ),
        timeoutMs,
      );
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) reject(transportError(`reading '${topic}'`, payload.error, { topic }));
      });
      // A fetch whose records were all filtered out (control records, aborted transactions) never reaches
      // eachBatch: kafkajs only moves past it and reports it as a batch of size 0. A range ending in such
      // records (a partition whose last transaction was aborted, or our own commit marker) ends here.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.topic !== topic || payload.batchSize > 0) return;
        reached(payload.partition, Number(payload.lastOffset), () =>
          consumer.pause([{ topic, partitions: [payload.partition] }]),
        );
      });
      // Start each partition at its range: seeks made on joining apply to the first fetch.
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const { partition, from } of ranges.values()) {
          if (from > 0) consumer.seek({ topic, partition, offset: String(from) });
        }
      });
      const run = async (): Promise<void> => {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          partitionsConsumedConcurrently: Math.min(ranges.size, 8),
          eachBatch: async ({ batch, pause }) => {
            const range = ranges.get(batch.partition);
            if (range === undefined || !remaining.has(batch.partition)) return;
            const end = range.to;
            try {
              for (const m of batch.messages) {
                const offset = Number(m.offset);
                if (offset >= end) break;
                if (offset < range.from) continue;
                onRecord({ partition: batch.partition, offset, key: m.key, value: m.value });
              }
            } catch (e) {
              // The caller could not use a record (undecodable): fail the read, do not retry it forever.
              pause();
              reject(e);
              return;
            }
            // lastOffset() also covers trailing records that compaction or control batches hid from us.
            reached(batch.partition, Number(batch.lastOffset()), pause);
          },
        });
      };
      run().catch((e: unknown) => reject(transportError(`reading '${topic}'`, e, { topic })));
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
};
