/**
 * Which kinds the journal knows and their partition counts, shared by the mailbox and the snapshot store.
 * A kind's partition count is part of the data's meaning (an entity's shard is hash(key) mod count), so
 * once written it never changes: asking for another count is a configuration error, not a migration.
 */
import type { KindTopology } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import type { JournalEnv } from './env.ts';

/** Kind names are parts of LMDB keys: no NUL (the ordered-binary delimiter) and well under the key limit. */
const MAX_KIND_BYTES = 200;
/** Far above any sensible shard count; keeps a typo from creating a million partitions. */
const MAX_PARTITIONS = 65_536;

interface Conflict {
  readonly kind: string;
  readonly stored: number;
  readonly requested: number;
}

export class KindRegistry {
  /** Counts already read or written; a kind's count never changes, so the cache never goes stale. */
  private readonly known = new Map<string, number>();

  constructor(private readonly env: JournalEnv) {}

  async ensure(kinds: readonly KindTopology[]): Promise<void> {
    const requested = validateTopology(kinds);
    const missing = [...requested].filter(([kind, partitions]) => this.stored(kind) !== partitions);
    if (missing.length === 0) return;
    // Check and write in one write transaction: two processes ensuring the same new kind with different
    // counts must not both succeed.
    const conflict = await this.env.write((): Conflict | undefined => {
      for (const [kind, partitions] of missing) {
        const stored = this.env.db.kinds.get(kind);
        if (stored !== undefined && stored !== partitions) return { kind, stored, requested: partitions };
      }
      for (const [kind, partitions] of missing) this.env.db.kinds.putSync(kind, partitions);
      return undefined;
    });
    if (conflict) throw conflictError(conflict);
    for (const [kind, partitions] of missing) this.known.set(kind, partitions);
  }

  /** The partition count of a kind ensured by this or another process; throws if there is none. */
  partitionsOf(kind: string): number {
    const partitions = this.known.get(kind) ?? this.stored(kind);
    if (partitions === undefined) {
      throw new ArgusError(
        'ARGUS_ERR_UNKNOWN_KIND',
        `the embedded journal has no kind '${kind}': call ensureKinds with it first`,
        { kind },
      );
    }
    return partitions;
  }

  /** Throws unless `partition` is one of the kind's partitions. */
  checkPartition(kind: string, partition: number): void {
    const partitions = this.partitionsOf(kind);
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `partition ${partition} of kind '${kind}' does not exist: the kind has partitions 0..${partitions - 1}`,
        { kind, partition, partitions },
      );
    }
  }

  private stored(kind: string): number | undefined {
    const cached = this.known.get(kind);
    if (cached !== undefined) return cached;
    this.env.fresh();
    const stored = this.env.db.kinds.get(kind);
    if (stored !== undefined) this.known.set(kind, stored);
    return stored;
  }
}

/** Validates names and counts, and folds repeats of a kind within one call; returns kind → count. */
const validateTopology = (kinds: readonly KindTopology[]): Map<string, number> => {
  const byKind = new Map<string, number>();
  for (const { kind, partitions } of kinds) {
    if (typeof kind !== 'string' || kind.length === 0 || kind.includes('\0')) {
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `kind name ${JSON.stringify(kind)} is invalid`, {
        field: 'kind',
        kind,
      });
    }
    if (Buffer.byteLength(kind) > MAX_KIND_BYTES) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `kind name '${kind.slice(0, 40)}…' is longer than ${MAX_KIND_BYTES} bytes`,
        { field: 'kind', kind },
      );
    }
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `kind '${kind}' has partition count ${partitions}: it must be an integer from 1 to ${MAX_PARTITIONS}`,
        { field: 'partitions', kind, partitions },
      );
    }
    const earlier = byKind.get(kind);
    if (earlier !== undefined && earlier !== partitions) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `kind '${kind}' is listed twice, with ${earlier} and with ${partitions} partitions`,
        { field: 'partitions', kind, partitions: earlier, requested: partitions },
      );
    }
    byKind.set(kind, partitions);
  }
  return byKind;
};

const conflictError = ({ kind, stored, requested }: Conflict): ArgusError =>
  new ArgusError(
    'ARGUS_ERR_INVALID_CONFIG',
    `kind '${kind}' has ${stored} partitions in the embedded journal, not ${requested}: ` +
      'a partition count is fixed once created',
    { kind, partitions: stored, requested },
  );
