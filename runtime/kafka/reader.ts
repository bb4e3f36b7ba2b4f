/**
 * Reads offset ranges of a topic's partitions — typically "from where I was to the high watermark as of
 * now" — for the snapshot and dead-letter stores.
 *
 * kafkajs has no manual assignment (tulios/kafkajs#373: "fully manual partition assignment is not
 * something we support"; the maintainers point to custom partition assigners). So the read is a
 * throwaway consumer in a group of its own whose assigner hands it exactly the wanted partitions. It
 * never commits, so the broker drops the empty group when the reader leaves.
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
            if (Number(batch.lastOffset()) + 1 >= end) {
              remaining.delete(batch.partition);
              pause();
              if (remaining.size === 0) resolve();
            }
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
