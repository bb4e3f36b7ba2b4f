/**
 * Entity snapshots in the journal: `snapshots` maps (kind, key) to the latest (partition, offset, state);
 * `shard-keys` lists the keys of each shard so a shard can count its entities without reading every
 * snapshot of the kind. Both are written in one transaction, so they always agree.
 *
 * A shard answers `get` with a synchronous read of the latest commit (refreshed on each call, about a
 * microsecond), so it sees every save that resolved before — this process's or another's — without
 * loading the shard up front.
 */
import type { KindTopology, ShardSnapshots, Snapshot, SnapshotStore } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import { decodeSnapshot, encodeSnapshot } from './codec.ts';
import type { JournalEnv } from './env.ts';
import type { KindRegistry } from './kinds.ts';

/** Keys are parts of LMDB keys (limit ~1,978 bytes with the kind); no NUL, the ordered-binary delimiter. */
const MAX_KEY_BYTES = 1_000;

export class EmbeddedSnapshotStore implements SnapshotStore {
  constructor(
    private readonly env: JournalEnv,
    private readonly kinds: KindRegistry,
  ) {}

  async ensureKinds(kinds: readonly KindTopology[]): Promise<void> {
    this.env.assertOpen('snapshots');
    await this.kinds.ensure(kinds);
  }

  async openShard(kind: string, partition: number): Promise<ShardSnapshots> {
    this.env.assertOpen('snapshots');
    this.kinds.checkPartition(kind, partition);
    return new JournalShard(this.env, kind, partition);
  }

  async save(kind: string, snapshots: readonly Snapshot[]): Promise<void> {
    const write = this.prepareSave(kind, snapshots);
    if (snapshots.length > 0) await this.env.write(write);
  }

  /**
   * Validates snapshots (throwing a clear error) and returns the body that writes them, to run inside a
   * journal write transaction — alone (`save`) or with a checkpoint's other parts (checkpoints.ts).
   */
  prepareSave(kind: string, snapshots: readonly Snapshot[]): () => void {
    this.env.assertOpen('snapshots');
    this.kinds.partitionsOf(kind);
    for (const { key, partition, offset } of snapshots) {
      checkKey(kind, key);
      this.kinds.checkPartition(kind, partition);
      if (!Number.isSafeInteger(offset)) {
        throw new ArgusError(
          'ARGUS_ERR_INVALID_CONFIG',
          `snapshot of ${kind}/${key} has offset ${offset}: an offset is an integer`,
          { kind, key, offset },
        );
      }
    }
    const frames = snapshots.map((s) => encodeSnapshot(s.partition, s.offset, s.state));
    const { snapshots: latest, shardKeys } = this.env.db;
    return () => {
      snapshots.forEach(({ key, partition }, i) => {
        const previous = latest.getBinaryFast([kind, key]);
        const previousPartition = previous ? decodeSnapshot(previous).partition : undefined;
        latest.putSync([kind, key], frames[i]!);
        if (previousPartition === partition) return;
        // A key's partition is hash(key) mod count and so never changes; this only keeps the shard list
        // right if a caller ever saves one under another partition.
        if (previousPartition !== undefined) shardKeys.removeSync([kind, previousPartition, key]);
        shardKeys.putSync([kind, partition, key], true);
      });
    };
  }

  async close(): Promise<void> {
    if (this.env.isOpen('snapshots')) await this.env.release('snapshots');
  }
}

class JournalShard implements ShardSnapshots {
  constructor(
    private readonly env: JournalEnv,
    private readonly kind: string,
    private readonly partition: number,
  ) {}

  get(key: string): Snapshot | undefined {
    this.env.assertOpen('snapshots');
    checkKey(this.kind, key);
    this.env.fresh();
    const frame = this.env.db.snapshots.getBinary([this.kind, key]);
    if (!frame) return undefined;
    const { partition, offset, state } = decodeSnapshot(frame);
    return partition === this.partition ? { key, partition, offset, state } : undefined;
  }

  get size(): number {
    this.env.assertOpen('snapshots');
    this.env.fresh();
    return this.env.db.shardKeys.getCount({
      start: [this.kind, this.partition],
      end: [this.kind, this.partition + 1],
    });
  }
}

const checkKey = (kind: string, key: string): void => {
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.includes('\0') ||
    Buffer.byteLength(key) > MAX_KEY_BYTES
  ) {
    throw new ArgusError(
      'ARGUS_ERR_INVALID_KEY',
      `snapshot key ${JSON.stringify(String(key).slice(0, 80))} of kind '${kind}' is empty, has a NUL or is over ${MAX_KEY_BYTES} bytes`,
      { kind, key },
    );
  }
};
