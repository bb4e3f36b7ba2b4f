/**
 * The boundary interfaces of Argus (DESIGN.md, "Boundaries"). Domain code sees only these; each has a
 * real implementation (Kafka, etcd, …) and an embedded one (LMDB journal, local), injected at start.
 *
 * Offsets are plain numbers: a partition's offsets start at 0 and grow by one per record, which keeps
 * them exact far past any partition we will ever write (2^53).
 */

/** One kind's mailbox layout: the kind's name and its fixed shard (partition) count. */
export interface KindTopology {
  readonly kind: string;
  readonly partitions: number;
}

/** A record to append to a kind's mailbox. `value` is an encoded envelope (runtime/envelope.ts). */
export interface OutgoingRecord {
  readonly partition: number;
  readonly key: string;
  readonly value: Uint8Array;
}

/** A record read back from a mailbox partition. */
export interface MailboxRecord {
  readonly partition: number;
  readonly offset: number;
  /** The entity key the record was appended with; undefined if the transport had none (foreign writes). */
  readonly key: string | undefined;
  readonly value: Uint8Array;
}

/** A run of consecutive records of one partition, in offset order. */
export interface MailboxBatch {
  readonly kind: string;
  readonly partition: number;
  readonly records: readonly MailboxRecord[];
}

export interface PartitionRef {
  readonly kind: string;
  readonly partition: number;
}

export interface ConsumeOptions {
  /** Kinds whose partitions this node may be given. */
  readonly kinds: readonly string[];
  /**
   * Which partitions of a kind this node owns. Called at assignment time; the embedded transport owns
   * every partition. (Issue 3 plugs placement in here.)
   */
  readonly owns?: (ref: PartitionRef) => boolean;
  /** Called before the first batch of a newly assigned partition, with the offset consumption starts at. */
  readonly onAssigned: (ref: PartitionRef, startOffset: number) => Promise<void>;
  /** Called when a partition is taken away (rebalance, stop). No batch of it is in flight after this. */
  readonly onRevoked: (ref: PartitionRef) => Promise<void>;
  /**
   * Called with batches of one partition strictly one at a time: the next batch of the same partition
   * is not delivered until the returned promise settles. Different partitions may run concurrently.
   * A rejected promise re-delivers from the last committed offset after a short pause.
   */
  readonly onBatch: (batch: MailboxBatch) => Promise<void>;
  /** Largest batch handed to onBatch. */
  readonly maxBatch?: number;
}

export interface Consumption {
  /** Stops delivering; resolves after in-flight batches settled and onRevoked ran for every partition. */
  stop(): Promise<void>;
}

/**
 * The durable queue of entity messages. Delivery is at-least-once: a record is delivered again after a
 * restart unless an offset past it was committed.
 */
export interface MailboxTransport {
  readonly name: 'kafka' | 'embedded';
  /** Creates (or checks) the mailbox of each kind with its partition count. Idempotent. */
  ensureKinds(kinds: readonly KindTopology[]): Promise<void>;
  /** Appends records to a kind's mailbox; resolves when they are durable, in order per partition. */
  append(kind: string, records: readonly OutgoingRecord[]): Promise<void>;
  /** Starts consuming; each partition starts at its committed offset (0 if none). */
  consume(options: ConsumeOptions): Promise<Consumption>;
  /** Records that every record of the partition before `nextOffset` is done with. Durable on resolve. */
  commit(kind: string, partition: number, nextOffset: number): Promise<void>;
  /** The committed next offset of a partition, 0 if none. */
  committed(kind: string, partition: number): Promise<number>;
  /** The offset the next appended record of the partition will get (the log end). */
  endOffset(kind: string, partition: number): Promise<number>;
  close(): Promise<void>;
}

/** An entity's state, stored with the mailbox offset of the last message it includes. */
export interface Snapshot {
  readonly key: string;
  readonly partition: number;
  /** Offset of the last mailbox record whose effect the state includes. */
  readonly offset: number;
  /** The encoded state (msgpack). */
  readonly state: Uint8Array;
}

/** The snapshots of one shard, loaded when the shard is taken. */
export interface ShardSnapshots {
  get(key: string): Snapshot | undefined;
  /** Number of entities with a snapshot in this shard. */
  readonly size: number;
}

export interface SnapshotStore {
  ensureKinds(kinds: readonly KindTopology[]): Promise<void>;
  /** Loads what is needed to answer get() for every key of the shard. */
  openShard(kind: string, partition: number): Promise<ShardSnapshots>;
  /** Saves snapshots; resolves when durable. Later saves of a key replace earlier ones. */
  save(kind: string, snapshots: readonly Snapshot[]): Promise<void>;
  close(): Promise<void>;
}

/** A message that could not be processed, kept with why. */
export interface DeadLetter {
  readonly kind: string;
  readonly partition: number;
  readonly offset: number;
  /** Entity key, when the record had one. */
  readonly key: string | undefined;
  /** Why it was dead-lettered: 'crashed' (N failed attempts), 'undecodable', 'unknown-version', … */
  readonly reason: string;
  /** Human readable detail: the error text of the last attempt or the decoder's complaint. */
  readonly error: string;
  readonly attempts: number;
  /** Wall-clock ms when it was dead-lettered. */
  readonly at: number;
  /** The record's raw bytes, as read from the mailbox. */
  readonly value: Uint8Array;
}

export interface DeadLetterStore {
  ensure(): Promise<void>;
  /** Resolves when durable. */
  put(letters: readonly DeadLetter[]): Promise<void>;
  /** Every dead letter stored, oldest first (optionally of one kind). */
  list(kind?: string): Promise<DeadLetter[]>;
  close(): Promise<void>;
}

/**
 * What a shard makes durable after a batch: its entities' new snapshots, its dead letters, and the
 * mailbox offset past the batch. A writer makes all three durable together, or none of them.
 */
export interface Checkpoint {
  readonly snapshots: readonly Snapshot[];
  readonly deadLetters: readonly DeadLetter[];
  /** Every record of the partition before this offset is done with. */
  readonly nextOffset: number;
}

/**
 * The only way a shard's owner writes its progress (DESIGN.md, contracts 1 and 4). Opening one fences
 * every earlier writer of the same shard: once `open` resolved here, a write through a writer opened
 * before (a zombie owner's) fails with ARGUS_ERR_FENCED instead of landing.
 */
export interface ShardWriter {
  /** Resolves when the checkpoint is durable; on rejection nothing of it is visible. */
  write(checkpoint: Checkpoint): Promise<void>;
  /** Releases the writer (after the last write); never fences anyone. */
  close(): Promise<void>;
}

export interface CheckpointStore {
  /** Opens the writer of a shard, fencing earlier ones. */
  open(kind: string, partition: number): Promise<ShardWriter>;
  close(): Promise<void>;
}

/** Time, injected. Logic never reads Date.now() itself. */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now(): number;
  /** Monotonic milliseconds, for measuring durations. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: unknown;
}
