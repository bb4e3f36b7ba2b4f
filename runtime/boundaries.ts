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
  /**
   * Embedded journal: records of each partition kept once applied (committed); older ones are trimmed
   * at commit. Absent: all are kept. Kafka keeps its topic's retention instead.
   */
  readonly retain?: number;
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
  /** Kinds whose partitions may be assigned to this consumption. */
  readonly kinds: readonly string[];
  /**
   * Called with batches of one partition strictly one at a time: the next batch of the same partition
   * is not delivered until the returned promise settles. Different partitions may run concurrently.
   * A rejected promise re-delivers the same records (from the batch's first offset) after a short pause.
   */
  readonly onBatch: (batch: MailboxBatch) => Promise<void>;
  /** Largest batch handed to onBatch. */
  readonly maxBatch?: number;
  /** Problems that do not stop consumption (a failed fetch, a lost broker), for people to see. */
  readonly report?: (problem: string) => void;
  /** The transport became unreachable (`down`), or reachable again: consumption retries meanwhile. */
  readonly onOutage?: (down: boolean, detail: string) => void;
}

/**
 * A running consumption. It delivers nothing until partitions are assigned to it: the runtime assigns
 * exactly the shards this node owns (all of them in embedded mode; those etcd's placement gives it in a
 * cluster), so the transport never decides ownership itself.
 */
export interface Consumption {
  /** Starts delivering the partition's records from `fromOffset`. Assigning an assigned partition is an error. */
  assign(ref: PartitionRef, fromOffset: number): void;
  /**
   * Stops delivering the partition. Resolves once no batch of it is in flight and none will be
   * delivered; a no-op for a partition not assigned.
   */
  revoke(ref: PartitionRef): Promise<void>;
  /** The partitions assigned now. */
  assigned(): PartitionRef[];
  /** Stops delivering everything; resolves after in-flight batches settled. */
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
  /**
   * Creates (or checks) output streams (`kind` is the stream's name) that checkpoints write into.
   * Optional: a transport without it refuses entities that emit.
   */
  ensureStreams?(streams: readonly KindTopology[]): Promise<void>;
  /** Appends output records outside a checkpoint (the sequential checkpoint store uses it). */
  appendOutputs?(records: readonly OutputRecord[]): Promise<void>;
  /** Reads `max` records of a stream partition from `from` (embedded journal; Kafka readers use topics). */
  readStream?(stream: string, partition: number, from: number, max: number): Promise<MailboxRecord[]>;
  /** Appends records to a kind's mailbox; resolves when they are durable, in order per partition. */
  append(kind: string, records: readonly OutgoingRecord[]): Promise<void>;
  /** The kind's partition (shard) count; ARGUS_ERR_UNKNOWN_KIND if its mailbox does not exist. */
  partitionCount(kind: string): Promise<number>;
  /** Starts a consumption; partitions are then assigned to it explicitly. */
  consume(options: ConsumeOptions): Promise<Consumption>;
  /** Records that every record of the partition before `nextOffset` is done with. Durable on resolve. */
  commit(kind: string, partition: number, nextOffset: number): Promise<void>;
  /**
   * Where consumption of a partition resumes: its committed next offset, or the log start when nothing
   * was committed (0 unless retention removed records).
   */
  committed(kind: string, partition: number): Promise<number>;
  /** The offset the next appended record of the partition will get (the log end). */
  endOffset(kind: string, partition: number): Promise<number>;
  /**
   * Reads up to `max` records of a kind's mailbox partition from `from` (the log search of actors/log).
   * A `from` before the log's start (retention) reads from its start; records past the end are not waited for.
   */
  readMailbox?(kind: string, partition: number, from: number, max: number): Promise<MailboxRecord[]>;
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

/**
 * Which dead letter: the mailbox record it was. Unique, since a record is dead-lettered once (in the
 * checkpoint that moves its shard past it). As text `<kind>:<partition>:<offset>` (kinds hold no ':').
 */
export interface DeadLetterId {
  readonly kind: string;
  readonly partition: number;
  readonly offset: number;
}

export interface DeadLetterStore {
  ensure(): Promise<void>;
  /** Resolves when durable. */
  put(letters: readonly DeadLetter[]): Promise<void>;
  /** Every dead letter stored and not discarded, oldest first (optionally of one kind). */
  list(kind?: string): Promise<DeadLetter[]>;
  /**
   * Discards the letters (after a replay, or because nobody wants them): `list` never returns them
   * again, on any node. Resolves, once durable, to how many of the ids were listed before; ids not
   * stored or already discarded are ignored.
   */
  discard(ids: readonly DeadLetterId[]): Promise<number>;
  close(): Promise<void>;
}

/**
 * A record an entity emitted to an output stream (`ctx.emit`): the metrics stream of host entities,
 * say. It goes to the stream's partition of the emitting shard's number, in the same checkpoint as the
 * state that produced it — so an output is durable exactly when its cause is applied, never twice.
 */
export interface OutputRecord {
  readonly stream: string;
  readonly partition: number;
  /** The emitting entity's key. */
  readonly key: string;
  /** The record, msgpack-encoded. */
  readonly value: Uint8Array;
  /** The record as emitted, kept in memory so that this node's observers need not decode it again. */
  readonly decoded?: unknown;
  /**
   * A message for another entity (`ctx.send`): `stream` is the target kind, `partition` its shard, `key`
   * the target key and `value` an envelope; written to that kind's mailbox, in the same checkpoint.
   */
  readonly mailbox?: true;
}

/**
 * What a shard makes durable after a batch: its entities' new snapshots, its dead letters, its outputs
 * and the mailbox offset past the batch. A writer makes all of them durable together, or none.
 */
export interface Checkpoint {
  readonly snapshots: readonly Snapshot[];
  readonly deadLetters: readonly DeadLetter[];
  /** Records emitted to output streams, in emission order (absent: none). */
  readonly outputs?: readonly OutputRecord[];
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

/** A member of the cluster as it registered itself. */
export interface MemberInfo {
  readonly id: string;
  /** host:port of the node's peer endpoint (ask, inspector), when it serves one. */
  readonly address: string | undefined;
  readonly version: string;
  /** Capacity weight: a member with weight 2 gets about twice the shards of one with weight 1. */
  readonly weight: number;
  /** The entity kinds it runs, with their shard counts. */
  readonly kinds: Readonly<Record<string, number>>;
  /** Wall-clock ms when it joined. */
  readonly joinedAt: number;
}

export interface ShardOwner {
  /** The member the placement gives the shard to; undefined when no member can take it. */
  readonly node: string | undefined;
  /** The placement epoch (etcd revision) at which this owner was assigned. */
  readonly epoch: number;
}

export type CoordinatorStatus = 'starting' | 'active' | 'fenced' | 'stopped';

/** What the coordinator knows: readable through `runtime.cluster()`. */
export interface ClusterView {
  readonly coordinator: 'local' | 'etcd';
  readonly nodeId: string;
  readonly status: CoordinatorStatus;
  readonly leader: string | undefined;
  /** The placement's epoch: the etcd revision of the last placement write (0 locally). */
  readonly epoch: number;
  readonly members: readonly MemberInfo[];
  /** kind → owner of each shard. */
  readonly placement: Readonly<Record<string, readonly ShardOwner[]>>;
  /** The shards running on this node, with the epoch each was acquired at. */
  readonly running: readonly (PartitionRef & { readonly epoch: number })[];
}

/** The node's side of ownership: the runtime starts and stops shards when the coordinator says so. */
export interface ShardHost {
  /**
   * Start the shard: fence earlier writers, load snapshots, consume from the committed offset.
   * A rejection means "not now": the coordinator tries again later while it still owns the shard.
   */
  acquire(ref: PartitionRef, epoch: number): Promise<void>;
  /** Stop the shard gracefully: no new batches, the one in flight finished and committed, closed. */
  release(ref: PartitionRef, reason: string): Promise<void>;
}

/** Who runs which shard (DESIGN.md, contract 4): etcd in a cluster, everything-here on one node. */
export interface Coordinator {
  readonly name: 'local' | 'etcd';
  /** Joins and starts acquiring the shards it owns; resolves once joined (shards follow). */
  start(host: ShardHost, self: Omit<MemberInfo, 'joinedAt'>): Promise<void>;
  view(): ClusterView;
  /** The member that owns the shard by the current placement, if any. */
  ownerOf(kind: string, partition: number): MemberInfo | undefined;
  /** Whether this node holds the shard right now (may open its writer, which fences others). */
  holds(ref: PartitionRef): boolean;
  /** The shard's writer was fenced: another node writes it now. The coordinator releases it here. */
  fenced(ref: PartitionRef): void;
  /** Releases every shard (handoff), leaves the cluster. */
  stop(): Promise<void>;
}

/**
 * Configuration kept as data (DESIGN.md, contract 5): sections (`metricsets`, `inventory`, `rules`, …)
 * of keyed documents, as text (JSON or YAML). etcd in a cluster (`/<prefix>/<section>/<key>`), memory
 * or a file on one node. Validation is the caller's: a source stores and watches text.
 */
export interface ConfigSource {
  readonly name: 'etcd' | 'memory';
  /** Every document of a section, key → text. */
  list(section: string): Promise<Map<string, string>>;
  /**
   * Calls `onChange` with the whole section now and after every change (added, changed, removed), until
   * the returned stop is called. Errors of the watch (etcd unreachable) go to `onError`; it reconnects.
   */
  watch(
    section: string,
    onChange: (entries: ReadonlyMap<string, string>) => void,
    onError?: (error: Error) => void,
  ): Promise<() => Promise<void>>;
  put(section: string, key: string, text: string): Promise<void>;
  /** Resolves to whether the key existed. */
  delete(section: string, key: string): Promise<boolean>;
  close(): Promise<void>;
}
