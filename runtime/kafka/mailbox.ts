/**
 * The Kafka mailbox (DESIGN.md, "Kafka layout"): one topic `<prefix>.mailbox.<kind>` per kind with the
 * kind's fixed partition count. We hash keys to partitions ourselves (shard = hash(key) mod S), so every
 * record names its partition; kafkajs' partitioner never decides.
 *
 * Appends go through one producer with acks=-1 and one request in flight (sender.ts): durable on resolve,
 * in order per partition, batched. Consumption is explicit per partition (consumption.ts). Progress is
 * committed to the offsets group `<prefix>.mailbox`, which no consumer ever joins: shard checkpoint
 * writers commit to it inside their transactions (checkpoints.ts), and so does `commit` here. Committed and end offsets come from the admin API, so they are right whichever process committed
 * or appended.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type {
  ConsumeOptions,
  Consumption,
  KindTopology,
  MailboxRecord,
  MailboxTransport,
  OutgoingRecord,
  OutputRecord,
} from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import { retryRetriable } from './checkpoints.ts';
import {
  asBuffer,
  checkPartition,
  createKafka,
  ensureTopics,
  type KafkaConnectionOptions,
  topicPartitionCount,
  transportError,
} from './client.ts';
import { type ConsumerSettings, KafkaConsumption } from './consumption.ts';
import { readPartitions } from './reader.ts';
import { RecordSender } from './sender.ts';
import { mailboxTopic, streamTopic } from './topics.ts';

export interface KafkaMailboxOptions extends KafkaConnectionOptions {
  /** The group that holds the committed offsets. Default `<topicPrefix>.mailbox`. */
  readonly groupId?: string;
  /** Idempotent producer. Default true. */
  readonly idempotent?: boolean;
  /** Tuning; the defaults aim at throughput with low latency on a small machine. */
  readonly consumer?: Partial<Omit<ConsumerSettings, 'fetchGroupPrefix'>>;
}

const CONSUMER_DEFAULTS: Omit<ConsumerSettings, 'fetchGroupPrefix'> = {
  maxBatch: 1_000,
  concurrency: 8,
  retryDelayMs: 500,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1_000,
  // Big fetches for throughput; minBytes 1 (in consumption.ts) returns as soon as anything is there.
  maxBytesPerPartition: 4 * 1024 * 1024,
  maxWaitTimeMs: 200,
  report: (message) => console.error(`[argus kafka] ${message}`),
};

export class KafkaMailbox implements MailboxTransport {
  readonly name = 'kafka';
  private readonly kafka: Kafka;
  private readonly sender: RecordSender;
  private readonly prefix: string;
  private readonly settings: ConsumerSettings;
  private readonly groupId: string;
  private readonly partitions = new Map<string, number>();
  private readonly consumptions = new Set<KafkaConsumption>();
  private admin: Promise<Admin> | undefined;
  private committer: Promise<Producer> | undefined;
  private commitQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: KafkaMailboxOptions) {
    this.kafka = createKafka(options);
    this.prefix = options.topicPrefix;
    this.sender = new RecordSender(this.kafka, { idempotent: options.idempotent ?? true });
    this.groupId = options.groupId ?? `${options.topicPrefix}.mailbox`;
    this.settings = {
      ...CONSUMER_DEFAULTS,
      ...options.consumer,
      fetchGroupPrefix: `${options.topicPrefix}.fetch`,
    };
  }

  topicOf(kind: string): string {
    return mailboxTopic(this.prefix, kind);
  }

  async ensureKinds(kinds: readonly KindTopology[]): Promise<void> {
    this.assertOpen();
    const specs = kinds.map(({ kind, partitions }) => ({ topic: this.topicOf(kind), partitions }));
    try {
      await ensureTopics(await this.connectedAdmin(), specs);
    } catch (e) {
      throw transportError('ensuring the mailbox topics', e, { topics: specs.map((s) => s.topic) });
    }
    for (const { kind, partitions } of kinds) this.partitions.set(kind, partitions);
  }

  async ensureStreams(streams: readonly KindTopology[]): Promise<void> {
    this.assertOpen();
    const specs = streams.map(({ kind, partitions }) => ({
      topic: streamTopic(this.prefix, kind),
      partitions,
    }));
    try {
      await ensureTopics(await this.connectedAdmin(), specs);
    } catch (e) {
      throw transportError('ensuring the output stream topics', e, { topics: specs.map((s) => s.topic) });
    }
  }

  /** Outside a checkpoint (the sequential store): plain produce, at-least-once. */
  async appendOutputs(records: readonly OutputRecord[]): Promise<void> {
    this.assertOpen();
    const byTopic = new Map<string, { partition: number; key: string; value: Buffer }[]>();
    for (const r of records) {
      const topic = r.mailbox ? this.topicOf(r.stream) : streamTopic(this.prefix, r.stream);
      const list = byTopic.get(topic) ?? [];
      list.push({ partition: r.partition, key: r.key, value: asBuffer(r.value) });
      byTopic.set(topic, list);
    }
    for (const [topic, messages] of byTopic) await this.sender.send(topic, messages);
  }

  async append(kind: string, records: readonly OutgoingRecord[]): Promise<void> {
    this.assertOpen();
    const count = await this.partitionsOf(kind);
    const messages = records.map((r) => {
      checkPartition(kind, r.partition, count);
      return { partition: r.partition, key: r.key, value: asBuffer(r.value) };
    });
    await this.sender.send(this.topicOf(kind), messages);
  }

  partitionCount(kind: string): Promise<number> {
    this.assertOpen();
    return this.partitionsOf(kind);
  }

  async consume(options: ConsumeOptions): Promise<Consumption> {
    this.assertOpen();
    if (options.maxBatch !== undefined && (!Number.isInteger(options.maxBatch) || options.maxBatch < 1)) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `maxBatch ${options.maxBatch} must be a positive integer`,
        {
          field: 'maxBatch',
          maxBatch: options.maxBatch,
        },
      );
    }
    if (options.kinds.length === 0) {
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', 'consume needs at least one kind', { field: 'kinds' });
    }
    for (const kind of options.kinds) await this.partitionsOf(kind);
    const kindOfTopic = new Map(options.kinds.map((kind) => [this.topicOf(kind), kind]));
    const consumption = new KafkaConsumption(
      this.kafka,
      this.settings,
      options,
      kindOfTopic,
      (kind) => this.partitions.get(kind) ?? 0,
      (c) => this.consumptions.delete(c),
    );
    this.consumptions.add(consumption);
    try {
      await consumption.start();
    } catch (e) {
      this.consumptions.delete(consumption);
      throw e;
    }
    return consumption;
  }

  async commit(kind: string, partition: number, nextOffset: number): Promise<void> {
    this.assertOpen();
    checkPartition(kind, partition, await this.partitionsOf(kind));
    if (!Number.isInteger(nextOffset) || nextOffset < 0) {
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `cannot commit offset ${nextOffset}: not an offset`, {
        kind,
        partition,
        nextOffset,
      });
    }
    const topic = this.topicOf(kind);
    const doing = `committing offset ${nextOffset} of '${topic}' partition ${partition}`;
    try {
      await this.commitInTransaction(topic, partition, nextOffset);
    } catch (e) {
      throw transportError(doing, e, { kind, partition, nextOffset });
    }
  }

  async endOffset(kind: string, partition: number): Promise<number> {
    this.assertOpen();
    checkPartition(kind, partition, await this.partitionsOf(kind));
    const topic = this.topicOf(kind);
    try {
      const offsets = await (await this.connectedAdmin()).fetchTopicOffsets(topic);
      return Number(offsets.find((o) => o.partition === partition)?.high ?? 0);
    } catch (e) {
      throw transportError(`reading the end offset of '${topic}' partition ${partition}`, e, {
        kind,
        partition,
      });
    }
  }

  async readMailbox(kind: string, partition: number, from: number, max: number): Promise<MailboxRecord[]> {
    const end = await this.endOffset(kind, partition);
    const records: MailboxRecord[] = [];
    const to = Math.min(end, Math.max(0, from) + max);
    if (to <= from) return records;
    await readPartitions(this.kafka, {
      topic: this.topicOf(kind),
      ranges: [{ partition, from: Math.max(0, from), to }],
      groupPrefix: `${this.prefix}.read`,
      onRecord: (r) => {
        if (r.value !== null && r.offset < to)
          records.push({
            partition,
            offset: r.offset,
            key: r.key === null ? undefined : r.key.toString('utf8'),
            value: r.value,
          });
      },
      timeoutMs: 15_000,
    });
    return records;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.consumptions].map((c) => c.stop()));
    await this.sender.close();
    await this.commitQueue;
    const committer = this.committer;
    this.committer = undefined;
    await (await committer?.catch(() => undefined))?.disconnect().catch(() => undefined);
    const admin = this.admin;
    this.admin = undefined;
    if (admin) await (await admin.catch(() => undefined))?.disconnect();
  }

  /**
   * A commit outside any shard's checkpoint (tools, tests): a transaction holding only `sendOffsets`, by
   * a transactional producer of this mailbox's own (a random id: it fences no shard writer). Joining the
   * offsets group instead (kafkajs' admin.setOffsets) takes seconds and fails while another commit runs.
   * Commits run one at a time; a failed one replaces the producer.
   */
  private commitInTransaction(topic: string, partition: number, nextOffset: number): Promise<void> {
    const run = this.commitQueue.then(async () => {
      this.committer ??= (async () => {
        const producer = this.kafka.producer({
          transactionalId: `${this.prefix}.commit.${randomUUID()}`,
          idempotent: true,
          maxInFlightRequests: 1,
          retry: { retries: 10, initialRetryTime: 10, maxRetryTime: 2_000 },
        });
        await producer.connect();
        return producer;
      })();
      const committer = this.committer;
      try {
        const producer = await committer;
        const transaction = await producer.transaction();
        try {
          await retryRetriable(() =>
            transaction.sendOffsets({
              consumerGroupId: this.groupId,
              topics: [{ topic, partitions: [{ partition, offset: String(nextOffset) }] }],
            }),
          );
          await transaction.commit();
        } catch (e) {
          await transaction.abort().catch(() => undefined);
          throw e;
        }
      } catch (e) {
        if (this.committer === committer) this.committer = undefined;
        await (await committer.catch(() => undefined))?.disconnect().catch(() => undefined);
        throw e;
      }
    });
    this.commitQueue = run.catch(() => undefined);
    return run;
  }

  /** The committed next offset, or the log start if none was committed (retention may have moved it). */
  async committed(kind: string, partition: number): Promise<number> {
    this.assertOpen();
    checkPartition(kind, partition, await this.partitionsOf(kind));
    const topic = this.topicOf(kind);
    try {
      const admin = await this.connectedAdmin();
      const [committed] = await admin.fetchOffsets({ groupId: this.groupId, topics: [topic] });
      const offset = Number(committed?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
      if (offset >= 0) return offset;
      const low = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.low;
      return Number(low ?? 0);
    } catch (e) {
      throw transportError(`reading where '${topic}' partition ${partition} starts`, e, { kind, partition });
    }
  }

  private async partitionsOf(kind: string): Promise<number> {
    const known = this.partitions.get(kind);
    if (known !== undefined) return known;
    const topic = this.topicOf(kind);
    const count = await topicPartitionCount(await this.connectedAdmin(), topic);
    if (count === undefined) {
      throw new ArgusError(
        'ARGUS_ERR_UNKNOWN_KIND',
        `no mailbox topic '${topic}' for kind '${kind}': call ensureKinds first`,
        {
          kind,
          topic,
        },
      );
    }
    this.partitions.set(kind, count);
    return count;
  }

  private connectedAdmin(): Promise<Admin> {
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })();
    const admin = this.admin;
    // A failed connect is not cached: the next call tries again.
    admin.catch(() => {
      if (this.admin === admin) this.admin = undefined;
    });
    return admin;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new ArgusError('ARGUS_ERR_STORE_CLOSED', `the Kafka mailbox of '${this.prefix}' is closed`);
  }
}
