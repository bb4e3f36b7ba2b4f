/**
 * A checkpoint store composed from any mailbox, snapshot store and dead-letter store — for embedders
 * who bring their own boundaries (fakes in unit tests, say): snapshots and dead letters are saved, then
 * the offset is committed (DESIGN.md, contract 1: an offset is committed only after what covers it is
 * durable). A crash between the steps leaves snapshots ahead of the offset, which replay tolerates
 * (entities skip records at or below their snapshot's offset). It fences nobody, so it suits one node.
 * The built-in stores do better: the journal writes all three in one LMDB transaction
 * (embedded/checkpoints.ts), Kafka in one fenced transaction (kafka/checkpoints.ts).
 */
import type {
  Checkpoint,
  CheckpointStore,
  DeadLetterStore,
  MailboxTransport,
  ShardWriter,
  SnapshotStore,
} from './boundaries.ts';
import { ArgusError } from './errors.ts';

export class SequentialCheckpointStore implements CheckpointStore {
  constructor(
    private readonly mailbox: MailboxTransport,
    private readonly snapshots: SnapshotStore,
    private readonly deadLetters: DeadLetterStore,
  ) {}

  async open(kind: string, partition: number): Promise<ShardWriter> {
    let closed = false;
    return {
      write: async (c: Checkpoint) => {
        if (closed)
          throw new ArgusError(
            'ARGUS_ERR_STORE_CLOSED',
            `the writer of shard ${kind}/${partition} is closed`,
          );
        const outputs = c.outputs ?? [];
        if (outputs.length > 0 && !this.mailbox.appendOutputs)
          throw new ArgusError(
            'ARGUS_ERR_UNKNOWN_STREAM',
            `the ${this.mailbox.name} mailbox cannot store output streams (shard ${kind}/${partition} emitted ${outputs.length} records)`,
            { kind, partition },
          );
        await Promise.all([
          c.snapshots.length > 0 ? this.snapshots.save(kind, c.snapshots) : undefined,
          c.deadLetters.length > 0 ? this.deadLetters.put(c.deadLetters) : undefined,
          outputs.length > 0 ? this.mailbox.appendOutputs?.(outputs) : undefined,
        ]);
        await this.mailbox.commit(kind, partition, c.nextOffset);
      },
      close: async () => {
        closed = true;
      },
    };
  }

  async close(): Promise<void> {}
}
