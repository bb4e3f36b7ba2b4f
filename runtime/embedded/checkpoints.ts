/**
 * The journal's checkpoint store: a shard's snapshots, dead letters and committed offset written in
 * **one** LMDB transaction — all of it durable together or none (DESIGN.md, contract 1), and one commit
 * instead of three. No fencing is needed: one node owns the journal (the local coordinator).
 */
import type { Checkpoint, CheckpointStore, ShardWriter } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import type { EmbeddedDeadLetterStore } from './deadletters.ts';
import type { JournalEnv } from './env.ts';
import type { EmbeddedMailbox } from './mailbox.ts';
import type { EmbeddedSnapshotStore } from './snapshots.ts';

export class EmbeddedCheckpointStore implements CheckpointStore {
  constructor(
    private readonly env: JournalEnv,
    private readonly mailbox: EmbeddedMailbox,
    private readonly snapshots: EmbeddedSnapshotStore,
    private readonly deadLetters: EmbeddedDeadLetterStore,
  ) {}

  async open(kind: string, partition: number): Promise<ShardWriter> {
    await this.mailbox.partitionCount(kind);
    this.mailbox.checkPartition(kind, partition);
    let closed = false;
    return {
      write: async (c: Checkpoint) => {
        if (closed)
          throw new ArgusError(
            'ARGUS_ERR_STORE_CLOSED',
            `the writer of shard ${kind}/${partition} is closed`,
          );
        for (const s of c.snapshots) {
          if (s.partition !== partition)
            throw new ArgusError(
              'ARGUS_ERR_INVALID_CONFIG',
              `a checkpoint of shard ${kind}/${partition} holds a snapshot of partition ${s.partition}`,
              { kind, partition, key: s.key },
            );
        }
        const outputs = c.outputs && c.outputs.length > 0 ? this.mailbox.prepareOutputs(c.outputs) : [];
        const parts = [
          this.snapshots.prepareSave(kind, c.snapshots),
          this.deadLetters.preparePut(c.deadLetters),
          ...outputs.map((o) => o.body),
          this.mailbox.prepareCommit(kind, partition, c.nextOffset),
        ];
        await this.env.write(() => {
          for (const part of parts) part();
        });
        for (const o of outputs) o.done();
      },
      close: async () => {
        closed = true;
      },
    };
  }

  async close(): Promise<void> {}
}
