/**
 * Snapshots in Kafka: one compacted topic per kind, `<prefix>.state.<kind>`, partitioned like the
 * kind's mailbox so that a shard's snapshots live in the partition of the same number. Key = entity key,
 * value = msgpack `{ offset, state }`. Compaction keeps the latest snapshot of each key; a reader still
 * takes the last record per key, since the uncompacted head of the log may hold several.
 *
 * The store keeps an index per partition it has opened (key → latest snapshot, and the offset it has
 * read up to). A ShardSnapshots is a live view of that index: the shard runner keeps the view and asks
 * it again when an entity restarts, so saves made through this store show in it at once.
 *
 * openShard must see every snapshot any process saved before the call: it reads the partition's high
 * watermark and reads what the index lacks up to it. Usually that is nothing (the owner is the only
 * writer and its own saves advance the index), so openShard costs one offsets request. Snapshots written
 * in a checkpoint transaction (checkpoints.ts) are read once committed, up to the last stable offset
 * (reader.ts); a new owner opens the shard's checkpoint writer before openShard, so that the previous
 * owner's last transaction is complete by then. Reads of one kind
 * run one at a time, and calls that arrive meanwhile share the next read (one throwaway consumer for all
 * their partitions).
 */
import { pack, unpack } from 'msgpackr';
import type { KindTopology, ShardSnapshots, Snapshot, SnapshotStore } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import {
  AdminConnection,
  asBuffer,
  asBytes,
  checkPartition,
  createKafka,
  ensureTopics,
  type KafkaConnectionOptions,
  topicPartitionCount,
  transportError,
  watermarks,
} from './client.ts';
import { readPartitions } from './reader.ts';
import { RecordSender, type WrittenRange } from './sender.ts';
import { stateTopic } from './topics.ts';

export interface KafkaSnapshotStoreOptions extends KafkaConnectionOptions {
  /** Extra topic configuration for new state topics (cleanup.policy=compact is always set). */
  readonly topicConfig?: Readonly<Record<string, string>>;
}

interface StoredSnapshot {
  readonly offset: number;
  readonly state: Uint8Array;
}

/** A snapshot as the record of the state topic that stores it (also written by checkpoints.ts). */
export const snapshotMessage = (s: Snapshot): { partition: number; key: string; value: Buffer } => {
  const stored: StoredSnapshot = { offset: s.offset, state: asBuffer(s.state) };
  return { partition: s.partition, key: s.key, value: pack(stored) };
};

/** What this store knows of one partition. */
interface ShardIndex {
  readonly byKey: Map<string, Snapshot>;
  /** Every record of the partition below this offset is reflected in byKey. */
  readUpTo: number;
  /** While a read of the partition runs: saves acknowledged meanwhile, which win over what it read. */
  savedDuringRead: Map<string, Snapshot> | undefined;
  /**
   * A commit marker of one of our checkpoint transactions lies at or after readUpTo, before the records of
   * any later transaction of ours (see committed()).
   */
  ownMarkerAhead: boolean;
}

class LiveShardSnapshots implements ShardSnapshots {
  constructor(private readonly index: ShardIndex) {}
  get(key: string): Snapshot | undefined {
    return this.index.byKey.get(key);
  }
  get size(): number {
    return this.index.byKey.size;
  }
}

type Waiter = (result: ShardSnapshots | Error) => void;

interface KindReads {
  /** Partitions asked for since the running read (if any) started. */
  waiting: Map<number, Waiter[]>;
  running: boolean;
}

const shardKey = (kind: string, partition: number): string => `${kind}\u0000${partition}`;

export class KafkaSnapshotStore implements SnapshotStore {
  private readonly kafka;
  private readonly sender;
  private readonly admin;
  private readonly prefix: string;
  private readonly topicConfig: Readonly<Record<string, string>>;
  private readonly partitions = new Map<string, number>();
  private readonly indexes = new Map<string, ShardIndex>();
  private readonly reads = new Map<string, KindReads>();
  private closed = false;

  constructor(options: KafkaSnapshotStoreOptions) {
    this.kafka = createKafka(options);
    this.sender = new RecordSender(this.kafka);
    this.admin = new AdminConnection(this.kafka);
    this.prefix = options.topicPrefix;
    this.topicConfig = options.topicConfig ?? {};
  }

  async ensureKinds(kinds: readonly KindTopology[]): Promise<void> {
    this.assertOpen();
    const specs = kinds.map(({ kind, partitions }) => ({
      topic: stateTopic(this.prefix, kind),
      partitions,
      config: { ...this.topicConfig, 'cleanup.policy': 'compact' },
    }));
    try {
      await ensureTopics(await this.admin.get(), specs);
    } catch (e) {
      throw transportError('ensuring the state topics', e, { topics: specs.map((s) => s.topic) });
    }
    for (const { kind, partitions } of kinds) this.partitions.set(kind, partitions);
  }

  async save(kind: string, snapshots: readonly Snapshot[]): Promise<void> {
    this.assertOpen();
    const count = await this.partitionsOf(kind);
    const messages = snapshots.map((s) => {
      checkPartition(kind, s.partition, count);
      return snapshotMessage(s);
    });
    const written = await this.sender.send(stateTopic(this.prefix, kind), messages);
    this.saved(kind, snapshots, written);
  }

  async openShard(kind: string, partition: number): Promise<ShardSnapshots> {
    this.assertOpen();
    checkPartition(kind, partition, await this.partitionsOf(kind));
    const result = await new Promise<ShardSnapshots | Error>((resolve) => {
      let reads = this.reads.get(kind);
      if (!reads) {
        reads = { waiting: new Map(), running: false };
        this.reads.set(kind, reads);
      }
      const waiters = reads.waiting.get(partition) ?? [];
      waiters.push(resolve);
      reads.waiting.set(partition, waiters);
      if (!reads.running && reads.waiting.size === 1 && waiters.length === 1)
        setImmediate(() => void this.readNext(kind));
    });
    if (result instanceof Error) throw result;
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sender.close();
    await this.admin.close();
  }

  /** Brings saves acknowledged by the broker into the indexes (before anything else can run). */
  private saved(kind: string, snapshots: readonly Snapshot[], written: readonly WrittenRange[]): void {
    for (const s of snapshots) {
      const index = this.indexes.get(shardKey(kind, s.partition));
      index?.byKey.set(s.key, s);
      index?.savedDuringRead?.set(s.key, s);
    }
    // The request's records of a partition are ours and now in the index: if they start where the index
    // was read up to, the index is complete up to their end and the next openShard need not read them.
    const topic = stateTopic(this.prefix, kind);
    for (const range of written) {
      if (range.topic !== topic) continue;
      const index = this.indexes.get(shardKey(kind, range.partition));
      if (index && index.readUpTo === range.baseOffset) index.readUpTo = range.baseOffset + range.count;
    }
  }

  /**
   * Brings snapshots of a committed checkpoint transaction (checkpoints.ts) into the indexes; `written`
   * are the offset ranges its records took. Call it only after the commit succeeded.
   *
   * Unlike a plain save, a transaction is followed by a commit marker that takes an offset of each
   * partition it wrote, at an unknown place after its records (the broker writes markers after the commit
   * returns, and other producers' records may come first). So readUpTo moves past our records only when
   * they provably follow it with nothing unknown in between: they start at readUpTo, or they start one
   * past readUpTo while the marker of our previous transaction is known to lie at or after readUpTo — a
   * writer's next transaction starts only once its previous one's markers are written, so that marker
   * lies in [readUpTo, base) and, that range being one offset, is exactly the record at readUpTo.
   */
  committed(kind: string, snapshots: readonly Snapshot[], written: readonly WrittenRange[]): void {
    for (const s of snapshots) {
      const index = this.indexes.get(shardKey(kind, s.partition));
      index?.byKey.set(s.key, s);
      index?.savedDuringRead?.set(s.key, s);
    }
    const topic = stateTopic(this.prefix, kind);
    const byPartition = new Map<number, WrittenRange[]>();
    for (const range of written) {
      if (range.topic !== topic || range.count === 0) continue;
      byPartition.set(range.partition, [...(byPartition.get(range.partition) ?? []), range]);
    }
    for (const [partition, ranges] of byPartition) {
      const index = this.indexes.get(shardKey(kind, partition));
      if (!index) continue;
      ranges.sort((a, b) => a.baseOffset - b.baseOffset);
      let provable = index.ownMarkerAhead;
      for (const range of ranges) {
        if (range.baseOffset === index.readUpTo || (provable && range.baseOffset === index.readUpTo + 1))
          index.readUpTo = range.baseOffset + range.count;
        provable = false; // within one transaction there is no marker between its requests
      }
      // This transaction's marker follows its last record; it is ahead unless a read went past that.
      const last = ranges[ranges.length - 1]!;
      index.ownMarkerAhead = index.readUpTo <= last.baseOffset + last.count;
    }
  }

  /** Answers the partitions asked for so far with one read, then the ones asked for meanwhile. */
  private async readNext(kind: string): Promise<void> {
    const reads = this.reads.get(kind);
    if (!reads || reads.running || reads.waiting.size === 0) return;
    const waiting = reads.waiting;
    reads.waiting = new Map();
    reads.running = true;
    let outcome: Error | undefined;
    try {
      await this.catchUp(kind, [...waiting.keys()]);
    } catch (e) {
      outcome = e instanceof Error ? e : new Error(String(e));
    }
    for (const [partition, waiters] of waiting) {
      const index = this.indexes.get(shardKey(kind, partition));
      const result = outcome ?? new LiveShardSnapshots(index!);
      for (const resolve of waiters) resolve(result);
    }
    reads.running = false;
    if (reads.waiting.size > 0) setImmediate(() => void this.readNext(kind));
  }

  /** Reads each partition from where its index stops to the current high watermark. */
  private async catchUp(kind: string, partitions: readonly number[]): Promise<void> {
    const topic = stateTopic(this.prefix, kind);
    let ends: Map<number, { low: number; high: number }>;
    try {
      ends = await watermarks(await this.admin.get(), topic);
    } catch (e) {
      throw transportError(`reading the end offsets of '${topic}'`, e, { topic });
    }
    const indexes = new Map<number, ShardIndex>();
    for (const partition of partitions) {
      const key = shardKey(kind, partition);
      let index = this.indexes.get(key);
      if (!index) {
        index = {
          byKey: new Map(),
          readUpTo: ends.get(partition)?.low ?? 0,
          savedDuringRead: undefined,
          ownMarkerAhead: false,
        };
        this.indexes.set(key, index);
      }
      indexes.set(partition, index);
    }
    const ranges = [...indexes].map(([partition, index]) => ({
      partition,
      from: index.readUpTo,
      to: ends.get(partition)?.high ?? 0,
    }));
    const toRead = ranges.filter((r) => r.from < r.to);
    if (toRead.length === 0) return;

    // Latest record per key of what is read (null = deleted), applied to the index once complete.
    const read = new Map<number, Map<string, Snapshot | null>>(toRead.map((r) => [r.partition, new Map()]));
    for (const r of toRead) indexes.get(r.partition)!.savedDuringRead = new Map();
    try {
      await readPartitions(this.kafka, {
        topic,
        ranges: toRead,
        groupPrefix: `${this.prefix}.state-reader`,
        onRecord: ({ partition, offset, key, value }) => {
          if (key === null) return; // not ours: we always write a key
          const entity = key.toString('utf8');
          const found =
            value === null
              ? null
              : { key: entity, partition, ...decodeSnapshot(topic, partition, offset, value) };
          read.get(partition)!.set(entity, found);
        },
      });
      for (const r of toRead) {
        const index = indexes.get(r.partition)!;
        for (const [entity, found] of read.get(r.partition)!) {
          if (index.savedDuringRead!.has(entity)) continue;
          if (found === null) index.byKey.delete(entity);
          else index.byKey.set(entity, found);
        }
        if (r.to > index.readUpTo) {
          index.readUpTo = r.to;
          index.ownMarkerAhead = false; // the marker may be behind us now; nothing is known past r.to
        }
      }
    } finally {
      for (const r of toRead) indexes.get(r.partition)!.savedDuringRead = undefined;
    }
  }

  private async partitionsOf(kind: string): Promise<number> {
    const known = this.partitions.get(kind);
    if (known !== undefined) return known;
    const topic = stateTopic(this.prefix, kind);
    const count = await topicPartitionCount(await this.admin.get(), topic);
    if (count === undefined) {
      throw new ArgusError(
        'ARGUS_ERR_UNKNOWN_KIND',
        `no state topic '${topic}' for kind '${kind}': call ensureKinds first`,
        { kind, topic },
      );
    }
    this.partitions.set(kind, count);
    return count;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new ArgusError('ARGUS_ERR_STORE_CLOSED', `the snapshot store of '${this.prefix}' is closed`);
  }
}

const decodeSnapshot = (topic: string, partition: number, offset: number, value: Buffer): StoredSnapshot => {
  let decoded: unknown;
  try {
    decoded = unpack(value);
  } catch {
    decoded = undefined; // reported below, with where it is
  }
  const stored = (typeof decoded === 'object' && decoded !== null ? decoded : {}) as Partial<StoredSnapshot>;
  if (typeof stored.offset !== 'number' || !(stored.state instanceof Uint8Array)) {
    throw new ArgusError(
      'ARGUS_ERR_DECODE',
      `snapshot at '${topic}' partition ${partition} offset ${offset} is not msgpack { offset, state }`,
      { topic, partition, offset },
    );
  }
  const state = Buffer.isBuffer(stored.state) ? asBytes(stored.state) : stored.state;
  return { offset: stored.offset, state };
};
