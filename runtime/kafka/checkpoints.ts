/**
 * Shard checkpoints in Kafka (DESIGN.md, contracts 1 and 4): a shard's new snapshots, its dead letters
 * and its mailbox offset made durable together by one Kafka transaction — the mechanism of Kafka
 * Streams' exactly-once. The snapshots go to the state topic's partition of the shard's number, the dead
 * letters to the dead-letter topic (encoded exactly as KafkaSnapshotStore / KafkaDeadLetterStore write
 * them), and the offset to the offsets group (`<prefix>.mailbox`) with `sendOffsets`; the commit makes all
 * of it visible at once, an abort none of it.
 *
 * Fencing. Each shard has one transactional id, `<prefix>.shard.<kind>.<partition>`. Opening a writer
 * runs InitProducerId for it, which bumps the id's epoch and aborts a transaction the previous holder
 * left open; from then on the broker refuses every request of an older epoch. (kafkajs 2.2.4 does not
 * run it in `connect()` — that only initialises a plain idempotent producer id — but in the producer's
 * first `transaction()`, so `open` begins and ends an empty transaction to make the fence happen before
 * it resolves.) A zombie's later write fails with ARGUS_ERR_FENCED: kafkajs raises the broker's
 * INVALID_PRODUCER_EPOCH (47) on AddPartitionsToTxn, AddOffsetsToTxn or EndTxn; PRODUCER_FENCED (90),
 * which kafkajs does not know and reports as "Unknown error code 90", is taken the same way. The same
 * errors come when the broker aborted a transaction that outlived `transactionTimeoutMs`: either way the
 * writer is done.
 *
 * After a failed write: if the transaction could be aborted, the writer is usable for the next write.
 * If it could not — the commit itself failed (its outcome may then be unknown: it may have landed), or
 * the abort failed — kafkajs' transactional producer is stuck, and a new producer would re-run
 * InitProducerId, which would silently fence the shard's legitimate owner if this node has lost the
 * shard meanwhile. So the writer does not repair itself: every later write fails, and **after a failed
 * write the caller must open a new writer (which fences) only if it still owns the shard**.
 *
 * Visibility. `write` resolves when the broker has logged the commit; the commit markers that make the
 * records readable are written by the broker a moment later. Readers stop at the last stable offset
 * (reader.ts), so another process may briefly not see a write that resolved. A new owner sees every
 * earlier checkpoint of the shard when it opens the shard's writer first, then reads: the broker answers
 * that open only once the previous writer's last transaction is complete, markers included.
 */
import type { Kafka, Message, Producer, RecordMetadata, Transaction } from 'kafkajs';
import type { Checkpoint, CheckpointStore, ShardWriter } from '../boundaries.ts';
import { ArgusError, describeError } from '../errors.ts';
import {
  AdminConnection,
  asBuffer,
  checkPartition,
  createKafka,
  type KafkaConnectionOptions,
  partitionCounts,
  topicPartitionCount,
  transportError,
} from './client.ts';
import { deadLetterMessage } from './deadletters.ts';
import type { WrittenRange } from './sender.ts';
import { type KafkaSnapshotStore, snapshotMessage } from './snapshots.ts';
import { deadLetterTopic, mailboxTopic, stateTopic, streamTopic } from './topics.ts';

export interface KafkaCheckpointStoreOptions extends KafkaConnectionOptions {
  /** Told of every committed checkpoint, so that its live shard views show the new snapshots at once. */
  readonly snapshots?: KafkaSnapshotStore;
  /** The group that holds the mailbox offsets. Default `<topicPrefix>.mailbox`, as KafkaMailbox's. */
  readonly offsetsGroupId?: string;
  /**
   * The broker aborts a transaction open longer than this, and its writer is fenced. It bounds how long a
   * crashed writer's open transaction holds back readers of the partitions it wrote (the dead-letter
   * partition is shared by every shard) when no new owner opens the shard. Default 10 s, Kafka Streams'
   * exactly-once default; the broker's transaction.max.timeout.ms (15 min) caps it.
   */
  readonly transactionTimeoutMs?: number;
  /**
   * Upper bound of one produce request of a checkpoint (keys + values + a per-record allowance); a bigger
   * checkpoint is sent in several requests of the same transaction. Kept under the broker's default
   * message.max.bytes (1 MiB). Default 900 000.
   */
  readonly maxRequestBytes?: number;
  /**
   * Pause between the end of a writer's transaction and the start of its next one. The broker refuses
   * the next transaction (CONCURRENT_TRANSACTIONS) until it has written the previous one's commit markers,
   * 1–4 ms on a local broker; asking earlier costs a failed request, a 10 ms retry and two error lines in
   * kafkajs' log. Default 5 ms; 0 never waits (a refused start is still retried).
   */
  readonly settleMs?: number;
}

/** The transactional id of a shard's writer: one per shard, so that opening one fences the others. */
export const shardTransactionalId = (prefix: string, kind: string, partition: number): string =>
  `${prefix}.shard.${kind}.${partition}`;

interface Settings {
  readonly prefix: string;
  readonly offsetsGroupId: string;
  readonly transactionTimeoutMs: number;
  readonly maxRequestBytes: number;
  readonly settleMs: number;
  readonly snapshots: KafkaSnapshotStore | undefined;
}

export class KafkaCheckpointStore implements CheckpointStore {
  private readonly kafka: Kafka;
  private readonly admin: AdminConnection;
  private readonly settings: Settings;
  /** Partition counts of each kind's state and mailbox topics, as found on the cluster. */
  private readonly kinds = new Map<string, { state: number; mailbox: number }>();
  private readonly writers = new Set<KafkaShardWriter>();
  private deadLetterTopicSeen = false;
  private closed = false;

  constructor(options: KafkaCheckpointStoreOptions) {
    this.kafka = createKafka(options);
    this.admin = new AdminConnection(this.kafka);
    const transactionTimeoutMs = options.transactionTimeoutMs ?? 10_000;
    if (!Number.isInteger(transactionTimeoutMs) || transactionTimeoutMs < 1_000) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `transactionTimeoutMs ${transactionTimeoutMs} must be an integer of at least 1000`,
        { field: 'transactionTimeoutMs', transactionTimeoutMs },
      );
    }
    this.settings = {
      prefix: options.topicPrefix,
      offsetsGroupId: options.offsetsGroupId ?? `${options.topicPrefix}.mailbox`,
      transactionTimeoutMs,
      maxRequestBytes: options.maxRequestBytes ?? 900_000,
      settleMs: options.settleMs ?? 5,
      snapshots: options.snapshots,
    };
  }

  /**
   * Opens the writer of a shard: resolves once every earlier writer of the shard is fenced and a
   * transaction it left open is aborted (which can take a few hundred ms: kafkajs retries the open while
   * the broker completes the abort). The kind's state and mailbox topics must exist.
   */
  async open(kind: string, partition: number): Promise<ShardWriter> {
    this.assertOpen();
    const counts = await this.countsOf(kind);
    checkPartition(kind, partition, Math.min(counts.state, counts.mailbox));
    const transactionalId = shardTransactionalId(this.settings.prefix, kind, partition);
    const producer = this.kafka.producer({
      transactionalId,
      transactionTimeout: this.settings.transactionTimeoutMs,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Short first retry: a transaction's first request gets CONCURRENT_TRANSACTIONS until the broker has
      // written the previous transaction's markers (a few ms); kafkajs' default first wait is 300 ms.
      // Bounded, so that a dead cluster fails writes instead of hanging them.
      retry: { retries: 10, initialRetryTime: 10, maxRetryTime: 2_000 },
    });
    try {
      await producer.connect();
      await (await producer.transaction()).abort(); // InitProducerId: the fence (nothing to abort here)
    } catch (e) {
      await producer.disconnect().catch(() => undefined);
      throw transportError(`opening the checkpoint writer '${transactionalId}'`, e, { kind, partition });
    }
    const writer = new KafkaShardWriter(kind, partition, producer, this.settings, {
      checkDeadLetterTopic: () => this.checkDeadLetterTopic(),
      closed: (w) => this.writers.delete(w),
    });
    if (this.closed) {
      await writer.close();
      this.assertOpen();
    }
    this.writers.add(writer);
    return writer;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.writers].map((w) => w.close()));
    await this.admin.close();
  }

  private async countsOf(kind: string): Promise<{ state: number; mailbox: number }> {
    const known = this.kinds.get(kind);
    if (known) return known;
    const state = stateTopic(this.settings.prefix, kind);
    const mailbox = mailboxTopic(this.settings.prefix, kind);
    let counts: Map<string, number>;
    try {
      counts = await partitionCounts(await this.admin.get(), [state, mailbox]);
    } catch (e) {
      throw transportError(`reading the metadata of '${state}' and '${mailbox}'`, e, { kind });
    }
    const missing = [state, mailbox].filter((t) => !counts.has(t));
    if (missing.length > 0) {
      throw new ArgusError(
        'ARGUS_ERR_UNKNOWN_KIND',
        `no ${missing.map((t) => `'${t}'`).join(' and ')} for kind '${kind}': ensure the kind's topics first`,
        { kind, missing },
      );
    }
    const found = { state: counts.get(state)!, mailbox: counts.get(mailbox)! };
    this.kinds.set(kind, found);
    return found;
  }

  /** A produce to a missing topic would only fail after kafkajs' retries: say so at once instead. */
  private async checkDeadLetterTopic(): Promise<void> {
    if (this.deadLetterTopicSeen) return;
    const topic = deadLetterTopic(this.settings.prefix);
    const count = await topicPartitionCount(await this.admin.get(), topic);
    if (count === undefined) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `no dead-letter topic '${topic}': ensure the dead-letter store first`,
        { topic },
      );
    }
    this.deadLetterTopicSeen = true;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new ArgusError(
        'ARGUS_ERR_STORE_CLOSED',
        `the checkpoint store of '${this.settings.prefix}' is closed`,
      );
    }
  }
}

/** What became of a writer: only 'ready' writes. */
type WriterState = 'ready' | 'fenced' | 'stuck' | 'closed';

interface WriterHooks {
  checkDeadLetterTopic(): Promise<void>;
  closed(writer: KafkaShardWriter): void;
}

class KafkaShardWriter implements ShardWriter {
  private state: WriterState = 'ready';
  /** Writes run one at a time (kafkajs allows one transaction per producer); this is the last one. */
  private tail: Promise<unknown> = Promise.resolve();
  /** performance.now() when the last transaction ended, for the pause before the next one. */
  private lastEnded = Number.NEGATIVE_INFINITY;
  private readonly transactionalId: string;
  private readonly stateTopic: string;
  private readonly mailboxTopic: string;
  private readonly deadLetterTopic: string;

  constructor(
    private readonly kind: string,
    private readonly partition: number,
    private readonly producer: Producer,
    private readonly settings: Settings,
    private readonly hooks: WriterHooks,
  ) {
    this.transactionalId = shardTransactionalId(settings.prefix, kind, partition);
    this.stateTopic = stateTopic(settings.prefix, kind);
    this.mailboxTopic = mailboxTopic(settings.prefix, kind);
    this.deadLetterTopic = deadLetterTopic(settings.prefix);
  }

  write(checkpoint: Checkpoint): Promise<void> {
    const run = this.tail.then(() => this.writeNow(checkpoint));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.tail;
    this.hooks.closed(this);
    // Leaves the transactional id's epoch alone: closing fences nobody.
    await this.producer.disconnect().catch(() => undefined);
  }

  private async writeNow(checkpoint: Checkpoint): Promise<void> {
    this.assertReady();
    const requests = this.requestsOf(checkpoint);
    if (checkpoint.deadLetters.length > 0) await this.hooks.checkDeadLetterTopic();
    this.assertReady();
    const doing = `writing a checkpoint of shard ${this.kind}/${this.partition} (offset ${checkpoint.nextOffset})`;
    const settle = this.lastEnded + this.settings.settleMs - performance.now();
    if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
    let transaction: Transaction;
    try {
      transaction = await this.producer.transaction();
    } catch (e) {
      this.become('stuck');
      throw this.failure(doing, e, 'stuck');
    }
    const written: WrittenRange[] = [];
    try {
      for (const topicMessages of requests) {
        const metadata = await transaction.sendBatch({ acks: -1, topicMessages });
        written.push(...this.stateRanges(topicMessages, metadata));
      }
      await retryRetriable(() =>
        transaction.sendOffsets({
          consumerGroupId: this.settings.offsetsGroupId,
          topics: [
            {
              topic: this.mailboxTopic,
              partitions: [{ partition: this.partition, offset: String(checkpoint.nextOffset) }],
            },
          ],
        }),
      );
      await transaction.commit();
    } catch (e) {
      const outcome = await abandon(transaction, e);
      this.become(outcome);
      this.lastEnded = performance.now();
      throw this.failure(doing, e, outcome);
    }
    this.lastEnded = performance.now();
    this.settings.snapshots?.committed(this.kind, checkpoint.snapshots, written);
  }

  /** Validates the checkpoint and cuts its records into requests under maxRequestBytes. */
  private requestsOf(checkpoint: Checkpoint): { topic: string; messages: Message[] }[][] {
    const { nextOffset } = checkpoint;
    if (!Number.isInteger(nextOffset) || nextOffset < 0) {
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `cannot commit offset ${nextOffset}: not an offset`, {
        kind: this.kind,
        partition: this.partition,
        nextOffset,
      });
    }
    const misplaced = checkpoint.snapshots.find((s) => s.partition !== this.partition);
    if (misplaced) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `the snapshot of '${misplaced.key}' is for partition ${misplaced.partition}, ` +
          `but this writer writes shard ${this.kind}/${this.partition}`,
        {
          kind: this.kind,
          partition: this.partition,
          key: misplaced.key,
          snapshotPartition: misplaced.partition,
        },
      );
    }
    const records: { topic: string; message: { partition: number; key: string | null; value: Buffer } }[] = [
      ...checkpoint.snapshots.map((s) => ({ topic: this.stateTopic, message: snapshotMessage(s) })),
      ...checkpoint.deadLetters.map((l) => ({ topic: this.deadLetterTopic, message: deadLetterMessage(l) })),
      // Outputs in the same transaction as the state that produced them: a reader with
      // isolation.level=read_committed sees them exactly when the checkpoint committed.
      // Messages to other entities (`ctx.send`) go to their kind's mailbox in the same transaction.
      ...(checkpoint.outputs ?? []).map((o) => ({
        topic: o.mailbox
          ? mailboxTopic(this.settings.prefix, o.stream)
          : streamTopic(this.settings.prefix, o.stream),
        message: { partition: o.partition, key: o.key, value: asBuffer(o.value) },
      })),
    ];
    const requests: { topic: string; messages: Message[] }[][] = [];
    let request = new Map<string, Message[]>();
    let bytes = 0;
    const flush = (): void => {
      if (request.size > 0) requests.push([...request].map(([topic, messages]) => ({ topic, messages })));
      request = new Map();
      bytes = 0;
    };
    for (const { topic, message } of records) {
      const size = RECORD_OVERHEAD + message.value.length + (message.key?.length ?? 0) * 3;
      if (bytes > 0 && bytes + size > this.settings.maxRequestBytes) flush();
      const messages = request.get(topic);
      if (messages) messages.push(message);
      else request.set(topic, [message]);
      bytes += size;
    }
    flush();
    return requests;
  }

  /** The offsets the request's snapshot records took: one range per request (one partition). */
  private stateRanges(
    request: readonly { topic: string; messages: readonly Message[] }[],
    metadata: readonly RecordMetadata[],
  ): WrittenRange[] {
    const count = request.find((t) => t.topic === this.stateTopic)?.messages.length ?? 0;
    const meta = metadata.find((m) => m.topicName === this.stateTopic && m.partition === this.partition);
    if (count === 0 || meta?.baseOffset === undefined) return [];
    return [
      { topic: this.stateTopic, partition: this.partition, baseOffset: Number(meta.baseOffset), count },
    ];
  }

  private assertReady(): void {
    switch (this.state) {
      case 'ready':
        return;
      case 'closed':
        throw new ArgusError(
          'ARGUS_ERR_STORE_CLOSED',
          `the checkpoint writer '${this.transactionalId}' is closed`,
          {
            kind: this.kind,
            partition: this.partition,
          },
        );
      case 'fenced':
        throw this.fencedError();
      case 'stuck':
        throw new ArgusError(
          'ARGUS_ERR_TRANSPORT',
          `the checkpoint writer '${this.transactionalId}' cannot write after a failed commit or abort: ` +
            'open a new writer (which fences) if this node still owns the shard',
          { kind: this.kind, partition: this.partition },
        );
      default: {
        const never: never = this.state;
        throw new Error(`unknown writer state ${String(never)}`);
      }
    }
  }

  /** A closed writer stays closed, whatever its last write found out. */
  private become(state: Exclude<WriterState, 'closed'>): void {
    if (this.state !== 'closed') this.state = state;
  }

  private failure(doing: string, cause: unknown, outcome: Exclude<WriterState, 'closed'>): ArgusError {
    if (outcome === 'fenced') return this.fencedError(cause);
    if (outcome === 'ready')
      return transportError(doing, cause, { kind: this.kind, partition: this.partition });
    return new ArgusError(
      'ARGUS_ERR_TRANSPORT',
      `${doing} failed: ${describeError(cause).message}; the writer cannot continue: ` +
        'open a new writer (which fences) if this node still owns the shard',
      { kind: this.kind, partition: this.partition },
      { cause },
    );
  }

  private fencedError(cause?: unknown): ArgusError {
    return new ArgusError(
      'ARGUS_ERR_FENCED',
      `the checkpoint writer '${this.transactionalId}' was fenced: a newer writer of shard ` +
        `${this.kind}/${this.partition} was opened (or the broker aborted a transaction that outlived ` +
        `${this.settings.transactionTimeoutMs} ms); nothing of this write is visible`,
      { kind: this.kind, partition: this.partition },
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Ends a transaction that failed with `error` as well as kafkajs allows, and says what the writer can do
 * next: write again ('ready': aborted), nothing ('fenced'), or nothing until reopened ('stuck': the commit
 * or the abort failed, which leaves kafkajs' transactional producer unable to begin another transaction).
 */
const abandon = async (transaction: Transaction, error: unknown): Promise<Exclude<WriterState, 'closed'>> => {
  let fenced = isFencedError(error);
  let aborted = false;
  if (transaction.isActive()) {
    try {
      await transaction.abort();
      aborted = true;
    } catch (abortError) {
      fenced ||= isFencedError(abortError);
    }
  }
  if (fenced) return 'fenced';
  return aborted ? 'ready' : 'stuck';
};

/** Record framing, headers and varints: a generous estimate, as sender.ts makes it. */
const RECORD_OVERHEAD = 64;

const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);

/**
 * The broker refused the producer's epoch: a newer writer of the transactional id exists (or the broker
 * expired our transaction). kafkajs 2.2.4 names INVALID_PRODUCER_EPOCH (47) but not PRODUCER_FENCED (90),
 * which it raises as "Unknown error code 90"; retry wrappers keep the broker's error as `cause` or
 * `originalError`.
 */
export const isFencedError = (e: unknown): boolean => {
  let error: unknown = e;
  for (let depth = 0; depth < 5 && typeof error === 'object' && error !== null; depth++) {
    const { type, message, cause, originalError } = error as {
      type?: unknown;
      message?: unknown;
      cause?: unknown;
      originalError?: unknown;
    };
    if (typeof type === 'string' && FENCED_TYPES.has(type)) return true;
    if (typeof message === 'string' && /\bUnknown error code 90\b/.test(message)) return true;
    error = originalError ?? cause;
  }
  return false;
};

/**
 * kafkajs retries AddOffsetsToTxn not at all: right after a transaction, the broker answers it with
 * CONCURRENT_TRANSACTIONS until the previous markers are written (a few ms). Retried here, briefly.
 */
export const retryRetriable = async (attempt: () => Promise<void>): Promise<void> => {
  for (let wait = 5; ; wait *= 2) {
    try {
      await attempt();
      return;
    } catch (e) {
      const retriable =
        typeof e === 'object' && e !== null && (e as { retriable?: unknown }).retriable === true;
      if (!retriable || wait > 2_000) throw e;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
};
